#include "net/session_cache.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace ward::net {

absl::StatusOr<std::shared_ptr<SessionCache>> SessionCache::Create(size_t capacity,
                                                                   const core::Clock* clock) {
  if (capacity == 0) {
    return absl::InvalidArgumentError("the TLS session cache needs room for at least one session");
  }
  return std::shared_ptr<SessionCache>(
      new SessionCache(capacity, clock != nullptr ? *clock : core::RealClock::Get()));
}

void SessionCache::DropLocked(std::unordered_map<std::string, Slot>::iterator slot,
                              List& garbage) {
  garbage.splice(garbage.end(), slot->second.superseded ? superseded_ : fresh_, slot->second.it);
  index_.erase(slot);
}

void SessionCache::PurgeExpiredLocked(absl::Time now, List& garbage) {
  for (List* list : {&superseded_, &fresh_}) {
    while (!list->empty() && list->front().expires <= now) {
      DropLocked(index_.find(list->front().id), garbage);
      ++stats_.expired;
    }
  }
}

void SessionCache::Insert(SSL_SESSION* session) {
  unsigned int id_length = 0;
  const unsigned char* id = SSL_SESSION_get_id(session, &id_length);
  const long lifetime = SSL_SESSION_get_timeout(session);
  if (id == nullptr || id_length == 0 || lifetime <= 0) return;
  if (SSL_SESSION_up_ref(session) != 1) return;
  SslSessionPtr reference(session);
  std::string key(reinterpret_cast<const char*>(id), id_length);
  const absl::Time now = clock_.Now();
  List garbage;  // freed after the lock is released
  {
    absl::MutexLock lock(&mu_);
    if (auto old = index_.find(key); old != index_.end()) DropLocked(old, garbage);
    PurgeExpiredLocked(now, garbage);
    while (index_.size() >= capacity_) {
      List& oldest = superseded_.empty() ? fresh_ : superseded_;
      DropLocked(index_.find(oldest.front().id), garbage);
      ++stats_.evicted;
    }
    fresh_.push_back(Entry{key, std::move(reference), now + absl::Seconds(lifetime)});
    index_.emplace(std::move(key), Slot{std::prev(fresh_.end()), false});
    ++stats_.inserted;
  }
}

SslSessionPtr SessionCache::Find(std::string_view id) {
  const std::string key(id);
  const absl::Time now = clock_.Now();
  SslSessionPtr found;
  List garbage;
  {
    absl::MutexLock lock(&mu_);
    auto slot = index_.find(key);
    if (slot == index_.end()) {
      ++stats_.misses;
      return nullptr;
    }
    Entry& entry = *slot->second.it;
    if (entry.expires <= now) {
      DropLocked(slot, garbage);
      ++stats_.expired;
      ++stats_.misses;
    } else {
      ++stats_.hits;
      if (SSL_SESSION_up_ref(entry.session.get()) == 1) found.reset(entry.session.get());
      if (!slot->second.superseded &&
          SSL_SESSION_get_protocol_version(entry.session.get()) == TLS1_3_VERSION) {
        entry.expires = std::min(entry.expires, now + kReuseWindow);
        superseded_.splice(superseded_.end(), fresh_, slot->second.it);
        slot->second.superseded = true;
      }
    }
  }
  return found;
}

void SessionCache::Remove(std::string_view id) {
  const std::string key(id);
  List garbage;
  absl::MutexLock lock(&mu_);
  auto slot = index_.find(key);
  if (slot == index_.end()) return;
  DropLocked(slot, garbage);
  ++stats_.removed;
  // `garbage` is declared before `lock`, so it is freed after the unlock.
}

SessionCacheStats SessionCache::Stats() const {
  absl::MutexLock lock(&mu_);
  SessionCacheStats stats = stats_;
  stats.size = index_.size();
  return stats;
}

}  // namespace ward::net
