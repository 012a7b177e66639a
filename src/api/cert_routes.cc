// auth/<cert mount>/* routes of VaultHandler and direct certificate identity (docs/cert-auth.md).

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/handler.h"
#include "api/internal/auth_json.h"
#include "api/internal/json.h"
#include "api/internal/login_guard.h"
#include "api/internal/request.h"
#include "auth/auth_mounts.h"
#include "auth/cert_auth.h"
#include "core/secure_bytes.h"
#include "core/strings.h"
#include "crypto/hmac.h"
#include "spdlog/spdlog.h"

namespace ward::api {

using internal::ErrorResponse;
namespace json = boost::json;
using internal::Request;
using internal::Seconds;
using internal::TrimSlashes;

namespace {

constexpr std::string_view kMountType = "cert";

// Vault's read of auth/<m>/certs/<name>: every field of the cert role, the ones Ward does not
// implement at their empty values.
json::object RoleJson(const auth::CertRole& r) {
  json::array policies = internal::StringsToJson(r.token_policies);
  json::object o{{"certificate", r.certificate},
                 {"display_name", r.display_name},
                 {"allowed_names", json::array{}},
                 {"allowed_common_names", internal::StringsToJson(r.allowed_common_names)},
                 {"allowed_dns_sans", internal::StringsToJson(r.allowed_dns_sans)},
                 {"allowed_email_sans", internal::StringsToJson(r.allowed_email_sans)},
                 {"allowed_uri_sans", internal::StringsToJson(r.allowed_uri_sans)},
                 {"allowed_organizational_units",
                  internal::StringsToJson(r.allowed_organizational_units)},
                 {"required_extensions", json::array{}},
                 {"allowed_metadata_extensions", json::array{}},
                 {"ocsp_ca_certificates", ""},
                 {"ocsp_enabled", false},
                 {"ocsp_servers_override", json::array{}},
                 {"ocsp_fail_open", false},
                 {"ocsp_query_all_servers", false},
                 {"token_bound_cidrs", internal::StringsToJson(r.token_bound_cidrs)},
                 {"token_explicit_max_ttl", 0},
                 {"token_max_ttl", Seconds(r.token_max_ttl)},
                 {"token_no_default_policy", r.token_no_default_policy},
                 {"token_num_uses", 0},
                 {"token_period", 0},
                 {"token_policies", policies},
                 {"token_ttl", Seconds(r.token_ttl)},
                 {"token_type", r.token_type}};
  // Vault shows the legacy field only when policies are set.
  if (!r.token_policies.empty()) o["policies"] = policies;
  // And bound_cidrs only when the networks were last set under that legacy name.
  if (r.legacy_bound_cidrs) o["bound_cidrs"] = internal::StringsToJson(r.token_bound_cidrs);
  return o;
}

// Ward does not query OCSP responders. A role asking for OCSP checking (or configuring it) is
// refused rather than silently left unchecked; the fields' empty values are accepted, so a
// client writing every field of a role read back still works.
// Errors: kInvalidArgument for a mistyped field or a non-empty OCSP setting.
absl::Status CheckNoOcsp(const json::object& body) {
  constexpr std::string_view kUnsupported = "OCSP checking is not supported";
  auto enabled = internal::GetBool(body, "ocsp_enabled");
  auto ca = internal::GetString(body, "ocsp_ca_certificates");
  auto servers = internal::GetStringList(body, "ocsp_servers_override");
  auto fail_open = internal::GetBool(body, "ocsp_fail_open");
  auto query_all = internal::GetBool(body, "ocsp_query_all_servers");
  for (const absl::Status& s :
       {enabled.status(), ca.status(), servers.status(), fail_open.status(), query_all.status()}) {
    if (!s.ok()) return s;
  }
  if (enabled->value_or(false)) return absl::InvalidArgumentError(std::string(kUnsupported));
  auto refuse = [&](std::string_view field) {
    return absl::InvalidArgumentError(absl::StrCat(core::ToAbsl(kUnsupported), ": ",
                                                   core::ToAbsl(field), " cannot be set"));
  };
  if (!ca->value_or("").empty()) return refuse("ocsp_ca_certificates");
  if (servers->has_value() && !(*servers)->empty()) return refuse("ocsp_servers_override");
  if (fail_open->value_or(false)) return refuse("ocsp_fail_open");
  if (query_all->value_or(false)) return refuse("ocsp_query_all_servers");
  return absl::OkStatus();
}

// Reads the role parameters of Vault's cert method. Errors: kInvalidArgument for a mistyped field.
absl::StatusOr<auth::CertRoleUpdate> RoleUpdateFrom(const json::object& body) {
  auth::CertRoleUpdate u;
  auto certificate = internal::GetString(body, "certificate");
  auto cns = internal::GetStringList(body, "allowed_common_names");
  auto dns = internal::GetStringList(body, "allowed_dns_sans");
  auto email = internal::GetStringList(body, "allowed_email_sans");
  auto uri = internal::GetStringList(body, "allowed_uri_sans");
  auto ous = internal::GetStringList(body, "allowed_organizational_units");
  auto display_name = internal::GetString(body, "display_name");
  auto token_policies = internal::GetStringList(body, "token_policies");
  auto policies = internal::GetStringList(body, "policies");
  auto token_ttl = internal::GetDuration(body, "token_ttl");
  auto ttl = internal::GetDuration(body, "ttl");
  auto token_max_ttl = internal::GetDuration(body, "token_max_ttl");
  auto max_ttl = internal::GetDuration(body, "max_ttl");
  auto token_type = internal::GetString(body, "token_type");
  auto no_default = internal::GetBool(body, "token_no_default_policy");
  auto token_cidrs = internal::GetStringList(body, "token_bound_cidrs");
  auto legacy_cidrs = internal::GetStringList(body, "bound_cidrs");
  for (const absl::Status& s :
       {certificate.status(), cns.status(), dns.status(), email.status(), uri.status(),
        ous.status(), display_name.status(), token_policies.status(), policies.status(),
        token_ttl.status(), ttl.status(), token_max_ttl.status(), max_ttl.status(),
        token_type.status(), no_default.status(), token_cidrs.status(), legacy_cidrs.status(),
        CheckNoOcsp(body)}) {
    if (!s.ok()) return s;
  }
  u.certificate = *certificate;
  u.allowed_common_names = *cns;
  u.allowed_dns_sans = *dns;
  u.allowed_email_sans = *email;
  u.allowed_uri_sans = *uri;
  u.allowed_organizational_units = *ous;
  u.display_name = *display_name;
  // The pre-1.2 names (policies, ttl, max_ttl); the token_* name wins when both are given.
  u.token_policies = token_policies->has_value() ? *token_policies : *policies;
  u.token_ttl = token_ttl->has_value() ? *token_ttl : *ttl;
  u.token_max_ttl = token_max_ttl->has_value() ? *token_max_ttl : *max_ttl;
  u.token_type = *token_type;
  u.token_no_default_policy = *no_default;
  u.token_bound_cidrs = *token_cidrs;
  u.bound_cidrs = *legacy_cidrs;
  return u;
}

// Vault names a login token "<mount path, '/' as '-'><role display name>": "cert-web".
std::string TokenDisplayName(const auth::AuthMountEntry& mount, const std::string& display_name) {
  std::string out = mount.path;
  std::replace(out.begin(), out.end(), '/', '-');
  return out + display_name;
}

// The token store's policy rule (Vault's policyutil.SanitizePolicies): trimmed, lower-cased,
// sorted, unique, "default" added unless `no_default`; "root" replaces everything.
std::vector<std::string> SanitizePolicies(const std::vector<std::string>& in, bool no_default) {
  std::vector<std::string> out;
  for (const std::string& raw : in) {
    size_t begin = raw.find_first_not_of(" \t\r\n");
    if (begin == std::string::npos) continue;
    size_t end = raw.find_last_not_of(" \t\r\n");
    std::string name = raw.substr(begin, end - begin + 1);
    for (char& c : name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (name == "root") return {"root"};
    out.push_back(std::move(name));
  }
  if (!no_default) out.push_back("default");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (no_default) out.erase(std::remove(out.begin(), out.end(), "default"), out.end());
  return out;
}

// A short, non-reversible name for a client certificate in logs.
std::string Fingerprint(const std::vector<std::string>& chain) {
  if (chain.empty()) return "-";
  return crypto::HexEncode(crypto::Sha256(chain.front())).substr(0, 16);
}

net::HttpResponse NotFoundRoute(const std::string& path) {
  return ErrorResponse(404,
                       absl::StrCat("no handler for route \"", path, "\". route entry not found."));
}

// auth/<m>/crls/<name>: GET (Vault's CRLInfo: "cdp" null, "serials" {"<decimal>": {}}), PUT with
// `crl` (PEM or DER), DELETE. A missing CRL is 400 "no such CRL <name>", as in Vault.
net::HttpResponse HandleCrl(Request& req, const auth::CertMount& mount, const std::string& name) {
  auth::CertAuthStore& store = *mount.store;
  const std::string& rid = req.http.request_id;
  auto bad_request_if_missing = [](const absl::Status& s) {
    return absl::IsNotFound(s) ? ErrorResponse(400, std::string(s.message())) : ErrorResponse(s);
  };
  if (req.method == "GET") {
    absl::StatusOr<auth::CertCrl> crl = store.ReadCrl(name);
    if (!crl.ok()) return bad_request_if_missing(crl.status());
    json::object serials;
    for (const std::string& serial : crl->serials) serials[serial] = json::object{};
    return internal::Envelope(rid, json::object{{"cdp", nullptr}, {"serials", std::move(serials)}},
                              nullptr, kMountType);
  }
  if (req.method == "DELETE") {
    absl::Status s = store.DeleteCrl(name);
    if (!s.ok()) return bad_request_if_missing(s);
    spdlog::info("event=cert_crl_deleted mount=auth/{} request_id={}", mount.entry.path, rid);
    return internal::NoContent();
  }
  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto crl = internal::GetString(*body, "crl");
  auto url = internal::GetString(*body, "url");
  if (!crl.ok()) return ErrorResponse(crl.status());
  if (!url.ok()) return ErrorResponse(url.status());
  if (!crl->has_value()) {
    if (url->has_value()) {
      return ErrorResponse(400, "fetching CRLs from a URL is not supported; give the CRL in 'crl'");
    }
    return ErrorResponse(400, "one of 'crl' or 'url' must be provided");
  }
  absl::StatusOr<auth::CertCrl> written = store.WriteCrl(name, **crl);
  if (!written.ok()) return ErrorResponse(written.status());
  spdlog::info(
      "event=cert_crl_written mount=auth/{} issuer=\"{}\" serials={} signature_verified={} "
      "request_id={}",
      mount.entry.path, written->issuer, written->serials.size(), written->signature_verified,
      rid);
  return internal::NoContent();
}

}  // namespace

std::optional<auth::TokenEntry> VaultHandler::CertIdentity(const UnsealedState& state,
                                                           const net::HttpRequest& http,
                                                           absl::Time now) {
  if (http.peer_certificates_der.empty() || state.auth_mounts == nullptr) return std::nullopt;
  for (const auth::CertMount& mount : state.auth_mounts->CertMounts()) {
    std::optional<auth::CertMatch> match = mount.store->MatchCached(http.peer_certificates_der);
    if (!match) continue;
    // The role's token_bound_cidrs hold for the certificate itself, as at login (where Vault
    // refuses with "permission denied"): the first accepting role decides, no later one is
    // tried.
    if (!match->AllowsSource(http.remote_address)) return std::nullopt;
    auth::TokenEntry e;
    e.policies = SanitizePolicies(match->token_policies, match->token_no_default_policy);
    // A login could not mint a root token from a cert role; neither may a bare certificate.
    if (e.HasPolicy("root")) continue;
    e.bound_cidrs = match->token_bound_cidrs;
    e.display_name = TokenDisplayName(mount.entry, match->display_name);
    e.meta = std::move(match->metadata);
    e.path = absl::StrCat("auth/", mount.entry.path, "login");
    e.creation_time = now;
    e.expire_time = absl::InfiniteFuture();
    e.orphan = true;
    e.renewable = false;
    e.num_uses = 0;
    return e;
  }
  return std::nullopt;
}

std::optional<net::HttpResponse> VaultHandler::HandleCertLogin(Request& req) {
  if (!absl::StartsWith(req.path, "auth/")) return std::nullopt;
  std::optional<auth::CertMount> match =
      req.state->auth_mounts->FindCert(std::string_view(req.path).substr(5));
  if (!match || TrimSlashes(match->rest) != "login") return std::nullopt;
  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");

  auth::FailedLoginLimiter& limiter = *req.state->login_limiter;
  const std::string& client = req.http.remote_address;
  if (std::optional<absl::Duration> wait = limiter.RetryAfter(client)) {
    int64_t seconds =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(*wait))));
    spdlog::info("event=login_rate_limited mount=auth/{} remote_address={} retry_after_s={}",
                 match->entry.path, client, seconds);
    net::HttpResponse r = ErrorResponse(429, "too many failed login attempts");
    r.headers.emplace_back("Retry-After", std::to_string(seconds));
    return r;
  }
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto name = internal::GetString(*body, "name");
  if (!name.ok()) return ErrorResponse(name.status());
  const std::vector<std::string>& chain = req.http.peer_certificates_der;
  absl::StatusOr<auth::CertMatch> grant = match->store->Match(chain, name->value_or(""));
  if (!grant.ok()) {
    // Every refused certificate drains the client's bucket; internal errors do not.
    if (grant.status().code() == absl::StatusCode::kInvalidArgument) limiter.RecordFailure(client);
    spdlog::info(
        "event=cert_login_failed mount=auth/{} leaf_sha256={} reason=\"{}\" remote_address={} "
        "request_id={}",
        match->entry.path, Fingerprint(chain), std::string(grant.status().message()), client,
        req.request_id());
    return ErrorResponse(grant.status());
  }
  // Vault checks the role's token_bound_cidrs at login too, answering "permission denied". A
  // certificate that verified is not a guess, so the limiter is left alone.
  if (!grant->AllowsSource(client)) {
    spdlog::info(
        "event=cert_login_failed mount=auth/{} leaf_sha256={} reason=\"source address outside "
        "the role's token_bound_cidrs\" remote_address={} request_id={}",
        match->entry.path, Fingerprint(chain), client, req.request_id());
    return ErrorResponse(403, "permission denied");
  }
  auth::CreateTokenRequest create;
  create.policies = grant->token_policies;
  create.meta = grant->metadata;
  create.display_name = TokenDisplayName(match->entry, grant->display_name);
  if (grant->token_ttl > absl::ZeroDuration()) create.ttl = grant->token_ttl;
  create.explicit_max_ttl = grant->token_max_ttl;
  create.renewable = true;
  create.orphan = true;
  create.no_default_policy = grant->token_no_default_policy;
  create.path = absl::StrCat("auth/", match->entry.path, "login");
  create.bound_cidrs = grant->token_bound_cidrs;
  auto issued = req.state->tokens->CreateToken(nullptr, create);
  if (!issued.ok()) return ErrorResponse(issued.status());
  // The mount may have been disabled while this login ran (docs/cert-auth.md).
  if (auto gone = internal::RevokeIfUnmounted(*req.state, match->entry, *issued, req.path)) {
    return *std::move(gone);
  }
  spdlog::info("event=cert_login mount=auth/{} leaf_sha256={} remote_address={} request_id={}",
               match->entry.path, Fingerprint(chain), client, req.request_id());
  json::object auth_json =
      internal::AuthJson(issued->token, issued->entry, issued->entry.creation_time);
  core::SecureZero(issued->token);
  return internal::Envelope(req.request_id(), nullptr, std::move(auth_json), kMountType);
}

net::HttpResponse VaultHandler::HandleCert(Request& req, const auth::CertMount& mount) {
  auth::CertAuthStore& store = *mount.store;
  const std::string& rid = req.http.request_id;
  const std::string& m = req.method;
  std::string_view rest = TrimSlashes(mount.rest);
  if (rest == "certs") {
    if (m != "LIST") return ErrorResponse(405, "unsupported operation");
    std::vector<std::string> keys = store.ListRoles();
    if (keys.empty()) return ErrorResponse(404, "");
    return internal::Envelope(rid, json::object{{"keys", internal::StringsToJson(keys)}}, nullptr,
                              kMountType);
  }
  if (rest == "crls") {
    if (m != "LIST") return ErrorResponse(405, "unsupported operation");
    std::vector<std::string> keys = store.ListCrls();
    if (keys.empty()) return ErrorResponse(404, "");
    return internal::Envelope(rid, json::object{{"keys", internal::StringsToJson(keys)}}, nullptr,
                              kMountType);
  }
  if (absl::StartsWith(core::ToAbsl(rest), "crls/")) {
    std::string name(rest.substr(5));
    if (name.empty() || name.find('/') != std::string::npos) return NotFoundRoute(req.path);
    return HandleCrl(req, mount, name);
  }
  if (!absl::StartsWith(core::ToAbsl(rest), "certs/")) return NotFoundRoute(req.path);
  std::string name(rest.substr(6));
  if (name.empty() || name.find('/') != std::string::npos) return NotFoundRoute(req.path);
  if (m == "GET") {
    auto role = store.ReadRole(name);
    if (!role.ok()) return ErrorResponse(role.status());
    return internal::Envelope(rid, RoleJson(*role), nullptr, kMountType);
  }
  if (m == "DELETE") {
    absl::Status s = store.DeleteRole(name);
    if (!s.ok()) return ErrorResponse(s);
    spdlog::info("event=cert_role_deleted mount=auth/{} request_id={}", mount.entry.path, rid);
    return internal::NoContent();
  }
  if (m != "PUT") return ErrorResponse(405, "unsupported operation");
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto update = RoleUpdateFrom(*body);
  if (!update.ok()) return ErrorResponse(update.status());
  auto role = store.WriteRole(name, *update);
  if (!role.ok()) return ErrorResponse(role.status());
  spdlog::info("event=cert_role_written mount=auth/{} request_id={}", mount.entry.path, rid);
  return internal::NoContent();
}

}  // namespace ward::api
