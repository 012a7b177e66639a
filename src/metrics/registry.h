#pragma once

// A small metrics registry: counters, gauges and fixed-bucket histograms, with bounded label
// sets, rendered in the Prometheus text exposition format 0.0.4 (docs/metrics.md).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ward::metrics {

enum class Type { kCounter, kGauge, kHistogram };

// A monotonically increasing count. Thread-safe and lock-free.
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  // Mirrors a monotonic count kept elsewhere (e.g. an audit device's record count). Use either
  // Inc or Set on one series, never both.
  void Set(uint64_t v) { value_.store(v, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down. Thread-safe and lock-free.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (upper bounds, ascending; +Inf is implicit).
// Thread-safe and lock-free; a concurrent snapshot may see a count one observation ahead of
// the sum, as Prometheus client libraries also allow.
class Histogram {
 public:
  // REQUIRES: `bounds` strictly ascending and finite (checked by the registry).
  explicit Histogram(const std::vector<double>& bounds);

  void Observe(double v);

  // Cumulative counts per bound, then the +Inf bucket (== count).
  std::vector<uint64_t> CumulativeCounts() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1 (the last is +Inf)
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// The value of one series at snapshot time.
struct SeriesSnapshot {
  std::vector<std::string> label_values;  // in the family's label_names order
  double value = 0;                       // counter and gauge
  std::vector<uint64_t> cumulative;       // histogram: per bound, then +Inf
  double sum = 0;                         // histogram
  uint64_t count = 0;                     // histogram
};

struct FamilySnapshot {
  std::string name;
  std::string help;
  Type type = Type::kCounter;
  std::vector<std::string> label_names;
  std::vector<double> bounds;          // histogram only
  std::vector<SeriesSnapshot> series;  // ordered by label values
};

// The label value every series beyond a family's max_series is folded into, so a family never
// holds more than max_series + 1 series whatever the traffic.
inline constexpr std::string_view kOverflowLabel = "__overflow__";

// A named metric with fixed label names; one series per distinct label-value tuple.
// Thread-safe. Series are created on first use and never removed (except by Reset); the
// returned references stay valid for the life of the family.
template <typename T>
class Family {
 public:
  // Returns the series for `label_values` (one per label name; missing ones count as "").
  // Once max_series series exist, new tuples all map to one series whose labels are all
  // kOverflowLabel. The common case (series exists) takes a shared lock only.
  T& WithLabels(const std::vector<std::string>& label_values);

  // Drops every series. For families mirrored from an external source at scrape time;
  // REQUIRES: no caller holds a reference from WithLabels.
  void Reset();

  const std::string& name() const { return name_; }

 private:
  friend class Registry;
  Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
         std::vector<double> bounds, size_t max_series);
  std::unique_ptr<T> MakeSeries() const;
  FamilySnapshot Snapshot() const;

  const std::string name_;
  const std::string help_;
  const Type type_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;
  const size_t max_series_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_ ABSL_GUARDED_BY(mu_);
};

// Default latency buckets, in seconds: 0.5 ms to 10 s.
std::vector<double> DefaultLatencyBuckets();

// Owns metric families and renders them. Thread-safe: registration and rendering may run
// concurrently with updates. Registration is wiring code, not traffic: an invalid name
// (not ^[a-zA-Z_:][a-zA-Z0-9_:]*$), an invalid label name, a duplicate name, or histogram
// bounds that are not strictly ascending and finite are programming errors and abort.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each returns a family owned by the registry, valid for its lifetime. `help` is required
  // (every metric has a description). max_series bounds the label tuples (see Family).
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names = {}, size_t max_series = 256);
  Family<Gauge>& AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {}, size_t max_series = 256);
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names, std::vector<double> bounds,
                                  size_t max_series = 64);

  // Every family in registration order, with its series.
  std::vector<FamilySnapshot> Snapshot() const;

  // The Prometheus text format 0.0.4: for each family "# HELP", "# TYPE" and its samples.
  // A family with no series yet gets HELP and TYPE lines only.
  std::string RenderPrometheus() const;

 private:
  void CheckNewName(const std::string& name, const std::string& help,
                    const std::vector<std::string>& label_names) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  // Registration order; each points into one of the owning vectors below.
  std::vector<std::unique_ptr<Family<Counter>>> counters_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<Type, size_t>> order_ ABSL_GUARDED_BY(mu_);  // (type, index)
};

// Formats a sample value as Prometheus does: shortest round-trip form, "+Inf", "-Inf", "NaN".
std::string FormatValue(double v);

}  // namespace ward::metrics
