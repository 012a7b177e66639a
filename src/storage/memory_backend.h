#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "storage/backend.h"
#include "storage/internal/listener_set.h"

namespace ward::storage {

// A Backend that keeps everything in process memory: nothing survives the object. For tests
// and for `ward server --dev` without a data directory. Same semantics as SqliteBackend
// (revisions, checks, ordering, listeners), minus durability.
//
// Thread-safe: one mutex serialises commits and reads. Listeners are called on the committing
// thread after the commit is applied, with no lock held; listeners of concurrent commits may
// run concurrently and out of revision order.
class MemoryBackend final : public Backend {
 public:
  MemoryBackend() = default;
  MemoryBackend(const MemoryBackend&) = delete;
  MemoryBackend& operator=(const MemoryBackend&) = delete;

  // Errors: kNotFound if `key` is absent. Never fails otherwise.
  absl::StatusOr<Record> Get(std::string_view key) override;

  // Returns the new revision (1 for the first commit). A commit with no ops, or only checks,
  // also gets a revision. Ops apply in order (a later op on the same key wins); checks see the
  // state before the commit.
  // Errors: kInvalidArgument for an empty key; kAborted if a check fails. Nothing is applied
  //         on error.
  absl::StatusOr<uint64_t> Commit(std::vector<Op> ops) override;

  // Never fails.
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                size_t limit) override;

  // Under one lock: the page is a consistent snapshot. Never fails.
  absl::StatusOr<ScanPage> Scan(std::string_view prefix, std::string_view after,
                                size_t limit) override;

  // See internal::ListenerSet for the removal guarantee.
  uint64_t AddListener(std::function<void(const Change&)> listener) override;
  void RemoveListener(uint64_t id) override;

  // The revision of the latest successful commit (0 before any).
  uint64_t revision() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Record, std::less<>> data_ ABSL_GUARDED_BY(mu_);
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  internal::ListenerSet listeners_;
};

}  // namespace ward::storage
