#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "storage/backend.h"

namespace ward::barrier::testing {

// A storage::Backend that forwards to another one and can run a hook just before commits, to
// stage races deterministically (e.g. another node rotating the keyring between a read and the
// conditional write that follows it), or make commits fail. Thread-safe; hooks run without any lock held.
class HookedBackend final : public storage::Backend {
 public:
  explicit HookedBackend(storage::Backend& inner) : inner_(inner) {}

  // Runs `hook` once, before the next Commit is forwarded.
  void BeforeNextCommit(std::function<void()> hook) {
    auto fired = std::make_shared<std::atomic<bool>>(false);
    BeforeEachCommit([hook = std::move(hook), fired](int) {
      if (!fired->exchange(true)) hook();
    });
  }

  // Runs `hook(n)` before every Commit from now on, n = 1, 2, ... counting from this call.
  void BeforeEachCommit(std::function<void(int)> hook) {
    absl::MutexLock lock(&mu_);
    hook_ = std::move(hook);
    commits_ = 0;
  }

  // From now on every Commit fails with `status` (after running the hook) without reaching the
  // inner backend, until called again with OkStatus.
  void FailCommitsWith(absl::Status status) {
    absl::MutexLock lock(&mu_);
    commit_failure_ = std::move(status);
  }

  absl::StatusOr<storage::Record> Get(std::string_view key) override { return inner_.Get(key); }
  absl::StatusOr<uint64_t> Commit(std::vector<storage::Op> ops) override {
    std::function<void(int)> hook;
    absl::Status failure;
    int n = 0;
    {
      absl::MutexLock lock(&mu_);
      hook = hook_;
      failure = commit_failure_;
      n = ++commits_;
    }
    if (hook) hook(n);
    if (!failure.ok()) return failure;
    return inner_.Commit(std::move(ops));
  }
  absl::StatusOr<storage::ListPage> List(std::string_view prefix, std::string_view after,
                                         size_t limit) override {
    return inner_.List(prefix, after, limit);
  }
  uint64_t AddListener(std::function<void(const storage::Change&)> listener) override {
    return inner_.AddListener(std::move(listener));
  }
  void RemoveListener(uint64_t id) override { inner_.RemoveListener(id); }

 private:
  storage::Backend& inner_;
  absl::Mutex mu_;
  std::function<void(int)> hook_ ABSL_GUARDED_BY(mu_);
  int commits_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status commit_failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ward::barrier::testing
