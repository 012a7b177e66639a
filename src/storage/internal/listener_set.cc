#include "storage/internal/listener_set.h"

#include <utility>
#include <vector>

namespace ward::storage::internal {
namespace {

// How many listener calls are on this thread's stack (any ListenerSet). Remove() must not wait
// for running calls when it is itself inside one.
thread_local int tls_listener_depth = 0;

}  // namespace

uint64_t ListenerSet::Add(std::function<void(const Change&)> listener) {
  auto entry = std::make_shared<Entry>();
  entry->fn = std::move(listener);
  absl::MutexLock lock(&mu_);
  uint64_t id = next_id_++;
  entries_.emplace(id, std::move(entry));
  return id;
}

void ListenerSet::Remove(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  std::shared_ptr<Entry> entry = std::move(it->second);
  entries_.erase(it);
  entry->removed = true;
  if (tls_listener_depth > 0) return;
  Entry* raw = entry.get();
  mu_.Await(absl::Condition(
      +[](Entry* e) { return e->running == 0; }, raw));
}

void ListenerSet::Notify(const Change& change) {
  std::vector<std::shared_ptr<Entry>> snapshot;
  {
    absl::MutexLock lock(&mu_);
    if (entries_.empty()) return;
    snapshot.reserve(entries_.size());
    for (const auto& [id, entry] : entries_) snapshot.push_back(entry);
  }
  for (const std::shared_ptr<Entry>& entry : snapshot) {
    {
      absl::MutexLock lock(&mu_);
      if (entry->removed) continue;
      ++entry->running;
    }
    ++tls_listener_depth;
    entry->fn(change);
    --tls_listener_depth;
    absl::MutexLock lock(&mu_);
    --entry->running;
  }
}

}  // namespace ward::storage::internal
