#include "api/handler.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>

#include <boost/url.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "api/http_status.h"
#include "api/internal/http_metrics.h"
#include "api/internal/json.h"
#include "api/internal/request.h"
#include "auth/acl.h"
#include "core/secure_bytes.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "crypto/hmac.h"
#include "spdlog/spdlog.h"

namespace ward::api {

using internal::ErrorResponse;
namespace json = boost::json;
using internal::Request;

internal::Request::~Request() {
  core::SecureZero(client_token);
  if (response_data.has_value()) core::SecureZero(response_data->json);
}

std::string_view internal::TrimSlashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

std::string internal::TokenFromHeaders(const net::HttpRequest& http) {
  std::string_view token = http.Header("x-vault-token");
  if (!token.empty()) return std::string(token);
  std::string_view authz = http.Header("authorization");
  if (authz.size() > 7 && absl::EqualsIgnoreCase(core::ToAbsl(authz.substr(0, 7)), "bearer ")) {
    return std::string(absl::StripAsciiWhitespace(core::ToAbsl(authz.substr(7))));
  }
  return "";
}

namespace {

constexpr std::string_view kSealedMessage = "Vault is sealed";

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// Splits the request target into a decoded path and query parameters.
// Errors: kInvalidArgument for a target that is not origin-form, has "." / ".." segments, or
// whose decoded path or query is not UTF-8 (a path becomes a storage key and a JSON string).
absl::Status ParseTarget(std::string_view target, Request& req) {
  auto url = boost::urls::parse_origin_form(boost::core::string_view(target.data(), target.size()));
  if (!url) return absl::InvalidArgumentError("invalid request target");
  std::string path = url->path();
  if (!IsUtf8(path)) return absl::InvalidArgumentError("invalid path: not UTF-8");
  if (!absl::StartsWith(path, "/v1/")) return absl::NotFoundError("");
  path = path.substr(4);
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    if (segment == "." || segment == "..") {
      return absl::InvalidArgumentError("invalid path: \".\" and \"..\" segments are not allowed");
    }
  }
  req.path = std::move(path);
  for (auto param : url->params()) {
    if (!IsUtf8(param.key) || !IsUtf8(param.value)) {
      return absl::InvalidArgumentError("invalid query: not UTF-8");
    }
    req.query[param.key] = param.value;
  }
  return absl::OkStatus();
}

bool PathIs(const std::string& path, std::string_view route) {
  return path == route || (path.size() == route.size() + 1 && path.compare(0, route.size(), route) == 0 &&
                           path.back() == '/');
}

// Vault's existence check, which decides between the create and update capabilities for a
// write: a KV v2 data/ or metadata/ path exists once the secret has metadata; every other path
// has no existence check and counts as existing (update).
bool WriteTargetExists(const Request& req) {
  auto mount = req.state->mounts->Find(req.path);
  if (!mount || mount->engine == nullptr || mount->entry->type != "kv") return true;
  std::string_view rest = mount->rest;
  for (std::string_view route : {std::string_view("data/"), std::string_view("metadata/")}) {
    if (rest.substr(0, route.size()) != route) continue;
    std::string_view secret = rest.substr(route.size());
    while (!secret.empty() && secret.back() == '/') secret.remove_suffix(1);
    if (secret.empty()) return true;
    return mount->engine->ReadMetadata(secret).status().code() != absl::StatusCode::kNotFound;
  }
  return true;
}

auth::Capability CapabilityFor(const Request& req) {
  const std::string& method = req.method;
  if (method == "GET" || method == "HEAD") return auth::Capability::kRead;
  if (method == "LIST") return auth::Capability::kList;
  if (method == "PATCH") return auth::Capability::kPatch;
  if (method == "DELETE") return auth::Capability::kDelete;
  return WriteTargetExists(req) ? auth::Capability::kUpdate : auth::Capability::kCreate;
}

json::object SealStatusJson(const barrier::SealStatus& s, const HandlerOptions& options) {
  json::object o{{"type", "shamir"},
                 {"initialized", s.initialized},
                 {"sealed", s.sealed},
                 {"t", s.threshold},
                 {"n", s.shares},
                 {"progress", s.progress},
                 {"nonce", s.nonce},
                 {"version", options.version},
                 {"build_date", "2026-11-22T00:00:00Z"},
                 {"migration", false},
                 {"recovery_seal", false},
                 {"storage_type", "sqlite"}};
  if (!s.sealed) {
    o["cluster_name"] = options.cluster_name;
    o["cluster_id"] = options.cluster_id;
  }
  return o;
}

std::string EncodeBase64(const core::SecureBytes& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                          static_cast<int>(bytes.size()));
  out.resize(n);
  return out;
}

// The API path ("secret/data/a") of a GET, HEAD or LIST request for /v1/..., without the
// query; nullopt for any other method, another prefix or a percent-encoded path.
std::optional<std::string_view> ReadPathOf(const net::HttpRequest& http) {
  if (http.method != "GET" && http.method != "HEAD" && http.method != "LIST") return std::nullopt;
  constexpr std::string_view kPrefix = "/v1/";
  std::string_view path = std::string_view(http.target).substr(0, http.target.find('?'));
  if (path.substr(0, kPrefix.size()) != kPrefix || path.find('%') != std::string_view::npos) {
    return std::nullopt;
  }
  return path.substr(kPrefix.size());
}

}  // namespace

VaultHandler::VaultHandler(Core& core, core::Clock& clock, HandlerOptions options)
    : core_(core),
      clock_(clock),
      options_(std::move(options)),
      metrics_(std::make_shared<internal::HttpMetrics>(options_.version)),
      quotas_(internal::MakeQuotaState()) {}

net::HttpResponse VaultHandler::Handle(const net::HttpRequest& http) {
  Request req{http, "", "", {}, nullptr, std::nullopt, internal::TokenFromHeaders(http)};
  return Serve(req);
}

std::optional<net::HttpResponse> VaultHandler::HandleInline(const net::HttpRequest& http) {
  Request req{http, "", "", {}, nullptr, std::nullopt, internal::TokenFromHeaders(http)};
  // The token looked up for the decision is the one Serve authenticates with.
  if (!InlineAllowed(http, !req.client_token.empty(),
                     [&req](const std::shared_ptr<const UnsealedState>& state) {
                       return &LookupToken(req, state);
                     })) {
    return std::nullopt;
  }
  return Serve(req);
}

net::HttpResponse VaultHandler::Serve(Request& req) {
  const net::HttpRequest& http = req.http;
  req.method = absl::AsciiStrToUpper(core::ToAbsl(http.method));
  if (req.method == "POST") req.method = "PUT";
  absl::Status parsed = ParseTarget(http.target, req);
  if (!parsed.ok()) return ErrorResponse(parsed);
  if (req.method == "GET" && (req.Query("list") == "true" || req.Query("list") == "1")) {
    req.method = "LIST";
  }
  static constexpr std::string_view kMethods[] = {"GET", "HEAD", "PUT", "PATCH", "DELETE", "LIST"};
  if (std::find(std::begin(kMethods), std::end(kMethods), req.method) == std::end(kMethods)) {
    return ErrorResponse(405, "unsupported operation");
  }
  absl::Time start = clock_.Now();
  std::vector<std::pair<std::string, std::string>> quota_headers;
  auto limited = CheckQuota(req, quota_headers);
  net::HttpResponse response = limited ? *std::move(limited) : DispatchAudited(req);
  for (auto& h : quota_headers) response.headers.push_back(std::move(h));
  internal::RecordRequest(*metrics_, req.path, req.state.get(), response.status,
                          clock_.Now() - start);
  return response;
}

bool VaultHandler::MayRunInline(const net::HttpRequest& http) const {
  std::string token = internal::TokenFromHeaders(http);
  const bool allowed = InlineAllowed(http, !token.empty(),
                                     [](const std::shared_ptr<const UnsealedState>&) {
                                       return nullptr;
                                     });
  core::SecureZero(token);
  return allowed;
}

template <typename LookUp>
bool VaultHandler::InlineAllowed(const net::HttpRequest& http, bool has_token,
                                 const LookUp& look_up) const {
  std::optional<std::string_view> path = ReadPathOf(http);
  if (!path.has_value()) return false;
  // Sealed: the seal status may read storage (before initialisation), and nothing else is fast.
  std::shared_ptr<const UnsealedState> state = core_.State();
  if (state == nullptr) return false;
  if (http.method != "LIST" && (*path == "sys/health" || *path == "sys/seal-status")) return true;
  return IsSideEffectFreeRead(http, *state, has_token ? look_up(state) : nullptr);
}

namespace {

// What a connection remembers of the token its last request carried: the token and its keyed
// hash in the token store of one unsealed state. A client sends the same token on its
// connection request after request, so the HMAC that finds a token is computed once per
// connection and token rather than per request; the entry itself is still looked up (and
// checked for expiry and revocation) every time. The raw token is kept while the connection
// lives (its request buffers hold it as long) and zeroed with the memo.
class TokenMemo : public net::ConnectionMemo {
 public:
  ~TokenMemo() override { core::SecureZero(token); }

  std::weak_ptr<const UnsealedState> state;  // whose token store id_hash belongs to
  std::string token;
  std::string id_hash;
};

// state->tokens->Lookup(token), with the hashing remembered on the request's connection.
absl::StatusOr<auth::TokenEntry> LookupRemembered(const net::HttpRequest& http,
                                                  const std::string& token,
                                                  const std::shared_ptr<const UnsealedState>& state) {
  const auth::TokenStore& tokens = *state->tokens;
  if (http.connection_memo == nullptr || token.empty()) return tokens.Lookup(token);
  std::unique_ptr<net::ConnectionMemo>& slot = *http.connection_memo;
  if (auto* memo = dynamic_cast<TokenMemo*>(slot.get());
      memo != nullptr && !memo->state.owner_before(state) && !state.owner_before(memo->state) &&
      crypto::ConstantTimeEquals(memo->token, token)) {
    return tokens.LookupHashed(memo->id_hash);
  }
  absl::StatusOr<std::string> id_hash = tokens.IdHash(token);
  if (!id_hash.ok()) return tokens.Lookup(token);  // the same failure, reported as Lookup does
  auto memo = std::make_unique<TokenMemo>();
  memo->state = state;
  memo->token = token;
  memo->id_hash = *std::move(id_hash);
  const TokenMemo& remembered = *memo;
  slot = std::move(memo);
  return tokens.LookupHashed(remembered.id_hash);
}

}  // namespace

const absl::StatusOr<auth::TokenEntry>& VaultHandler::LookupToken(
    Request& req, const std::shared_ptr<const UnsealedState>& state) {
  if (!req.token_lookup.has_value() || req.token_lookup_state != state) {
    req.token_lookup = LookupRemembered(req.http, req.client_token, state);
    req.token_lookup_state = state;
  }
  return *req.token_lookup;
}

bool VaultHandler::IsSideEffectFreeRead(const net::HttpRequest& http, const UnsealedState& state,
                                        const absl::StatusOr<auth::TokenEntry>* looked_up) const {
  std::optional<std::string_view> path = ReadPathOf(http);
  if (!path.has_value()) return false;
  bool fast_route = http.method == "GET" && *path == "auth/token/lookup-self";
  if (!fast_route) {
    std::optional<MountMatch> mount = state.mounts->Find(*path);
    fast_route = mount && mount->engine != nullptr && mount->pki == nullptr &&
                 mount->entry->type == "kv" &&
                 (absl::StartsWith(mount->rest, "data/") || absl::StartsWith(mount->rest, "metadata/"));
  }
  if (!fast_route) return false;
  // Authorize consumes a use of a use-limited token, which is a storage commit.
  if (looked_up != nullptr) {
    if (!looked_up->ok()) return looked_up->status().code() == absl::StatusCode::kNotFound;
    return (*looked_up)->num_uses == 0;
  }
  std::string token = internal::TokenFromHeaders(http);
  if (token.empty()) return false;
  absl::StatusOr<bool> unlimited = state.tokens->HasUnlimitedUses(token);
  core::SecureZero(token);
  if (!unlimited.ok()) return unlimited.status().code() == absl::StatusCode::kNotFound;
  return *unlimited;
}

net::HttpResponse VaultHandler::Dispatch(Request& req) {
  // Routes that work while sealed and need no token.
  if (PathIs(req.path, "sys/health")) return HandleHealth(req);
  if (PathIs(req.path, "sys/seal-status")) {
    if (req.method != "GET") return ErrorResponse(405, "unsupported operation");
    return HandleSealStatus();
  }
  if (PathIs(req.path, "sys/init")) return HandleInit(req);
  if (PathIs(req.path, "sys/unseal")) return HandleUnseal(req);
  if (PathIs(req.path, "sys/metrics") && options_.unauthenticated_metrics_access) {
    return HandleMetrics(req);
  }

  req.state = core_.State();
  if (req.state == nullptr) return ErrorResponse(503, kSealedMessage);

  // Login routes need no token (they hand one out).
  // (Auth methods add their login dispatch here.)
  if (auto login = HandleAppRoleLogin(req)) return *std::move(login);
  if (auto login = HandleCertLogin(req)) return *std::move(login);
  // PKI CA, CRL and bundle reads are public, as in Vault.
  if (auto pki = HandlePkiUnauthenticated(req)) return *std::move(pki);

  if (auto denied = Authenticate(req)) return *std::move(denied);
  if (auto denied = Authorize(req)) return *std::move(denied);

  // Routes that need a token and a policy that allows them.
  if (absl::StartsWith(req.path, "sys/")) return HandleSys(req);
  if (absl::StartsWith(req.path, "auth/token/")) return HandleToken(req);
  if (absl::StartsWith(req.path, "auth/")) {
    if (auto cert = req.state->auth_mounts->FindCert(std::string_view(req.path).substr(5))) {
      return HandleCert(req, *cert);
    }
    return HandleAppRole(req);
  }
  if (auto mount = req.state->mounts->Find(req.path)) {
    if (mount->pki != nullptr) return HandlePki(req, *mount);
    return HandleKv(req, *mount);
  }
  return ErrorResponse(404, absl::StrCat("no handler for route \"", req.path,
                                         "\". route entry not found."));
}

std::optional<net::HttpResponse> VaultHandler::Authenticate(Request& req) {
  // Vault answers a missing or unknown token with 403 "permission denied".
  if (req.client_token.empty()) {
    // Direct identity (docs/cert-auth.md): with no token, a client certificate that a cert role
    // accepts authorises the request with that role's policies. Token routes other than
    // lookup-self need a stored token, so they stay closed to it.
    if (req.http.peer_certificates_der.empty()) return ErrorResponse(403, "permission denied");
    if (absl::StartsWith(req.path, "auth/token/") && !PathIs(req.path, "auth/token/lookup-self")) {
      return ErrorResponse(403, "permission denied");
    }
    std::optional<auth::TokenEntry> identity = CertIdentity(*req.state, req.http, clock_.Now());
    if (!identity) return ErrorResponse(403, "permission denied");
    req.token = std::move(*identity);
    return std::nullopt;
  }
  // Token guessing is slowed like credential guessing on the login routes, by the same
  // limiter with a bucket per address of its own ("token:<address>", so failed logins do not
  // lock out valid tokens and vice versa): unknown tokens drain it, and once it is empty every
  // token-bearing request from that address gets 429 until it refills (a valid token too, or
  // a guess that hit would be told apart from the misses).
  auth::FailedLoginLimiter& limiter = *req.state->login_limiter;
  const std::string& address = req.http.remote_address;
  const std::string client = absl::StrCat("token:", address);
  if (std::optional<absl::Duration> wait = limiter.RetryAfter(client)) {
    const int64_t seconds =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(*wait))));
    spdlog::info("event=token_rate_limited remote_address={} retry_after_s={}", address, seconds);
    net::HttpResponse r = ErrorResponse(429, "too many requests with an invalid token");
    r.headers.emplace_back("Retry-After", std::to_string(seconds));
    return r;
  }
  // The lookup hashes the token with a keyed HMAC and finds the hash in a map, so its timing
  // depends on the HMAC, which the client cannot steer, never on how much of a stored token a
  // guess matches.
  const absl::StatusOr<auth::TokenEntry>& entry = LookupToken(req, req.state);
  if (!entry.ok()) {
    if (entry.status().code() == absl::StatusCode::kNotFound) {
      limiter.RecordFailure(client);
      return ErrorResponse(403, "permission denied");
    }
    return ErrorResponse(entry.status());
  }
  // token_bound_cidrs hold on every use, not only at login (Vault). Not a guess, so the
  // limiter is left alone.
  if (!entry->AllowsSource(req.http.remote_address)) {
    spdlog::info("event=token_source_refused remote_address={}", req.http.remote_address);
    return ErrorResponse(403, "permission denied");
  }
  req.token = *entry;
  return std::nullopt;
}

std::optional<net::HttpResponse> VaultHandler::Authorize(Request& req) {
  // The check runs against the policy snapshot of this moment: no parsing, no store lock.
  auth::Acl acl = req.state->policies->AclFor(req.token->policies);
  constexpr std::string_view kUiMounts = "sys/internal/ui/mounts/";
  if (!acl.IsRoot() && req.method == "GET" && absl::StartsWith(req.path, core::ToAbsl(kUiMounts)) &&
      req.path.size() > kUiMounts.size()) {
    // As in Vault, this route is not checked against its own path: it answers for any mount
    // the token can reach some path in, and 403 for others and for paths with no mount (so
    // it cannot be used to discover mounts). It consumes no use of the token.
    std::string target = req.path.substr(kUiMounts.size());
    auto mount = req.state->mounts->Find(target);
    if (!mount || !acl.HasMountAccess(mount->entry->path)) {
      if (target.back() != '/') target.push_back('/');
      return ErrorResponse(403, absl::StrCat("preflight capability check returned 403, please "
                                             "ensure client's policies grant access to path \"",
                                             target, "\""));
    }
    return std::nullopt;
  }
  if (!acl.IsRoot()) {
    bool list = req.method == "LIST";
    std::string acl_path = req.path;
    if (list && !acl_path.empty() && acl_path.back() != '/') acl_path.push_back('/');
    bool allowed = acl.Allowed(acl_path, CapabilityFor(req), list);
    // Root-protected paths need sudo on top of the operation's capability.
    if (allowed && auth::IsRootProtected(acl_path)) {
      allowed = acl.Allowed(acl_path, auth::Capability::kSudo, list);
    }
    if (!allowed) return ErrorResponse(403, "permission denied");
  }
  // Consume a use only once the request is allowed, as Vault does.
  if (req.token->num_uses > 0) {
    auto used = req.state->tokens->Use(req.client_token);
    if (!used.ok()) {
      return used.status().code() == absl::StatusCode::kNotFound
                 ? ErrorResponse(403, "permission denied")
                 : ErrorResponse(used.status());
    }
    req.token = std::move(*used);
  }
  return std::nullopt;
}

net::HttpResponse VaultHandler::HandleHealth(Request& req) {
  if (req.method != "GET" && req.method != "HEAD") return ErrorResponse(405, "unsupported operation");
  auto status = core_.SealStatus();
  if (!status.ok()) return ErrorResponse(status.status());
  auto code_param = [&req](const std::string& name, int fallback) {
    auto v = core::ParseInt64(req.Query(name));
    // 1xx would be an interim response the client keeps waiting after: only final codes.
    return (v && *v >= 200 && *v <= 599) ? static_cast<int>(*v) : fallback;
  };
  int code;
  if (!status->initialized) {
    code = code_param("uninitcode", 501);
  } else if (status->sealed) {
    code = code_param("sealedcode", 503);
  } else {
    code = code_param("activecode", 200);
  }
  json::object body{{"initialized", status->initialized},
                    {"sealed", status->sealed},
                    {"standby", false},
                    {"performance_standby", false},
                    {"replication_performance_mode", "disabled"},
                    {"replication_dr_mode", "disabled"},
                    {"server_time_utc", absl::ToUnixSeconds(clock_.Now())},
                    {"version", options_.version},
                    {"enterprise", false},
                    {"cluster_name", options_.cluster_name},
                    {"cluster_id", options_.cluster_id}};
  net::HttpResponse r = internal::JsonResponse(code, body);
  if (req.method == "HEAD") r.body.clear();
  return r;
}

net::HttpResponse VaultHandler::HandleSealStatus() {
  auto status = core_.SealStatus();
  if (!status.ok()) return ErrorResponse(status.status());
  return internal::JsonResponse(200, SealStatusJson(*status, options_));
}

net::HttpResponse VaultHandler::HandleInit(Request& req) {
  if (req.method == "GET") {
    auto status = core_.SealStatus();
    if (!status.ok()) return ErrorResponse(status.status());
    return internal::JsonResponse(200, json::object{{"initialized", status->initialized}});
  }
  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto shares = internal::GetInt(*body, "secret_shares");
  auto threshold = internal::GetInt(*body, "secret_threshold");
  if (!shares.ok()) return ErrorResponse(shares.status());
  if (!threshold.ok()) return ErrorResponse(threshold.status());
  int n = static_cast<int>(shares->value_or(5));
  int t = static_cast<int>(threshold->value_or(3));
  auto result = core_.Initialize(n, t);
  if (!result.ok()) {
    if (result.status().code() == absl::StatusCode::kFailedPrecondition) {
      return ErrorResponse(400, "Vault is already initialized");
    }
    return ErrorResponse(result.status());
  }
  json::array keys, keys_b64;
  for (const core::SecureBytes& share : result->shares) {
    keys.emplace_back(crypto::HexEncode(share.view()));
    keys_b64.emplace_back(EncodeBase64(share));
  }
  spdlog::info("event=initialized shares={} threshold={}", n, t);
  net::HttpResponse r = internal::JsonResponse(
      200, json::object{{"keys", keys}, {"keys_base64", keys_b64}, {"root_token", result->root_token}});
  core::SecureZero(result->root_token);
  return r;
}

net::HttpResponse VaultHandler::HandleUnseal(Request& req) {
  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto reset = internal::GetBool(*body, "reset");
  auto key = internal::GetString(*body, "key");
  if (!reset.ok()) return ErrorResponse(reset.status());
  if (!key.ok()) return ErrorResponse(key.status());
  if (reset->value_or(false)) {
    core_.ResetUnsealProgress();
    return HandleSealStatus();
  }
  if (!key->has_value() || (*key)->empty()) {
    return ErrorResponse(400, "'key' must be specified in request body as JSON, or 'reset' set to true");
  }
  auto status = core_.SubmitUnsealShare(**key);
  core::SecureZero(**key);
  if (!status.ok()) return ErrorResponse(status.status());
  if (!status->sealed) spdlog::info("event=unsealed");
  return internal::JsonResponse(200, SealStatusJson(*status, options_));
}

net::HttpResponse VaultHandler::HandleSys(Request& req) {
  const std::string& p = req.path;
  // sys/seal and sys/rotate are root-protected: Authorize required sudo on them.
  if (PathIs(p, "sys/seal")) {
    if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
    core_.Seal();
    spdlog::info("event=sealed request_id={}", req.request_id());
    return internal::NoContent();
  }
  if (PathIs(p, "sys/rotate")) {
    if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
    auto status = core_.barrier().Rotate();
    if (!status.ok()) return ErrorResponse(status.status());
    spdlog::info("event=keyring_rotated term={}", status->term);
    return internal::NoContent();
  }
  if (PathIs(p, "sys/key-status")) {
    if (req.method != "GET") return ErrorResponse(405, "unsupported operation");
    auto status = core_.barrier().Status();
    if (!status.ok()) return ErrorResponse(status.status());
    json::object data{{"term", status->term},
                      {"install_time", core::FormatRfc3339Nanos(status->install_time)},
                      {"encryptions", status->encryptions}};
    return internal::Envelope(req.request_id(), data, nullptr, "system", true);
  }
  if (PathIs(p, "sys/mounts") || absl::StartsWith(p, "sys/mounts/")) return HandleMounts(req);
  if (absl::StartsWith(p, "sys/polic") || absl::StartsWith(p, "sys/capabilities")) return HandlePolicy(req);
  if (PathIs(p, "sys/audit") || absl::StartsWith(p, "sys/audit/") ||
      absl::StartsWith(p, "sys/audit-hash/")) {
    return HandleAudit(req);
  }
  if (PathIs(p, "sys/auth") || absl::StartsWith(p, "sys/auth/")) return HandleAuthMounts(req);
  if (PathIs(p, "sys/metrics")) return HandleMetrics(req);
  if (absl::StartsWith(p, "sys/quotas/")) return HandleQuotas(req);
  if (PathIs(p, "sys/internal/ui/mounts") || absl::StartsWith(p, "sys/internal/ui/mounts/")) {
    return HandleUiMounts(req);
  }
  return ErrorResponse(404, absl::StrCat("unsupported path \"", p, "\""));
}

}  // namespace ward::api
