#include "storage/memory_backend.h"

#include <utility>

#include "core/status_macros.h"
#include "storage/internal/ops.h"

namespace ward::storage {

absl::StatusOr<Record> MemoryBackend::Get(std::string_view key) {
  absl::MutexLock lock(&mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return absl::NotFoundError("storage: key not found");
  return it->second;
}

absl::StatusOr<uint64_t> MemoryBackend::Commit(std::vector<Op> ops) {
  WARD_RETURN_IF_ERROR(internal::ValidateOps(ops));
  Change change;
  change.keys = internal::ChangedKeys(ops);
  {
    absl::MutexLock lock(&mu_);
    for (const Op& op : ops) {
      if (op.kind != Op::Kind::kCheck) continue;
      auto it = data_.find(op.key);
      uint64_t current = it == data_.end() ? 0 : it->second.revision;
      if (current != op.revision) {
        return absl::AbortedError("storage: check failed: key revision changed");
      }
    }
    uint64_t revision = ++revision_;
    for (Op& op : ops) {
      switch (op.kind) {
        case Op::Kind::kPut:
          data_.insert_or_assign(std::move(op.key), Record{std::move(op.value), revision});
          break;
        case Op::Kind::kDelete:
          data_.erase(op.key);
          break;
        case Op::Kind::kCheck:
          break;
      }
    }
    change.revision = revision;
  }
  listeners_.Notify(change);
  return change.revision;
}

namespace {

// Calls visit(key, record) for each key of `data` that starts with `prefix` and sorts after
// `after`, in order, at most `limit` times (0: no limit). Returns whether keys remain.
template <typename Visit>
bool WalkRange(const std::map<std::string, Record, std::less<>>& data, std::string_view prefix,
               std::string_view after, size_t limit, const Visit& visit) {
  auto it =
      (!after.empty() && after >= prefix) ? data.upper_bound(after) : data.lower_bound(prefix);
  for (size_t n = 0; it != data.end(); ++it, ++n) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) return false;
    if (limit != 0 && n == limit) return true;
    visit(it->first, it->second);
  }
  return false;
}

}  // namespace

absl::StatusOr<ListPage> MemoryBackend::List(std::string_view prefix, std::string_view after,
                                             size_t limit) {
  ListPage page;
  absl::MutexLock lock(&mu_);
  page.more = WalkRange(data_, prefix, after, limit,
                        [&](const std::string& key, const Record&) { page.keys.push_back(key); });
  return page;
}

absl::StatusOr<ScanPage> MemoryBackend::Scan(std::string_view prefix, std::string_view after,
                                             size_t limit) {
  ScanPage page;
  absl::MutexLock lock(&mu_);
  page.more = WalkRange(data_, prefix, after, limit, [&](const std::string& key, const Record& r) {
    page.records.push_back(KeyedRecord{key, r.value, r.revision});
  });
  return page;
}

uint64_t MemoryBackend::AddListener(std::function<void(const Change&)> listener) {
  return listeners_.Add(std::move(listener));
}

void MemoryBackend::RemoveListener(uint64_t id) { listeners_.Remove(id); }

uint64_t MemoryBackend::revision() const {
  absl::MutexLock lock(&mu_);
  return revision_;
}

}  // namespace ward::storage
