#pragma once

// Vault-style rate-limit quotas (docs/quotas.md): named quotas on a path prefix, enforced per
// client IP address, per token, per login role or collectively with token buckets, persisted
// through the barrier.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "barrier/barrier.h"
#include "core/clock.h"

namespace ward::quota {

// Where quotas live in the barrier: kQuotaPrefix + "rate-limit/<name>" and kQuotaConfigKey.
inline constexpr std::string_view kQuotaPrefix = "core/quotas/";
inline constexpr std::string_view kQuotaConfigKey = "core/quotas/config";

// How a quota splits its allowance between callers (Vault's `group_by`):
//   "ip"               one bucket per client address (the default);
//   "none"             one bucket shared by every caller (a collective limit);
//   "entity_then_ip"   one bucket per token presented, per address for requests without one;
//   "entity_then_none" one bucket per token presented, one shared bucket for the rest.
// (Ward has no identity entities: the token a request carries is its entity.)
inline constexpr std::string_view kGroupByValues[] = {"ip", "none", "entity_then_ip",
                                                      "entity_then_none"};

// One rate-limit quota: `rate` requests per `interval` for each group of callers (`group_by`),
// on requests whose path starts with `path` ("" = every request). With `role` set the quota
// covers only logins to the auth mount at `path` made with that role. Once a group exceeds it,
// and block_interval is non-zero, the group is refused for block_interval.
struct RateLimitQuota {
  std::string name;
  std::string path;
  double rate = 0;                                       // > 0
  absl::Duration interval = absl::Seconds(1);            // > 0
  absl::Duration block_interval = absl::ZeroDuration();  // >= 0
  std::string group_by = "ip";                           // one of kGroupByValues
  std::string role;  // "" = any request; else REQUIRES path to start with "auth/"
};

// Who sent a request, as far as quotas care.
struct Caller {
  std::string_view address;  // the client's IP address
  std::string_view token;    // the raw token the request carries, "" if none (hashed, not kept)
  // The role a login request names (e.g. the AppRole role its role_id belongs to), or "".
  // Called only when a quota with a role covers the request path, so it may be costly.
  std::function<std::string()> login_role;
};

// sys/quotas/config.
struct QuotaConfig {
  bool enable_rate_limit_audit_logging = false;
  bool enable_rate_limit_response_headers = false;
  std::vector<std::string> rate_limit_exempt_paths;  // path prefixes, added to the built-in ones
};

// The outcome of Check for one request.
struct Decision {
  bool allowed = true;
  std::string quota;           // the quota that applied; "" if none did (then nothing else is set)
  double limit = 0;            // the quota's rate (requests per interval)
  uint64_t remaining = 0;      // whole requests left in the client's bucket after this one
  absl::Duration reset;        // until the bucket is full again (or the block ends)
  absl::Duration retry_after;  // refused only: until a request can succeed
  bool response_headers = false;  // config enable_rate_limit_response_headers, when quota != ""
};

// Paths that no quota ever applies to (Vault exempts these so health checks and unsealing
// keep working under load).
bool IsBuiltInExempt(std::string_view path);

// Holds the quotas and the per-client token buckets of an unsealed node.
//
// Thread-safe. Check is the hot path: one mutex, no I/O. Set/Delete/SetConfig write through
// the barrier (serialised; never while holding the bucket lock). Buckets live in memory only
// and are bounded: at most kMaxBucketsPerQuota per quota, least-recently-used full buckets
// are dropped first (a dropped bucket was full, so forgetting it changes nothing). `barrier`
// and `clock` are borrowed and must outlive the limiter.
class RateLimiter {
 public:
  static constexpr size_t kMaxBucketsPerQuota = 65536;

  // Loads every stored quota and the config. REQUIRES: the barrier is unsealed.
  // Errors: barrier errors; kDataLoss if a stored entry is malformed.
  static absl::StatusOr<std::unique_ptr<RateLimiter>> Create(barrier::Barrier& barrier,
                                                             core::Clock& clock);

  // Creates or replaces quota `q.name`, resetting its buckets.
  // Errors: kInvalidArgument for an empty or '/'-containing name, rate <= 0 (or not finite),
  //         interval <= 0, block_interval < 0; barrier errors (nothing changes).
  absl::Status Set(RateLimitQuota q);

  // Errors: kNotFound if there is no quota `name`.
  absl::StatusOr<RateLimitQuota> Get(std::string_view name) const;

  // Deletes quota `name`; OK if absent. Errors: barrier errors.
  absl::Status Delete(std::string_view name);

  // Quota names, ascending.
  std::vector<std::string> List() const;

  QuotaConfig config() const;
  // Errors: barrier errors (nothing changes).
  absl::Status SetConfig(QuotaConfig config);

  // Decides whether a request for `path` (after "/v1/") from `caller` may proceed, and if so
  // consumes one request from the caller's bucket (see group_by) of the most specific quota
  // covering it: a quota with a matching role before one without; then the longest `path`
  // prefix; between equals, the first name. Exempt paths and paths no quota covers are always
  // allowed with quota "". A refused request consumes nothing; with block_interval set it
  // starts (not extends) the block.
  Decision Check(std::string_view path, const Caller& caller);

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
    absl::Time blocked_until = absl::InfinitePast();
  };
  struct Entry {
    RateLimitQuota quota;
    std::map<std::string, Bucket, std::less<>> buckets;
  };
  RateLimiter(barrier::Barrier& barrier, core::Clock& clock) : barrier_(barrier), clock_(clock) {}
  static void Prune(Entry& e, absl::Time now);

  barrier::Barrier& barrier_;
  core::Clock& clock_;
  absl::Mutex write_mu_;  // serialises Set/Delete/SetConfig (barrier I/O)
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  std::map<std::string, Entry, std::less<>> quotas_ ABSL_GUARDED_BY(mu_);
  // quotas_.size(), stored under mu_ whenever it changes: Check answers "no quota" without
  // the lock when there is none (the common case, and every request asks).
  std::atomic<size_t> quota_count_{0};
  QuotaConfig config_ ABSL_GUARDED_BY(mu_);
};

// JSON encodings, as stored and as the API returns them (durations as seconds).
std::string EncodeQuota(const RateLimitQuota& q);
absl::StatusOr<RateLimitQuota> DecodeQuota(std::string_view json);
std::string EncodeConfig(const QuotaConfig& c);
absl::StatusOr<QuotaConfig> DecodeConfig(std::string_view json);

}  // namespace ward::quota
