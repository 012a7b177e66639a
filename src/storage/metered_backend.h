#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/clock.h"
#include "metrics/registry.h"
#include "storage/backend.h"

namespace ward::storage {

// A Backend that forwards every call to another one and measures it (docs/metrics.md):
//   ward_storage_operation_duration_seconds{op="get|commit|list|scan"}  histogram
//   ward_storage_operation_errors_total{op="get|commit|list|scan"}      counter
// An operation counts as an error when it fails for a reason other than its normal negative
// answers: a Get of an absent key (kNotFound) and a Commit whose check did not match
// (kAborted) are outcomes, not errors. Listener registration is forwarded unmeasured.
//
// Thread-safe (recording is lock-free). `inner`, `registry` and `clock` are borrowed and must
// outlive the object. The constructor registers both families in `registry`, so one registry
// holds at most one MeteredBackend (a second one would register duplicate names, which the
// registry treats as a programming error and aborts).
class MeteredBackend final : public Backend {
 public:
  MeteredBackend(Backend& inner, metrics::Registry& registry, core::Clock& clock);
  MeteredBackend(const MeteredBackend&) = delete;
  MeteredBackend& operator=(const MeteredBackend&) = delete;

  // As Backend; errors are exactly the inner backend's.
  absl::StatusOr<Record> Get(std::string_view key) override;
  absl::StatusOr<uint64_t> Commit(std::vector<Op> ops) override;
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                size_t limit) override;
  absl::StatusOr<ScanPage> Scan(std::string_view prefix, std::string_view after,
                                size_t limit) override;
  uint64_t AddListener(std::function<void(const Change&)> listener) override;
  void RemoveListener(uint64_t id) override;

  // Histogram bounds of the duration family, in seconds: 50 us to 10 s (storage reads are
  // far faster than a request; commits wait for fsync).
  static std::vector<double> Buckets();

 private:
  // One operation's series.
  struct OpMetrics {
    metrics::Histogram& duration;
    metrics::Counter& errors;
  };
  // Records one finished operation that started at `start`.
  void Observe(const OpMetrics& op, absl::Time start, bool error) const;

  Backend& inner_;
  core::Clock& clock_;
  metrics::Family<metrics::Histogram>& durations_;
  metrics::Family<metrics::Counter>& errors_;
  const OpMetrics get_;
  const OpMetrics commit_;
  const OpMetrics list_;
  const OpMetrics scan_;
};

}  // namespace ward::storage
