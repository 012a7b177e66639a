// Rate-limit quotas (docs/quotas.md): enforcement in front of every request, and the
// sys/quotas/config and sys/quotas/rate-limit[/<name>] routes.

#include <cmath>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/handler.h"
#include "api/internal/http_metrics.h"
#include "api/internal/json.h"
#include "api/internal/request.h"
#include "core/secure_bytes.h"
#include "quota/rate_limiter.h"

namespace ward::api {

namespace json = boost::json;

namespace internal {

// The rate limiter of the current unsealed state, loaded on first use after each unseal
// (quotas live in the barrier, so they can only be read while unsealed). Thread-safe.
struct QuotaState {
  absl::Mutex mu;
  std::weak_ptr<const UnsealedState> for_state ABSL_GUARDED_BY(mu);
  std::shared_ptr<quota::RateLimiter> limiter ABSL_GUARDED_BY(mu);
};

std::shared_ptr<QuotaState> MakeQuotaState() { return std::make_shared<QuotaState>(); }

namespace {

// Returns the limiter for `state`, loading it from the barrier if `state` is new.
// Errors: as quota::RateLimiter::Create.
absl::StatusOr<std::shared_ptr<quota::RateLimiter>> LimiterFor(
    QuotaState& qs, const std::shared_ptr<const UnsealedState>& state, barrier::Barrier& barrier,
    core::Clock& clock) {
  {
    // Every request comes here: a shared lock, and the states compared by owner (no reference
    // count touched), are enough to find the limiter already loaded.
    absl::ReaderMutexLock lock(&qs.mu);
    if (qs.limiter != nullptr && !qs.for_state.owner_before(state) &&
        !state.owner_before(qs.for_state)) {
      return qs.limiter;
    }
  }
  // Barrier I/O outside the lock; two racing loaders read the same data, the first installs.
  auto loaded = quota::RateLimiter::Create(barrier, clock);
  if (!loaded.ok()) return loaded.status();
  absl::MutexLock lock(&qs.mu);
  if (qs.limiter != nullptr && qs.for_state.lock() == state) return qs.limiter;
  qs.limiter = std::shared_ptr<quota::RateLimiter>(*std::move(loaded));
  qs.for_state = state;
  return qs.limiter;
}

// The AppRole role an auth/<approle mount>/login request names through its role_id, or "".
std::string LoginRole(const Request& req, const UnsealedState& state) {
  constexpr std::string_view kAuth = "auth/";
  if (req.path.compare(0, kAuth.size(), kAuth) != 0) return "";
  auto mount = state.auth_mounts->FindAppRole(std::string_view(req.path).substr(kAuth.size()));
  if (!mount || mount->rest != "login") return "";
  auto body = ParseBody(req.http.body);
  if (!body.ok()) return "";
  auto role_id = GetString(*body, "role_id");
  if (!role_id.ok() || !role_id->has_value()) return "";
  return mount->store->RoleNameForRoleId(**role_id);
}

std::string WholeSeconds(absl::Duration d) {
  return std::to_string(static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(d))));
}

json::value Number(double v) {
  if (std::floor(v) == v && std::fabs(v) < 9e15) return json::value(static_cast<int64_t>(v));
  return json::value(v);
}

json::object QuotaJson(const quota::RateLimitQuota& q) {
  return json::object{{"name", q.name},
                      {"type", "rate-limit"},
                      {"path", q.path},
                      {"rate", q.rate},
                      {"interval", Number(absl::ToDoubleSeconds(q.interval))},
                      {"block_interval", Number(absl::ToDoubleSeconds(q.block_interval))},
                      {"role", q.role},
                      {"group_by", q.group_by},
                      {"inheritable", false}};
}

// `rate` may be a JSON number or a numeric string. Errors: kInvalidArgument.
absl::StatusOr<std::optional<double>> GetRate(const json::object& o) {
  auto v = o.if_contains("rate");
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (v->is_number()) return v->to_number<double>();
  if (v->is_string()) {
    std::string s(v->as_string());
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return d;
  }
  return absl::InvalidArgumentError("rate: must be a number");
}

}  // namespace
}  // namespace internal

std::optional<net::HttpResponse> VaultHandler::CheckQuota(
    internal::Request& req, std::vector<std::pair<std::string, std::string>>& headers) {
  if (quota::IsBuiltInExempt(req.path)) return std::nullopt;
  std::shared_ptr<const UnsealedState> state = core_.State();
  if (state == nullptr) return std::nullopt;  // sealed: Dispatch answers 503
  auto limiter = internal::LimiterFor(*quotas_, state, core_.barrier(), clock_);
  if (!limiter.ok()) return internal::ErrorResponse(limiter.status());
  quota::Caller caller{req.http.remote_address, req.client_token,
                       [&req, &state]() -> std::string { return internal::LoginRole(req, *state); }};
  quota::Decision d = (*limiter)->Check(req.path, caller);
  if (d.quota.empty()) return std::nullopt;
  if (d.response_headers) {
    headers.emplace_back("X-Ratelimit-Limit", metrics::FormatValue(d.limit));
    headers.emplace_back("X-Ratelimit-Remaining", std::to_string(d.remaining));
    headers.emplace_back("X-Ratelimit-Reset", internal::WholeSeconds(d.reset));
  }
  if (d.allowed) return std::nullopt;
  metrics_->quota_rejections.WithLabels({}).Inc();
  net::HttpResponse r = internal::ErrorResponse(
      429, absl::StrCat("request path \"", req.path, "\": rate limit quota exceeded"));
  std::string retry = internal::WholeSeconds(d.retry_after);
  r.headers.emplace_back("Retry-After", retry == "0" ? "1" : retry);
  return r;
}

net::HttpResponse VaultHandler::HandleQuotas(internal::Request& req) {
  using internal::ErrorResponse;
  auto limiter = internal::LimiterFor(*quotas_, req.state, core_.barrier(), clock_);
  if (!limiter.ok()) return ErrorResponse(limiter.status());
  quota::RateLimiter& rl = **limiter;
  const std::string& p = req.path;
  const std::string rid(req.request_id());

  if (p == "sys/quotas/config") {
    if (req.method == "GET") {
      quota::QuotaConfig c = rl.config();
      json::object data{
          {"enable_rate_limit_audit_logging", c.enable_rate_limit_audit_logging},
          {"enable_rate_limit_response_headers", c.enable_rate_limit_response_headers},
          {"rate_limit_exempt_paths", internal::StringsToJson(c.rate_limit_exempt_paths)}};
      return internal::Envelope(rid, data, nullptr, "system", true);
    }
    if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
    auto body = internal::ParseBody(req.http.body);
    if (!body.ok()) return ErrorResponse(body.status());
    quota::QuotaConfig c = rl.config();
    auto audit = internal::GetBool(*body, "enable_rate_limit_audit_logging");
    auto headers = internal::GetBool(*body, "enable_rate_limit_response_headers");
    auto exempt = internal::GetStringList(*body, "rate_limit_exempt_paths");
    if (!audit.ok()) return ErrorResponse(audit.status());
    if (!headers.ok()) return ErrorResponse(headers.status());
    if (!exempt.ok()) return ErrorResponse(exempt.status());
    if (audit->has_value()) c.enable_rate_limit_audit_logging = **audit;
    if (headers->has_value()) c.enable_rate_limit_response_headers = **headers;
    if (exempt->has_value()) c.rate_limit_exempt_paths = **exempt;
    auto status = rl.SetConfig(std::move(c));
    if (!status.ok()) return ErrorResponse(status);
    return internal::NoContent();
  }

  constexpr std::string_view kPrefix = "sys/quotas/rate-limit";
  if (p == kPrefix || p == std::string(kPrefix) + "/") {
    if (req.method != "LIST") return ErrorResponse(405, "unsupported operation");
    std::vector<std::string> names = rl.List();
    if (names.empty()) return ErrorResponse(404, "");
    return internal::Envelope(rid, json::object{{"keys", internal::StringsToJson(names)}}, nullptr,
                              "system", true);
  }
  if (!absl::StartsWith(p, "sys/quotas/rate-limit/")) {
    return ErrorResponse(404, absl::StrCat("unsupported path \"", p, "\""));
  }
  std::string name = p.substr(kPrefix.size() + 1);
  if (name.empty() || name.find('/') != std::string::npos) {
    return ErrorResponse(400, "invalid quota name");
  }
  if (req.method == "GET") {
    auto q = rl.Get(name);
    if (!q.ok()) return ErrorResponse(q.status());
    return internal::Envelope(rid, internal::QuotaJson(*q), nullptr, "system", true);
  }
  if (req.method == "DELETE") {
    auto status = rl.Delete(name);
    if (!status.ok()) return ErrorResponse(status);
    return internal::NoContent();
  }
  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  // An update keeps the fields it does not name, as Vault does.
  auto existing = rl.Get(name);
  quota::RateLimitQuota q = existing.ok() ? *existing : quota::RateLimitQuota{};
  q.name = name;
  auto rate = internal::GetRate(*body);
  auto path = internal::GetString(*body, "path");
  auto interval = internal::GetDuration(*body, "interval");
  auto block = internal::GetDuration(*body, "block_interval");
  auto group_by = internal::GetString(*body, "group_by");
  auto role = internal::GetString(*body, "role");
  if (!group_by.ok()) return ErrorResponse(group_by.status());
  if (!role.ok()) return ErrorResponse(role.status());
  if (group_by->has_value()) q.group_by = **group_by;
  if (role->has_value()) q.role = **role;
  if (!rate.ok()) return ErrorResponse(rate.status());
  if (!path.ok()) return ErrorResponse(path.status());
  if (!interval.ok()) return ErrorResponse(interval.status());
  if (!block.ok()) return ErrorResponse(block.status());
  if (rate->has_value()) q.rate = **rate;
  if (path->has_value()) {
    std::string_view v = **path;
    while (!v.empty() && v.front() == '/') v.remove_prefix(1);
    q.path = std::string(v);
  }
  if (interval->has_value()) q.interval = **interval;
  if (block->has_value()) q.block_interval = **block;
  if (q.rate <= 0) return ErrorResponse(400, "rate must be positive");
  auto status = rl.Set(std::move(q));
  if (!status.ok()) return ErrorResponse(status);
  return internal::NoContent();
}

}  // namespace ward::api
