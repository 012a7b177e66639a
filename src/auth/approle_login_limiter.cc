#include "auth/approle_login_limiter.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/strings.h"

namespace ward::auth {

FailedLoginLimiter::FailedLoginLimiter(core::Clock& clock, Options options)
    : clock_(clock), options_(options) {}

double FailedLoginLimiter::LevelAt(const Bucket& b, absl::Time now) const {
  double minutes = absl::ToDoubleMinutes(std::max(now - b.updated, absl::ZeroDuration()));
  return std::min(options_.burst, b.level + minutes * options_.failures_per_minute);
}

std::optional<absl::Duration> FailedLoginLimiter::RetryAfter(std::string_view client) const {
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(core::ToAbsl(client));
  if (it == buckets_.end()) return std::nullopt;
  double level = LevelAt(it->second, now);
  if (level >= 1.0) return std::nullopt;
  return absl::Minutes((1.0 - level) / options_.failures_per_minute);
}

void FailedLoginLimiter::RecordFailure(std::string_view client) {
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(core::ToAbsl(client));
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_clients) MakeRoomLocked(now);
    it = buckets_.emplace(std::string(client), Bucket{options_.burst, now}).first;
  }
  Bucket& b = it->second;
  b.level = std::max(0.0, LevelAt(b, now) - 1.0);
  b.updated = now;
}

void FailedLoginLimiter::MakeRoomLocked(absl::Time now) {
  std::vector<std::string> full;
  for (const auto& [client, bucket] : buckets_) {
    if (LevelAt(bucket, now) >= options_.burst) full.push_back(client);
  }
  for (const std::string& client : full) buckets_.erase(client);
  if (buckets_.size() >= options_.max_clients && !buckets_.empty()) {
    buckets_.erase(buckets_.begin());
    ++evictions_;
  }
}

uint64_t FailedLoginLimiter::evictions() const {
  absl::MutexLock lock(&mu_);
  return evictions_;
}

size_t FailedLoginLimiter::tracked() const {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

}  // namespace ward::auth
