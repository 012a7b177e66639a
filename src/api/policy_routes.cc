// ACL policy routes of VaultHandler: sys/policies/acl[/<name>], the older sys/policy[/<name>],
// and sys/capabilities, sys/capabilities-self, sys/capabilities-accessor (docs/policies.md).

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/handler.h"
#include "api/internal/json.h"
#include "api/internal/request.h"
#include "auth/acl.h"
#include "auth/policy_store.h"
#include "core/secure_bytes.h"
#include "core/strings.h"

namespace ward::api {

using internal::ErrorResponse;
namespace json = boost::json;
using internal::Request;

namespace {

constexpr std::string_view kRulesDeprecated = "'rules' is deprecated, please use 'policy' instead";

// Strict standard base64 (with padding); '\r' and '\n' are skipped, as Go's decoder does.
// Vault accepts a policy sent base64-encoded. nullopt if `text` is not valid base64.
std::optional<std::string> DecodeBase64(std::string_view text) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string clean;
  for (char c : text) {
    if (c != '\r' && c != '\n') clean.push_back(c);
  }
  if (clean.empty() || clean.size() % 4 != 0) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (size_t i = 0; i < clean.size(); ++i) {
    char c = clean[i];
    if (c == '=') {
      if (i + 2 < clean.size()) return std::nullopt;  // only the last two may be padding
      ++padding;
      continue;
    }
    if (padding > 0) return std::nullopt;  // data after padding
    size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

json::array ToJson(const std::vector<std::string>& v) { return internal::StringsToJson(v); }

// An envelope whose only content is warnings (Vault's response for a write with a warning).
net::HttpResponse WarningResponse(std::string_view request_id, std::string_view warning) {
  return internal::JsonResponse(
      200, json::object{{"request_id", json::string_view(request_id.data(), request_id.size())},
                        {"lease_id", ""},
                        {"renewable", false},
                        {"lease_duration", 0},
                        {"data", nullptr},
                        {"wrap_info", nullptr},
                        {"warnings", json::array{json::string_view(warning.data(), warning.size())}},
                        {"auth", nullptr},
                        {"mount_type", "system"}});
}

// The policy name after `prefix` in `path`, without trailing '/'.
std::string NameAfter(std::string_view path, std::string_view prefix) {
  std::string_view name = path.substr(prefix.size());
  while (!name.empty() && name.back() == '/') name.remove_suffix(1);
  return std::string(name);
}

}  // namespace

net::HttpResponse VaultHandler::HandlePolicy(Request& req) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  const std::string& rid = req.http.request_id;
  auth::PolicyStore& store = *req.state->policies;

  // Lists.
  bool legacy_list = p == "sys/policy" || p == "sys/policy/";
  bool acl_list = p == "sys/policies/acl" || p == "sys/policies/acl/";
  if (legacy_list || acl_list) {
    if (!(m == "LIST" || (legacy_list && m == "GET"))) {
      return ErrorResponse(405, "unsupported operation");
    }
    json::array keys = ToJson(store.List());
    json::object data{{"keys", keys}};
    if (legacy_list) data["policies"] = keys;
    return internal::Envelope(rid, data, nullptr, "system", true);
  }

  // One policy.
  bool legacy = absl::StartsWith(p, "sys/policy/");
  if (legacy || absl::StartsWith(p, "sys/policies/acl/")) {
    std::string name = NameAfter(p, legacy ? "sys/policy/" : "sys/policies/acl/");
    if (m == "GET") {
      auto policy = store.Get(name);
      if (!policy.ok()) return ErrorResponse(policy.status());
      json::object data{{"name", policy->name}, {legacy ? "rules" : "policy", policy->text}};
      return internal::Envelope(rid, data, nullptr, "system", true);
    }
    if (m == "PUT") {
      auto body = internal::ParseBody(req.http.body);
      if (!body.ok()) return ErrorResponse(body.status());
      auto text = internal::GetString(*body, "policy");
      if (!text.ok()) return ErrorResponse(text.status());
      std::string policy = text->value_or("");
      bool used_rules = false;
      if (policy.empty() && legacy) {
        auto rules = internal::GetString(*body, "rules");
        if (!rules.ok()) return ErrorResponse(rules.status());
        policy = rules->value_or("");
        used_rules = true;
      }
      if (auth::PolicyStore::NormaliseName(name).empty()) {
        return ErrorResponse(400, "policy name must be provided in the URL");
      }
      if (policy.empty()) return ErrorResponse(400, "'policy' parameter not supplied or empty");
      if (auto decoded = DecodeBase64(policy)) policy = std::move(*decoded);
      absl::Status s = store.Put(name, policy);
      if (!s.ok()) return ErrorResponse(s);
      return used_rules ? WarningResponse(rid, kRulesDeprecated) : internal::NoContent();
    }
    if (m == "DELETE") {
      absl::Status s = store.Delete(name);
      return s.ok() ? internal::NoContent() : ErrorResponse(s);
    }
    return ErrorResponse(405, "unsupported operation");
  }

  // Capabilities.
  bool self = p == "sys/capabilities-self" || p == "sys/capabilities-self/";
  bool by_token = p == "sys/capabilities" || p == "sys/capabilities/";
  bool by_accessor = p == "sys/capabilities-accessor" || p == "sys/capabilities-accessor/";
  if (self || by_token || by_accessor) {
    if (m != "PUT") return ErrorResponse(405, "unsupported operation");
    auto body = internal::ParseBody(req.http.body);
    if (!body.ok()) return ErrorResponse(body.status());
    auto paths = internal::GetStringList(*body, "paths");
    if (!paths.ok()) return ErrorResponse(paths.status());
    std::vector<std::string> list = paths->value_or(std::vector<std::string>{});
    if (list.empty()) {
      auto path = internal::GetStringList(*body, "path");  // deprecated field
      if (!path.ok()) return ErrorResponse(path.status());
      list = path->value_or(std::vector<std::string>{});
    }

    std::vector<std::string> policies;
    if (self) {
      policies = req.token->policies;
    } else if (by_token) {
      auto token = internal::GetString(*body, "token");
      if (!token.ok()) return ErrorResponse(token.status());
      if (!token->has_value() || (*token)->empty()) return ErrorResponse(400, "no token found");
      auto entry = req.state->tokens->Lookup(**token);
      core::SecureZero(**token);
      if (!entry.ok()) {
        return entry.status().code() == absl::StatusCode::kNotFound
                   ? ErrorResponse(400, "invalid token")
                   : ErrorResponse(entry.status());
      }
      policies = entry->policies;
    } else {
      auto accessor = internal::GetString(*body, "accessor");
      if (!accessor.ok()) return ErrorResponse(accessor.status());
      if (!accessor->has_value() || (*accessor)->empty()) {
        return ErrorResponse(400, "missing accessor");
      }
      auto entry = req.state->tokens->LookupByAccessor(**accessor);
      if (!entry.ok()) return ErrorResponse(entry.status());
      policies = entry->policies;
    }
    if (list.empty()) return ErrorResponse(400, "paths must be supplied");

    auth::Acl acl = store.AclFor(policies);
    json::object data;
    for (const std::string& path : list) data[path] = ToJson(acl.CapabilityNamesOn(path));
    // Vault keeps "capabilities" for a single path, for older clients.
    if (list.size() == 1) data["capabilities"] = data[list[0]];
    return internal::Envelope(rid, data, nullptr, "system", true);
  }

  return ErrorResponse(404, absl::StrCat("unsupported path \"", p, "\""));
}

}  // namespace ward::api
