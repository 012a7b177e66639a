// sys/auth and auth/<AppRole mount>/* routes of VaultHandler (docs/approle.md).

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/handler.h"
#include "api/internal/auth_json.h"
#include "api/internal/json.h"
#include "api/internal/login_guard.h"
#include "api/internal/request.h"
#include "auth/approle.h"
#include "auth/auth_mounts.h"
#include "core/secure_bytes.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "spdlog/spdlog.h"

namespace ward::api {

using internal::ErrorResponse;
namespace json = boost::json;
using internal::Request;
using internal::Seconds;
using internal::TrimSlashes;

namespace {

constexpr std::string_view kMountType = "approle";
// Vault's zero time, shown for a secret-id that never expires.
constexpr std::string_view kNoTime = "0001-01-01T00:00:00Z";

json::object AuthMountJson(const auth::AuthMountEntry& e) {
  json::object config{{"default_lease_ttl", 0}, {"max_lease_ttl", 0}, {"force_no_cache", false}};
  if (e.type == "token") config["token_type"] = "default-service";
  return json::object{
      {"type", e.type},       {"description", e.description}, {"accessor", e.accessor},
      {"uuid", e.uuid},       {"options", nullptr},           {"config", config},
      {"local", false},       {"seal_wrap", false},           {"external_entropy_access", false},
      {"plugin_version", ""}, {"running_plugin_version", ""}};
}

json::object RoleJson(const auth::AppRole& r) {
  json::array policies = internal::StringsToJson(r.token_policies);
  return json::object{{"bind_secret_id", r.bind_secret_id},
                      {"local_secret_ids", false},
                      {"secret_id_bound_cidrs", internal::StringsToJson(r.secret_id_bound_cidrs)},
                      {"secret_id_num_uses", r.secret_id_num_uses},
                      {"secret_id_ttl", Seconds(r.secret_id_ttl)},
                      {"token_bound_cidrs", internal::StringsToJson(r.token_bound_cidrs)},
                      {"token_explicit_max_ttl", Seconds(r.token_explicit_max_ttl)},
                      {"token_max_ttl", Seconds(r.token_max_ttl)},
                      {"token_no_default_policy", r.token_no_default_policy},
                      {"token_num_uses", r.token_num_uses},
                      {"token_period", 0},
                      {"token_policies", policies},
                      {"policies", policies},
                      {"period", 0},
                      {"token_ttl", Seconds(r.token_ttl)},
                      {"token_type", r.token_type}};
}

json::object SecretIdJson(const auth::SecretIdInfo& s) {
  bool expires = s.expiration_time != absl::InfiniteFuture();
  return json::object{{"cidr_list", internal::StringsToJson(s.cidr_list)},
                      {"creation_time", core::FormatRfc3339Nanos(s.creation_time)},
                      {"expiration_time", expires ? core::FormatRfc3339Nanos(s.expiration_time)
                                                  : std::string(kNoTime)},
                      {"last_updated_time", core::FormatRfc3339Nanos(s.last_updated_time)},
                      {"metadata", internal::StringMapToJson(s.metadata)},
                      {"secret_id_accessor", s.accessor},
                      {"secret_id_num_uses", s.num_uses},
                      {"secret_id_ttl", Seconds(s.ttl)},
                      {"token_bound_cidrs", internal::StringsToJson(s.token_bound_cidrs)}};
}

// Reads the role parameters Vault's approle accepts. Errors: kInvalidArgument for a mistyped field.
absl::StatusOr<auth::AppRoleUpdate> RoleUpdateFrom(const json::object& body) {
  auth::AppRoleUpdate u;
  auto role_id = internal::GetString(body, "role_id");
  auto bind = internal::GetBool(body, "bind_secret_id");
  auto secret_cidrs = internal::GetStringList(body, "secret_id_bound_cidrs");
  auto legacy_cidrs = internal::GetStringList(body, "bound_cidr_list");
  auto token_cidrs = internal::GetStringList(body, "token_bound_cidrs");
  auto secret_uses = internal::GetInt(body, "secret_id_num_uses");
  auto secret_ttl = internal::GetDuration(body, "secret_id_ttl");
  auto token_policies = internal::GetStringList(body, "token_policies");
  auto policies = internal::GetStringList(body, "policies");
  auto token_ttl = internal::GetDuration(body, "token_ttl");
  auto token_max_ttl = internal::GetDuration(body, "token_max_ttl");
  auto explicit_max = internal::GetDuration(body, "token_explicit_max_ttl");
  auto token_uses = internal::GetInt(body, "token_num_uses");
  auto token_type = internal::GetString(body, "token_type");
  auto no_default = internal::GetBool(body, "token_no_default_policy");
  for (const absl::Status& s :
       {role_id.status(), bind.status(), secret_cidrs.status(), legacy_cidrs.status(),
        token_cidrs.status(), secret_uses.status(), secret_ttl.status(), token_policies.status(),
        policies.status(), token_ttl.status(), token_max_ttl.status(), explicit_max.status(),
        token_uses.status(), token_type.status(), no_default.status()}) {
    if (!s.ok()) return s;
  }
  u.role_id = *role_id;
  u.bind_secret_id = *bind;
  u.secret_id_bound_cidrs = secret_cidrs->has_value() ? *secret_cidrs : *legacy_cidrs;
  u.token_bound_cidrs = *token_cidrs;
  u.secret_id_num_uses = *secret_uses;
  u.secret_id_ttl = *secret_ttl;
  // `policies` is the pre-1.2 name; token_policies wins when both are given.
  u.token_policies = token_policies->has_value() ? *token_policies : *policies;
  u.token_ttl = *token_ttl;
  u.token_max_ttl = *token_max_ttl;
  u.token_explicit_max_ttl = *explicit_max;
  u.token_num_uses = *token_uses;
  u.token_type = *token_type;
  u.token_no_default_policy = *no_default;
  return u;
}

// The secret-id metadata parameter: a JSON string holding an object of strings (Vault), or,
// leniently, the object itself. Errors: kInvalidArgument otherwise.
absl::StatusOr<std::map<std::string, std::string>> MetadataFrom(const json::object& body) {
  const json::value* v = body.if_contains("metadata");
  if (v == nullptr || v->is_null()) return std::map<std::string, std::string>{};
  json::object holder;
  if (v->is_string()) {
    if (v->get_string().empty()) return std::map<std::string, std::string>{};
    json::error_code ec;
    json::value parsed = json::parse(v->get_string(), ec);
    if (ec || !parsed.is_object()) {
      return absl::InvalidArgumentError(
          "failed to parse metadata: must be a JSON object of strings");
    }
    holder["metadata"] = std::move(parsed);
  } else {
    holder["metadata"] = *v;
  }
  auto m = internal::GetStringMap(holder, "metadata");
  if (!m.ok()) return m.status();
  return m->value_or(std::map<std::string, std::string>{});
}

absl::StatusOr<auth::SecretIdRequest> SecretIdRequestFrom(const json::object& body) {
  auth::SecretIdRequest r;
  auto metadata = MetadataFrom(body);
  auto cidrs = internal::GetStringList(body, "cidr_list");
  auto token_cidrs = internal::GetStringList(body, "token_bound_cidrs");
  auto ttl = internal::GetDuration(body, "ttl");
  auto num_uses = internal::GetInt(body, "num_uses");
  for (const absl::Status& s :
       {metadata.status(), cidrs.status(), token_cidrs.status(), ttl.status(), num_uses.status()}) {
    if (!s.ok()) return s;
  }
  r.metadata = *metadata;
  r.cidr_list = cidrs->value_or(std::vector<std::string>{});
  r.token_bound_cidrs = token_cidrs->value_or(std::vector<std::string>{});
  r.ttl = *ttl;
  r.num_uses = *num_uses;
  return r;
}

// Reads a required string field; "" if absent. Errors: kInvalidArgument if mistyped.
absl::StatusOr<std::string> StringField(const json::object& body, std::string_view name) {
  auto v = internal::GetString(body, name);
  if (!v.ok()) return v.status();
  return v->value_or("");
}

// For routes under role/<name>/: an unknown role is a 400 naming it, as Vault answers.
net::HttpResponse RoleError(const absl::Status& status, const std::string& name) {
  if (absl::IsNotFound(status) && status.message() == "role not found") {
    return ErrorResponse(400, absl::StrCat("role \"", name, "\" does not exist"));
  }
  return ErrorResponse(status);
}

net::HttpResponse NotFoundRoute(const std::string& path) {
  return ErrorResponse(404,
                       absl::StrCat("no handler for route \"", path, "\". route entry not found."));
}

net::HttpResponse ListResponse(std::string_view request_id, const std::vector<std::string>& keys) {
  if (keys.empty()) return ErrorResponse(404, "");
  return internal::Envelope(request_id, json::object{{"keys", internal::StringsToJson(keys)}},
                            nullptr, kMountType);
}

}  // namespace

namespace internal {

std::optional<net::HttpResponse> RevokeIfUnmounted(const UnsealedState& state,
                                                   const auth::AuthMountEntry& mount,
                                                   auth::IssuedToken& issued,
                                                   const std::string& request_path) {
  std::optional<auth::AuthMountEntry> now = state.auth_mounts->Get(mount.path);
  if (now.has_value() && now->accessor == mount.accessor) return std::nullopt;
  absl::Status revoked = state.tokens->Revoke(issued.token);
  core::SecureZero(issued.token);
  if (!revoked.ok()) {
    // Nobody holds the token (it was never sent), so it is unusable; tidy removes it on expiry.
    spdlog::warn("event=login_token_revoke_failed mount=auth/{} code={}", mount.path,
                 absl::StatusCodeToString(revoked.code()));
  }
  return NotFoundRoute(request_path);
}

}  // namespace internal

net::HttpResponse VaultHandler::HandleAuthMounts(Request& req) {
  std::string_view rest = req.path;
  rest.remove_prefix(std::string_view("sys/auth").size());
  rest = TrimSlashes(rest);
  auth::AuthMountTable& table = *req.state->auth_mounts;
  if (rest.empty()) {
    if (req.method != "GET") return ErrorResponse(405, "unsupported operation");
    json::object data;
    for (const auth::AuthMountEntry& e : table.List()) data[e.path] = AuthMountJson(e);
    return internal::Envelope(req.request_id(), data, nullptr, "system", true);
  }
  if (absl::EndsWith(core::ToAbsl(rest), "/tune")) {
    return ErrorResponse(405, "tuning auth methods is not supported");
  }
  std::string path = absl::StrCat(core::ToAbsl(rest), "/");
  if (req.method == "GET") {
    auto entry = table.Get(path);
    if (!entry) return ErrorResponse(400, absl::StrCat("no auth mount found at auth/", path));
    return internal::Envelope(req.request_id(), AuthMountJson(*entry), nullptr, "system", true);
  }
  if (req.method == "DELETE") {
    // As in Vault, disabling a method revokes every token it issued (their TokenEntry::path is
    // "auth/<mount path>login"), with their children. First while the mount still exists, so
    // that a failure leaves it in place for a retry; then again once Disable has taken it out
    // of the table and closed its store, for logins that were finishing meanwhile (a login
    // finishing after that finds the mount gone and revokes its own token: RevokeIfUnmounted).
    std::optional<auth::AuthMountEntry> entry = table.Get(path);
    const bool issues_tokens = entry.has_value() && entry->type != "token";
    const std::string prefix = entry.has_value() ? absl::StrCat("auth/", entry->path) : "";
    size_t revoked = 0;
    if (issues_tokens) {
      absl::StatusOr<size_t> n = req.state->tokens->RevokeByPathPrefix(prefix);
      if (!n.ok()) return ErrorResponse(n.status());
      revoked += *n;
    }
    absl::Status s = table.Disable(path);
    if (!s.ok()) return ErrorResponse(s);
    if (issues_tokens) {
      absl::StatusOr<size_t> n = req.state->tokens->RevokeByPathPrefix(prefix);
      if (!n.ok()) return ErrorResponse(n.status());
      revoked += *n;
    }
    spdlog::info("event=auth_method_disabled path={} tokens_revoked={} request_id={}", path,
                 revoked, req.request_id());
    return internal::NoContent();
  }
  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto type = internal::GetString(*body, "type");
  auto description = internal::GetString(*body, "description");
  if (!type.ok()) return ErrorResponse(type.status());
  if (!description.ok()) return ErrorResponse(description.status());
  if (!type->has_value() || (*type)->empty()) {
    return ErrorResponse(400, "backend type must be specified as a string");
  }
  absl::Status s = table.Enable(path, **type, description->value_or(""));
  if (!s.ok()) return ErrorResponse(s);
  spdlog::info("event=auth_method_enabled path={} type={} request_id={}", path, **type,
               req.request_id());
  return internal::NoContent();
}

std::optional<net::HttpResponse> VaultHandler::HandleAppRoleLogin(Request& req) {
  if (!absl::StartsWith(req.path, "auth/") || absl::StartsWith(req.path, "auth/token/")) {
    return std::nullopt;
  }
  std::string_view under_auth = std::string_view(req.path).substr(5);
  std::optional<auth::AppRoleMatch> match = req.state->auth_mounts->FindAppRole(under_auth);
  if (!match) {
    // auth/<path>/login with nothing mounted at <path>: no token could make this work, so say so
    // instead of "permission denied".
    std::string_view trimmed = TrimSlashes(under_auth);
    if (!absl::EndsWith(core::ToAbsl(trimmed), "/login")) return std::nullopt;
    std::string_view mount = trimmed.substr(0, trimmed.size() - 6);
    if (req.state->auth_mounts->Get(mount).has_value()) return std::nullopt;
    return NotFoundRoute(req.path);
  }
  if (TrimSlashes(match->rest) != "login") return std::nullopt;
  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");

  auth::FailedLoginLimiter& limiter = *req.state->login_limiter;
  const std::string& client = req.http.remote_address;
  if (std::optional<absl::Duration> wait = limiter.RetryAfter(client)) {
    int64_t seconds =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(*wait))));
    spdlog::info(
        "event=login_rate_limited mount=auth/{} remote_address={} "
        "retry_after_s={}",
        match->entry.path, client, seconds);
    net::HttpResponse r = ErrorResponse(429, "too many failed login attempts");
    r.headers.emplace_back("Retry-After", std::to_string(seconds));
    return r;
  }
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto role_id = StringField(*body, "role_id");
  auto secret_id = StringField(*body, "secret_id");
  if (!role_id.ok()) return ErrorResponse(role_id.status());
  if (!secret_id.ok()) return ErrorResponse(secret_id.status());
  absl::StatusOr<auth::AppRoleGrant> grant = match->store->Login(*role_id, *secret_id, client);
  core::SecureZero(*secret_id);
  if (!grant.ok()) {
    // Every credential failure drains the client's bucket; storage errors do not.
    if (grant.status().code() == absl::StatusCode::kInvalidArgument) limiter.RecordFailure(client);
    return ErrorResponse(grant.status());
  }
  auth::CreateTokenRequest create;
  create.policies = grant->token_policies;
  create.meta = grant->metadata;
  create.display_name = "approle";
  if (grant->token_ttl > absl::ZeroDuration()) create.ttl = grant->token_ttl;
  create.explicit_max_ttl = grant->token_max_ttl;
  create.num_uses = grant->token_num_uses;
  create.renewable = true;
  create.orphan = true;
  create.no_default_policy = grant->token_no_default_policy;
  create.path = absl::StrCat("auth/", match->entry.path, "login");
  create.bound_cidrs = grant->token_bound_cidrs;
  auto issued = req.state->tokens->CreateToken(nullptr, create);
  if (!issued.ok()) return ErrorResponse(issued.status());
  if (auto gone = internal::RevokeIfUnmounted(*req.state, match->entry, *issued, req.path)) {
    return *std::move(gone);
  }
  spdlog::info("event=approle_login mount=auth/{} remote_address={} request_id={}",
               match->entry.path, client, req.request_id());
  // Measured from the token's creation, so lease_duration is exactly the ttl granted.
  json::object auth_json =
      internal::AuthJson(issued->token, issued->entry, issued->entry.creation_time);
  core::SecureZero(issued->token);
  return internal::Envelope(req.request_id(), nullptr, std::move(auth_json), kMountType);
}

net::HttpResponse VaultHandler::HandleAppRole(Request& req) {
  std::optional<auth::AppRoleMatch> match =
      req.state->auth_mounts->FindAppRole(std::string_view(req.path).substr(5));
  if (!match) return NotFoundRoute(req.path);
  auth::AppRoleStore& store = *match->store;
  const std::string& rid = req.http.request_id;
  const std::string& m = req.method;
  std::string_view rest = TrimSlashes(match->rest);

  if (rest == "role") {
    if (m != "LIST") return ErrorResponse(405, "unsupported operation");
    return ListResponse(rid, store.ListRoles());
  }
  if (!absl::StartsWith(core::ToAbsl(rest), "role/")) return NotFoundRoute(req.path);
  rest.remove_prefix(5);
  size_t slash = rest.find('/');
  std::string name(rest.substr(0, slash));
  std::string_view op = slash == std::string_view::npos ? "" : rest.substr(slash + 1);

  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());

  if (op.empty()) {
    if (m == "GET") {
      auto role = store.ReadRole(name);
      if (!role.ok()) return ErrorResponse(role.status());
      return internal::Envelope(rid, RoleJson(*role), nullptr, kMountType);
    }
    if (m == "DELETE") {
      absl::Status s = store.DeleteRole(name);
      if (!s.ok()) return ErrorResponse(s);
      spdlog::info("event=approle_role_deleted mount=auth/{} request_id={}", match->entry.path,
                   rid);
      return internal::NoContent();
    }
    if (m != "PUT") return ErrorResponse(405, "unsupported operation");
    auto update = RoleUpdateFrom(*body);
    if (!update.ok()) return ErrorResponse(update.status());
    auto role = store.WriteRole(name, *update);
    if (!role.ok()) return ErrorResponse(role.status());
    return internal::NoContent();
  }

  if (op == "role-id") {
    if (m == "GET") {
      auto role = store.ReadRole(name);
      if (!role.ok()) return RoleError(role.status(), name);
      return internal::Envelope(rid, json::object{{"role_id", role->role_id}}, nullptr, kMountType);
    }
    if (m != "PUT") return ErrorResponse(405, "unsupported operation");
    auto role_id = StringField(*body, "role_id");
    if (!role_id.ok()) return ErrorResponse(role_id.status());
    if (role_id->empty()) return ErrorResponse(400, "missing role_id");
    if (auto role = store.ReadRole(name); !role.ok()) return RoleError(role.status(), name);
    auth::AppRoleUpdate update;
    update.role_id = *role_id;
    auto role = store.WriteRole(name, update);
    if (!role.ok()) return RoleError(role.status(), name);
    return internal::NoContent();
  }

  if (op == "secret-id") {
    if (m == "LIST") {
      auto accessors = store.ListSecretIdAccessors(name);
      if (!accessors.ok()) return RoleError(accessors.status(), name);
      return ListResponse(rid, *accessors);
    }
    if (m != "PUT") return ErrorResponse(405, "unsupported operation");
    auto request = SecretIdRequestFrom(*body);
    if (!request.ok()) return ErrorResponse(request.status());
    auto issued = store.GenerateSecretId(name, *request);
    if (!issued.ok()) return RoleError(issued.status(), name);
    json::object data{{"secret_id", issued->secret_id},
                      {"secret_id_accessor", issued->accessor},
                      {"secret_id_ttl", Seconds(issued->ttl)},
                      {"secret_id_num_uses", issued->num_uses}};
    core::SecureZero(issued->secret_id);
    net::HttpResponse r = internal::Envelope(rid, std::move(data), nullptr, kMountType);
    return r;
  }

  if (op == "secret-id/lookup" || op == "secret-id/destroy") {
    bool destroy = op == "secret-id/destroy";
    if (m != "PUT" && !(destroy && m == "DELETE"))
      return ErrorResponse(405, "unsupported operation");
    auto secret_id = StringField(*body, "secret_id");
    if (!secret_id.ok()) return ErrorResponse(secret_id.status());
    if (secret_id->empty()) return ErrorResponse(400, "missing secret_id");
    if (destroy) {
      absl::Status s = store.DestroySecretId(name, *secret_id);
      core::SecureZero(*secret_id);
      return s.ok() ? internal::NoContent() : RoleError(s, name);
    }
    auto info = store.LookupSecretId(name, *secret_id);
    core::SecureZero(*secret_id);
    if (!info.ok()) {
      // Vault answers an unknown secret-id with an empty response.
      if (info.status().message() == "secret ID not found") return internal::NoContent();
      return RoleError(info.status(), name);
    }
    return internal::Envelope(rid, SecretIdJson(*info), nullptr, kMountType);
  }

  if (op == "secret-id-accessor/lookup" || op == "secret-id-accessor/destroy") {
    bool destroy = op == "secret-id-accessor/destroy";
    if (m != "PUT" && !(destroy && m == "DELETE"))
      return ErrorResponse(405, "unsupported operation");
    auto accessor = StringField(*body, "secret_id_accessor");
    if (!accessor.ok()) return ErrorResponse(accessor.status());
    if (accessor->empty()) return ErrorResponse(400, "missing secret_id_accessor");
    auto not_found = [&accessor] {
      return ErrorResponse(
          404, absl::StrCat("failed to find accessor entry for secret_id_accessor: \"", *accessor,
                            "\""));
    };
    if (auto role = store.ReadRole(name); !role.ok()) return RoleError(role.status(), name);
    if (destroy) {
      absl::Status s = store.DestroySecretIdByAccessor(name, *accessor);
      if (absl::IsNotFound(s)) return not_found();
      return s.ok() ? internal::NoContent() : RoleError(s, name);
    }
    auto info = store.LookupSecretIdByAccessor(name, *accessor);
    if (absl::IsNotFound(info.status())) return not_found();
    if (!info.ok()) return ErrorResponse(info.status());
    return internal::Envelope(rid, SecretIdJson(*info), nullptr, kMountType);
  }
  return NotFoundRoute(req.path);
}

}  // namespace ward::api
