#include "quota/rate_limiter.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/hmac.h"

namespace ward::quota {
namespace {

namespace json = boost::json;

constexpr std::string_view kRateLimitPrefix = "core/quotas/rate-limit/";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

double Capacity(const RateLimitQuota& q) { return std::max(1.0, q.rate); }
// Requests added to a bucket per second.
double RefillPerSecond(const RateLimitQuota& q) {
  return q.rate / absl::ToDoubleSeconds(q.interval);
}

absl::Status Malformed(std::string_view what) {
  return absl::DataLossError(absl::StrCat("malformed stored quota: ", std::string(what)));
}

absl::StatusOr<double> Number(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_number()) return Malformed(key);
  return it->value().to_number<double>();
}

absl::Status Validate(const RateLimitQuota& q) {
  if (q.name.empty() || q.name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError("quota name must be non-empty and contain no '/'");
  }
  if (!std::isfinite(q.rate) || q.rate <= 0) {
    return absl::InvalidArgumentError("rate must be positive");
  }
  if (q.interval <= absl::ZeroDuration() || q.interval == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("interval must be positive");
  }
  if (q.block_interval < absl::ZeroDuration() || q.block_interval == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("block_interval must not be negative");
  }
  if (std::find(std::begin(kGroupByValues), std::end(kGroupByValues), q.group_by) ==
      std::end(kGroupByValues)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid group_by \"", q.group_by, "\": must be ip, none, entity_then_ip or entity_then_none"));
  }
  if (!q.role.empty() && !StartsWith(q.path, "auth/")) {
    return absl::InvalidArgumentError("role can only be set on a quota whose path is an auth mount");
  }
  return absl::OkStatus();
}

// The bucket a caller draws from under quota `q`.
std::string BucketKey(const RateLimitQuota& q, const Caller& caller) {
  bool by_entity = q.group_by == "entity_then_ip" || q.group_by == "entity_then_none";
  if (by_entity && !caller.token.empty()) {
    // Keyed by a digest, so no token is held in memory for longer than its request.
    return "entity:" + crypto::HexEncode(crypto::Sha256(caller.token)).substr(0, 32);
  }
  if (q.group_by == "none" || q.group_by == "entity_then_none") return "all";
  return absl::StrCat("ip:", core::ToAbsl(caller.address));
}

}  // namespace

bool IsBuiltInExempt(std::string_view path) {
  for (std::string_view p :
       {"sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/metrics", "sys/quotas/"}) {
    if (path == p || (StartsWith(path, p) && (p.back() == '/' || path[p.size()] == '/'))) {
      return true;
    }
  }
  return false;
}

std::string EncodeQuota(const RateLimitQuota& q) {
  return json::serialize(json::object{{"name", q.name},
                                      {"path", q.path},
                                      {"rate", q.rate},
                                      {"interval", absl::ToDoubleSeconds(q.interval)},
                                      {"block_interval", absl::ToDoubleSeconds(q.block_interval)},
                                      {"group_by", q.group_by},
                                      {"role", q.role}});
}

absl::StatusOr<RateLimitQuota> DecodeQuota(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return Malformed("not a JSON object");
  const json::object& o = v.as_object();
  RateLimitQuota q;
  auto name = o.if_contains("name");
  auto path = o.if_contains("path");
  if (name == nullptr || !name->is_string() || path == nullptr || !path->is_string()) {
    return Malformed("name/path");
  }
  q.name = std::string(name->as_string());
  q.path = std::string(path->as_string());
  WARD_ASSIGN_OR_RETURN(q.rate, Number(o, "rate"));
  WARD_ASSIGN_OR_RETURN(double interval, Number(o, "interval"));
  WARD_ASSIGN_OR_RETURN(double block, Number(o, "block_interval"));
  q.interval = absl::Seconds(interval);
  q.block_interval = absl::Seconds(block);
  // Quotas stored before group_by and role existed have neither: per address, any request.
  for (auto [key, out] : {std::pair<std::string_view, std::string*>{"group_by", &q.group_by},
                          {"role", &q.role}}) {
    auto field = o.if_contains(key);
    if (field == nullptr) continue;
    if (!field->is_string()) return Malformed(key);
    *out = std::string(field->as_string());
  }
  if (!Validate(q).ok()) return Malformed(q.name);
  return q;
}

std::string EncodeConfig(const QuotaConfig& c) {
  json::array exempt;
  for (const auto& p : c.rate_limit_exempt_paths) exempt.emplace_back(p);
  return json::serialize(
      json::object{{"enable_rate_limit_audit_logging", c.enable_rate_limit_audit_logging},
                   {"enable_rate_limit_response_headers", c.enable_rate_limit_response_headers},
                   {"rate_limit_exempt_paths", std::move(exempt)}});
}

absl::StatusOr<QuotaConfig> DecodeConfig(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return Malformed("config");
  const json::object& o = v.as_object();
  QuotaConfig c;
  auto flag = [&o](std::string_view key, bool& out) {
    auto it = o.if_contains(key);
    if (it == nullptr || !it->is_bool()) return false;
    out = it->as_bool();
    return true;
  };
  if (!flag("enable_rate_limit_audit_logging", c.enable_rate_limit_audit_logging) ||
      !flag("enable_rate_limit_response_headers", c.enable_rate_limit_response_headers)) {
    return Malformed("config flags");
  }
  auto exempt = o.if_contains("rate_limit_exempt_paths");
  if (exempt == nullptr || !exempt->is_array()) return Malformed("config exempt paths");
  for (const auto& p : exempt->as_array()) {
    if (!p.is_string()) return Malformed("config exempt paths");
    c.rate_limit_exempt_paths.emplace_back(p.as_string());
  }
  return c;
}

absl::StatusOr<std::unique_ptr<RateLimiter>> RateLimiter::Create(barrier::Barrier& barrier,
                                                                 core::Clock& clock) {
  std::unique_ptr<RateLimiter> r(new RateLimiter(barrier, clock));
  std::map<std::string, Entry, std::less<>> quotas;
  std::string after;
  while (true) {
    WARD_ASSIGN_OR_RETURN(storage::ListPage page, barrier.List(kRateLimitPrefix, after, 256));
    for (const std::string& key : page.keys) {
      WARD_ASSIGN_OR_RETURN(std::string text, barrier.Get(key));
      WARD_ASSIGN_OR_RETURN(RateLimitQuota q, DecodeQuota(text));
      std::string name = q.name;
      quotas[name].quota = std::move(q);
    }
    if (!page.more || page.keys.empty()) break;
    after = page.keys.back();
  }
  QuotaConfig config;
  auto stored = barrier.Get(kQuotaConfigKey);
  if (stored.ok()) {
    WARD_ASSIGN_OR_RETURN(config, DecodeConfig(*stored));
  } else if (stored.status().code() != absl::StatusCode::kNotFound) {
    return stored.status();
  }
  absl::MutexLock lock(&r->mu_);
  r->quotas_ = std::move(quotas);
  r->quota_count_.store(r->quotas_.size(), std::memory_order_release);
  r->config_ = std::move(config);
  return r;
}

absl::Status RateLimiter::Set(RateLimitQuota q) {
  WARD_RETURN_IF_ERROR(Validate(q));
  absl::MutexLock write(&write_mu_);
  WARD_RETURN_IF_ERROR(
      barrier_.Put(std::string(kRateLimitPrefix) + q.name, EncodeQuota(q)).status());
  absl::MutexLock lock(&mu_);
  Entry& e = quotas_[q.name];
  e.quota = std::move(q);
  e.buckets.clear();
  quota_count_.store(quotas_.size(), std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<RateLimitQuota> RateLimiter::Get(std::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = quotas_.find(name);
  if (it == quotas_.end()) return absl::NotFoundError("no such quota");
  return it->second.quota;
}

absl::Status RateLimiter::Delete(std::string_view name) {
  absl::MutexLock write(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (quotas_.find(name) == quotas_.end()) return absl::OkStatus();
  }
  WARD_RETURN_IF_ERROR(barrier_.Delete(std::string(kRateLimitPrefix) + std::string(name)).status());
  absl::MutexLock lock(&mu_);
  auto it = quotas_.find(name);
  if (it != quotas_.end()) quotas_.erase(it);
  quota_count_.store(quotas_.size(), std::memory_order_release);
  return absl::OkStatus();
}

std::vector<std::string> RateLimiter::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, e] : quotas_) out.push_back(name);
  return out;
}

QuotaConfig RateLimiter::config() const {
  absl::MutexLock lock(&mu_);
  return config_;
}

absl::Status RateLimiter::SetConfig(QuotaConfig config) {
  absl::MutexLock write(&write_mu_);
  WARD_RETURN_IF_ERROR(barrier_.Put(std::string(kQuotaConfigKey), EncodeConfig(config)).status());
  absl::MutexLock lock(&mu_);
  config_ = std::move(config);
  return absl::OkStatus();
}

void RateLimiter::Prune(Entry& e, absl::Time now) {
  const double cap = Capacity(e.quota);
  const double refill = RefillPerSecond(e.quota);
  for (auto it = e.buckets.begin(); it != e.buckets.end();) {
    const Bucket& b = it->second;
    bool full = b.tokens + absl::ToDoubleSeconds(now - b.updated) * refill >= cap;
    if (full && now >= b.blocked_until) {
      it = e.buckets.erase(it);
    } else {
      ++it;
    }
  }
  if (e.buckets.size() <= kMaxBucketsPerQuota / 2) return;
  // Still too many clients mid-burst: forget the least recently seen (they start over full,
  // which errs towards allowing, never towards refusing a client wrongly).
  std::vector<std::pair<absl::Time, std::string>> by_age;
  by_age.reserve(e.buckets.size());
  for (const auto& [client, b] : e.buckets) by_age.emplace_back(b.updated, client);
  std::sort(by_age.begin(), by_age.end());
  size_t drop = e.buckets.size() - kMaxBucketsPerQuota / 2;
  for (size_t i = 0; i < drop; ++i) e.buckets.erase(by_age[i].second);
}

Decision RateLimiter::Check(std::string_view path, const Caller& caller) {
  Decision d;
  if (IsBuiltInExempt(path)) return d;
  // No quota, none applies (a quota set concurrently applies from the next request).
  if (quota_count_.load(std::memory_order_acquire) == 0) return d;
  // The login role is resolved outside the lock, and only if a role quota covers the path.
  bool role_quota = false;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, e] : quotas_) {
      role_quota = role_quota || (!e.quota.role.empty() && StartsWith(path, e.quota.path));
    }
  }
  const std::string role = role_quota && caller.login_role ? caller.login_role() : "";
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  for (const std::string& p : config_.rate_limit_exempt_paths) {
    if (StartsWith(path, p)) return d;
  }
  Entry* best = nullptr;
  for (auto& [name, e] : quotas_) {
    if (!StartsWith(path, e.quota.path)) continue;
    if (!e.quota.role.empty() && e.quota.role != role) continue;
    auto rank = [](const RateLimitQuota& q) { return std::make_pair(!q.role.empty(), q.path.size()); };
    if (best == nullptr || rank(e.quota) > rank(best->quota)) best = &e;
  }
  if (best == nullptr) return d;
  const RateLimitQuota& q = best->quota;
  const double cap = Capacity(q);
  const double refill = RefillPerSecond(q);
  const std::string key = BucketKey(q, caller);
  auto it = best->buckets.find(key);
  if (it == best->buckets.end()) {
    if (best->buckets.size() >= kMaxBucketsPerQuota) Prune(*best, now);
    it = best->buckets.emplace(key, Bucket{cap, now, absl::InfinitePast()}).first;
  }
  Bucket& b = it->second;
  if (now > b.updated) {
    b.tokens = std::min(cap, b.tokens + absl::ToDoubleSeconds(now - b.updated) * refill);
    b.updated = now;
  }
  d.quota = q.name;
  d.limit = q.rate;
  d.response_headers = config_.enable_rate_limit_response_headers;
  auto seconds = [](double s) { return absl::Seconds(std::max(0.0, s)); };
  if (now < b.blocked_until) {
    d.allowed = false;
    d.retry_after = b.blocked_until - now;
    d.reset = d.retry_after;
    return d;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    d.allowed = true;
    d.remaining = static_cast<uint64_t>(std::floor(b.tokens));
    d.reset = seconds((cap - b.tokens) / refill);
    return d;
  }
  d.allowed = false;
  if (q.block_interval > absl::ZeroDuration()) {
    b.blocked_until = now + q.block_interval;
    d.retry_after = q.block_interval;
  } else {
    d.retry_after = seconds((1 - b.tokens) / refill);
  }
  d.reset = std::max(d.retry_after, seconds((cap - b.tokens) / refill));
  return d;
}

}  // namespace ward::quota
