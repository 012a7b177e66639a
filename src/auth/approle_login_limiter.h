#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace ward::auth {

// Slows down credential guessing against login routes: a token bucket per client IP address that
// only failed logins drain. A client may fail `burst` times in a row; after that each further
// attempt is refused (the caller answers 429) until the bucket has refilled at
// `failures_per_minute`. Successful logins cost nothing.
//
// The table of clients is bounded by `max_clients`. When it is full, buckets that have refilled
// completely are dropped first; if none has, an arbitrary client is evicted (a degraded mode: that
// client's failures are forgotten), counted by evictions().
//
// Memory only: a restart forgets every bucket. Thread-safe. `clock` is borrowed.
class FailedLoginLimiter {
 public:
  struct Options {
    double burst = 10;                // failures allowed back to back
    double failures_per_minute = 10;  // refill rate; must be positive
    size_t max_clients = 100000;      // tracked client addresses
  };

  FailedLoginLimiter(core::Clock& clock, Options options);

  // Returns how long `client` must wait before its next login attempt is accepted, or nullopt if it
  // may try now. Does not consume anything.
  std::optional<absl::Duration> RetryAfter(std::string_view client) const;

  // Records one failed login by `client`, draining one unit of its bucket.
  void RecordFailure(std::string_view client);

  // Clients evicted while the table was full of draining buckets, since construction.
  uint64_t evictions() const;
  // Clients currently tracked.
  size_t tracked() const;

 private:
  struct Bucket {
    double level = 0;  // failures still allowed
    absl::Time updated;
  };
  // The bucket's level refilled up to `now`.
  double LevelAt(const Bucket& b, absl::Time now) const;
  void MakeRoomLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  core::Clock& clock_;
  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ward::auth
