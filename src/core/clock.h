#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ward::core {

// The source of all time in Ward. Production code takes a `Clock&` so tests can inject a
// FakeClock (core/testing/fake_clock.h). Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// Wall-clock time from the operating system.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }

  // A process-wide instance, for wiring code that has nothing better to pass.
  static RealClock& Get();
};

}  // namespace ward::core
