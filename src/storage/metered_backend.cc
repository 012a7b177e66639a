#include "storage/metered_backend.h"

#include <utility>

namespace ward::storage {

std::vector<double> MeteredBackend::Buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   10};
}

MeteredBackend::MeteredBackend(Backend& inner, metrics::Registry& registry, core::Clock& clock)
    : inner_(inner),
      clock_(clock),
      durations_(registry.AddHistogram("ward_storage_operation_duration_seconds",
                                       "Time taken by storage backend operations, by operation "
                                       "(get, commit, list, scan).",
                                       {"op"}, Buckets(), 4)),
      errors_(registry.AddCounter("ward_storage_operation_errors_total",
                                  "Storage backend operations that failed, by operation (a get "
                                  "of an absent key and a commit whose check did not match are "
                                  "not failures).",
                                  {"op"}, 4)),
      // Created now so that every op is exported (as zero) from the start.
      get_{durations_.WithLabels({"get"}), errors_.WithLabels({"get"})},
      commit_{durations_.WithLabels({"commit"}), errors_.WithLabels({"commit"})},
      list_{durations_.WithLabels({"list"}), errors_.WithLabels({"list"})},
      scan_{durations_.WithLabels({"scan"}), errors_.WithLabels({"scan"})} {}

void MeteredBackend::Observe(const OpMetrics& op, absl::Time start, bool error) const {
  op.duration.Observe(absl::ToDoubleSeconds(clock_.Now() - start));
  if (error) op.errors.Inc();
}

absl::StatusOr<storage::Record> MeteredBackend::Get(std::string_view key) {
  const absl::Time start = clock_.Now();
  absl::StatusOr<storage::Record> r = inner_.Get(key);
  Observe(get_, start, !r.ok() && !absl::IsNotFound(r.status()));
  return r;
}

absl::StatusOr<uint64_t> MeteredBackend::Commit(std::vector<Op> ops) {
  const absl::Time start = clock_.Now();
  absl::StatusOr<uint64_t> r = inner_.Commit(std::move(ops));
  Observe(commit_, start, !r.ok() && !absl::IsAborted(r.status()));
  return r;
}

absl::StatusOr<ListPage> MeteredBackend::List(std::string_view prefix, std::string_view after,
                                              size_t limit) {
  const absl::Time start = clock_.Now();
  absl::StatusOr<ListPage> r = inner_.List(prefix, after, limit);
  Observe(list_, start, !r.ok());
  return r;
}

absl::StatusOr<ScanPage> MeteredBackend::Scan(std::string_view prefix, std::string_view after,
                                              size_t limit) {
  const absl::Time start = clock_.Now();
  absl::StatusOr<ScanPage> r = inner_.Scan(prefix, after, limit);
  Observe(scan_, start, !r.ok());
  return r;
}

uint64_t MeteredBackend::AddListener(std::function<void(const Change&)> listener) {
  return inner_.AddListener(std::move(listener));
}

void MeteredBackend::RemoveListener(uint64_t id) { inner_.RemoveListener(id); }

}  // namespace ward::storage
