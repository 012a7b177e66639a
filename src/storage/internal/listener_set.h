#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/backend.h"

namespace ward::storage::internal {

// The change listeners of one backend. Private to the storage module.
//
// Thread-safe. Notify() calls listeners on the calling thread with no lock held, so a listener
// may call back into the backend (Get, List, Commit, AddListener, RemoveListener). Listeners of
// concurrent commits may run concurrently and not in revision order; use Change::revision.
class ListenerSet {
 public:
  ListenerSet() = default;
  ListenerSet(const ListenerSet&) = delete;
  ListenerSet& operator=(const ListenerSet&) = delete;

  // Registers `listener`; returns its id (never 0).
  uint64_t Add(std::function<void(const Change&)> listener);

  // Unregisters listener `id` (no-op if unknown). When called from outside any listener, it
  // returns only after every running call of that listener has finished, so the caller may
  // destroy what the listener captured. When called from inside a listener callback (of any
  // listener) it does not wait, since that could deadlock; later commits never call it.
  void Remove(uint64_t id);

  // Calls every registered listener with `change`, in registration order.
  void Notify(const Change& change);

 private:
  struct Entry {
    std::function<void(const Change&)> fn;
    int running = 0;       // calls in progress; guarded by ListenerSet::mu_
    bool removed = false;  // guarded by ListenerSet::mu_
  };

  absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ward::storage::internal
