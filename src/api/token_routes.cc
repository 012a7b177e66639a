// auth/token/* routes of VaultHandler.

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/handler.h"
#include "api/internal/auth_json.h"
#include "api/internal/json.h"
#include "api/internal/request.h"
#include "core/secure_bytes.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "spdlog/spdlog.h"

namespace ward::api {

using internal::ErrorResponse;
namespace json = boost::json;
using internal::Request;
using internal::AuthJson;
using internal::Seconds;

namespace {

json::value MetaJson(const std::map<std::string, std::string>& meta) {
  return meta.empty() ? json::value(nullptr) : internal::StringMapToJson(meta);
}

// The data object of lookup, lookup-self and lookup-accessor. `token` is "" for
// lookup-accessor, which never reveals the token.
json::object LookupJson(std::string_view token, const auth::TokenEntry& e, absl::Time now) {
  bool expires = e.expire_time != absl::InfiniteFuture();
  return json::object{
      {"accessor", e.accessor},
      {"creation_time", absl::ToUnixSeconds(e.creation_time)},
      {"creation_ttl", Seconds(e.creation_ttl)},
      {"display_name", e.display_name},
      {"entity_id", ""},
      {"expire_time", expires ? json::value(core::FormatRfc3339Nanos(e.expire_time)) : json::value(nullptr)},
      {"explicit_max_ttl", Seconds(e.explicit_max_ttl)},
      {"id", json::string_view(token.data(), token.size())},
      {"issue_time", core::FormatRfc3339Nanos(e.creation_time)},
      {"meta", MetaJson(e.meta)},
      {"num_uses", e.num_uses < 0 ? 0 : e.num_uses},  // -1: this request was the last use
      {"orphan", e.orphan},
      {"path", e.path},
      {"policies", internal::StringsToJson(e.policies)},
      {"renewable", e.renewable},
      {"ttl", expires ? Seconds(e.RemainingTtl(now)) : 0},
      {"type", e.type}};
}

absl::StatusOr<auth::CreateTokenRequest> CreateRequestFrom(const json::object& body) {
  auth::CreateTokenRequest r;
  auto policies = internal::GetStringList(body, "policies");
  auto meta = internal::GetStringMap(body, "meta");
  auto display_name = internal::GetString(body, "display_name");
  auto ttl = internal::GetDuration(body, "ttl");
  auto explicit_max_ttl = internal::GetDuration(body, "explicit_max_ttl");
  auto num_uses = internal::GetInt(body, "num_uses");
  auto renewable = internal::GetBool(body, "renewable");
  auto no_parent = internal::GetBool(body, "no_parent");
  auto no_default_policy = internal::GetBool(body, "no_default_policy");
  auto id = internal::GetString(body, "id");
  for (const absl::Status& s :
       {policies.status(), meta.status(), display_name.status(), ttl.status(),
        explicit_max_ttl.status(), num_uses.status(), renewable.status(), no_parent.status(),
        no_default_policy.status(), id.status()}) {
    if (!s.ok()) return s;
  }
  r.policies = policies->value_or(std::vector<std::string>{});
  r.meta = meta->value_or(std::map<std::string, std::string>{});
  r.display_name = display_name->value_or("");
  r.ttl = *ttl;
  r.explicit_max_ttl = explicit_max_ttl->value_or(absl::ZeroDuration());
  r.num_uses = num_uses->value_or(0);
  if (r.num_uses < 0) return absl::InvalidArgumentError("number of uses cannot be negative");
  r.renewable = *renewable;
  r.no_parent = no_parent->value_or(false);
  r.no_default_policy = no_default_policy->value_or(false);
  r.id = id->value_or("");
  return r;
}

}  // namespace

net::HttpResponse VaultHandler::HandleToken(Request& req) {
  std::string_view op = req.path;
  op.remove_prefix(std::string_view("auth/token/").size());
  while (!op.empty() && op.back() == '/') op.remove_suffix(1);
  auth::TokenStore& tokens = *req.state->tokens;
  const auth::TokenEntry& caller = *req.token;
  const std::string& rid = req.http.request_id;
  absl::Time now = clock_.Now();

  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());

  if (op == "create" || op == "create-orphan") {
    if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
    auto create = CreateRequestFrom(*body);
    if (!create.ok()) return ErrorResponse(create.status());
    create->orphan = op == "create-orphan" || create->no_parent;
    create->caller_has_sudo = req.state->policies->AclFor(caller.policies).Allowed(req.path, auth::Capability::kSudo);
    create->path = absl::StrCat("auth/token/", std::string(op));
    auto issued = tokens.CreateToken(&caller, *create);
    if (!issued.ok()) return ErrorResponse(issued.status());
    json::object envelope_auth = AuthJson(issued->token, issued->entry, now);
    core::SecureZero(issued->token);
    net::HttpResponse r = internal::Envelope(rid, nullptr, envelope_auth, "token");
    return r;
  }

  if (op == "lookup-self") {
    if (req.method != "GET" && req.method != "PUT") return ErrorResponse(405, "unsupported operation");
    return internal::Envelope(rid, LookupJson(req.client_token, caller, now), nullptr, "token");
  }
  if (op == "lookup" || absl::StartsWith(core::ToAbsl(op), "lookup/")) {
    std::string token;
    if (absl::StartsWith(core::ToAbsl(op), "lookup/")) {
      token = std::string(op.substr(7));
    } else {
      auto t = internal::GetString(*body, "token");
      if (!t.ok()) return ErrorResponse(t.status());
      token = t->value_or("");
    }
    if (token.empty()) return ErrorResponse(400, "missing token to lookup");
    auto entry = tokens.Lookup(token);
    if (!entry.ok()) {
      core::SecureZero(token);
      return entry.status().code() == absl::StatusCode::kNotFound ? ErrorResponse(403, "bad token")
                                                                   : ErrorResponse(entry.status());
    }
    net::HttpResponse r = internal::Envelope(rid, LookupJson(token, *entry, now), nullptr, "token");
    core::SecureZero(token);
    return r;
  }
  if (op == "lookup-accessor" || absl::StartsWith(core::ToAbsl(op), "lookup-accessor/")) {
    std::string accessor;
    if (absl::StartsWith(core::ToAbsl(op), "lookup-accessor/")) {
      accessor = std::string(op.substr(16));
    } else {
      auto a = internal::GetString(*body, "accessor");
      if (!a.ok()) return ErrorResponse(a.status());
      accessor = a->value_or("");
    }
    if (accessor.empty()) return ErrorResponse(400, "missing accessor");
    auto entry = tokens.LookupByAccessor(accessor);
    if (!entry.ok()) {
      return entry.status().code() == absl::StatusCode::kNotFound
                 ? ErrorResponse(400, "invalid accessor")
                 : ErrorResponse(entry.status());
    }
    return internal::Envelope(rid, LookupJson("", *entry, now), nullptr, "token");
  }

  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
  auto increment_of = [&body]() -> absl::StatusOr<absl::Duration> {
    auto inc = internal::GetDuration(*body, "increment");
    if (!inc.ok()) return inc.status();
    return inc->value_or(absl::ZeroDuration());
  };
  auto token_field = [&body](std::string& out) -> absl::Status {
    auto t = internal::GetString(*body, "token");
    if (!t.ok()) return t.status();
    out = t->value_or("");
    if (out.empty()) return absl::InvalidArgumentError("missing token");
    return absl::OkStatus();
  };

  if (op == "renew-self" || op == "renew") {
    auto increment = increment_of();
    if (!increment.ok()) return ErrorResponse(increment.status());
    std::string token = req.client_token;
    if (op == "renew") {
      if (absl::Status s = token_field(token); !s.ok()) return ErrorResponse(s);
    }
    auto renewed = tokens.Renew(token, *increment);
    if (!renewed.ok()) {
      core::SecureZero(token);
      return renewed.status().code() == absl::StatusCode::kNotFound
                 ? ErrorResponse(400, "invalid token")
                 : ErrorResponse(renewed.status());
    }
    net::HttpResponse r = internal::Envelope(rid, nullptr, AuthJson(token, *renewed, now), "token");
    core::SecureZero(token);
    return r;
  }
  if (op == "revoke-self") {
    absl::Status s = tokens.Revoke(req.client_token);
    return s.ok() ? internal::NoContent() : ErrorResponse(s);
  }
  if (op == "revoke" || op == "revoke-orphan") {
    std::string token;
    if (absl::Status s = token_field(token); !s.ok()) return ErrorResponse(s);
    absl::Status s = op == "revoke" ? tokens.Revoke(token) : tokens.RevokeOrphan(token);
    core::SecureZero(token);
    return s.ok() ? internal::NoContent() : ErrorResponse(s);
  }
  if (op == "revoke-accessor") {
    auto accessor = internal::GetString(*body, "accessor");
    if (!accessor.ok()) return ErrorResponse(accessor.status());
    if (!accessor->has_value() || (*accessor)->empty()) return ErrorResponse(400, "missing accessor");
    absl::Status s = tokens.RevokeByAccessor(**accessor);
    return s.ok() ? internal::NoContent() : ErrorResponse(s);
  }
  return ErrorResponse(404, absl::StrCat("no handler for route \"", req.path, "\". route entry not found."));
}

}  // namespace ward::api
