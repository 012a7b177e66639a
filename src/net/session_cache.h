#pragma once

// A node-local store of server-side TLS sessions, for stateful resumption (TLS 1.3 tickets that
// carry only a session id, TLS 1.2 session ids): a resumed handshake finds the session already
// decoded, client certificate included, instead of decrypting and decoding a stateless ticket.
// See TlsServerOptions::session_cache (net/tls.h) and docs/configuration.md, "Session
// resumption".

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "crypto/openssl_handles.h"

namespace ward::net {

using SslSessionPtr = std::unique_ptr<SSL_SESSION, crypto::Deleter<&SSL_SESSION_free>>;

// Counters since the cache was created, read together.
struct SessionCacheStats {
  size_t size = 0;            // sessions held now
  uint64_t inserted = 0;      // sessions stored
  uint64_t hits = 0;          // lookups that found a live session
  uint64_t misses = 0;        // lookups that found none (never stored, gone, or expired)
  uint64_t evicted = 0;       // sessions dropped to stay within the capacity
  uint64_t expired = 0;       // sessions dropped because their lifetime had passed
  uint64_t removed = 0;       // sessions dropped by Remove
};

// Sessions keyed by their id, each kept until its lifetime (SSL_SESSION_get_timeout, from when
// it was stored) passes, at most `capacity` of them.
//
// TLS 1.3: the server sends a new ticket (a new session) after every resumption, so the
// session a client resumed is superseded. It is kept for kReuseWindow more (clients that open
// several connections at once with the same ticket, as Go's and Ward's own client pools do,
// still resume) and then dropped, so that the store holds about one session per client rather
// than one per resumption. TLS 1.2 session ids are reused as they are (no new session is made
// on resumption) and keep their full lifetime.
//
// When full, storing a session drops first the sessions already superseded, oldest first,
// then the oldest stored. Expired sessions are dropped as they are met at the old end of
// either list and on lookup.
//
// Sessions are shared, not copied: Find returns a new reference to the stored object.
//
// Thread-safe (one mutex; each call holds it for a hash lookup and a few list splices, and
// frees dropped sessions after releasing it). `clock` is borrowed and must outlive the cache.
class SessionCache {
 public:
  // How long a TLS 1.3 session stays resumable after its first resumption.
  static constexpr absl::Duration kReuseWindow = absl::Seconds(10);

  // A cache holding at most `capacity` sessions, timed by `clock` (nullptr: core::RealClock).
  // Errors: kInvalidArgument if `capacity` is 0.
  static absl::StatusOr<std::shared_ptr<SessionCache>> Create(size_t capacity,
                                                              const core::Clock* clock = nullptr);

  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;

  // Stores `session` (taking a reference) under its id, replacing any session with that id.
  // A session with an empty id or a zero lifetime is not stored.
  void Insert(SSL_SESSION* session);

  // Returns a new reference to the live session stored under `id`, or null if there is none
  // (never stored, dropped, or expired). Finding a TLS 1.3 session starts its kReuseWindow.
  SslSessionPtr Find(std::string_view id);

  // Drops the session stored under `id`, if any.
  void Remove(std::string_view id);

  SessionCacheStats Stats() const;
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    std::string id;
    SslSessionPtr session;
    absl::Time expires;
  };
  using List = std::list<Entry>;
  struct Slot {
    List::iterator it;
    bool superseded = false;  // in superseded_, else in fresh_
  };

  SessionCache(size_t capacity, const core::Clock& clock) : capacity_(capacity), clock_(clock) {}

  // Unlinks the entry of `slot` (an iterator of index_) and moves it to `garbage`, which the
  // caller frees after releasing mu_.
  void DropLocked(std::unordered_map<std::string, Slot>::iterator slot, List& garbage)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the expired entries at the old end of both lists.
  void PurgeExpiredLocked(absl::Time now, List& garbage) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  const core::Clock& clock_;

  mutable absl::Mutex mu_;
  // Not yet resumed (TLS 1.3) or reusable (TLS 1.2), in the order stored.
  List fresh_ ABSL_GUARDED_BY(mu_);
  // TLS 1.3 sessions already resumed, in the order of their first resumption (so of expiry).
  List superseded_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, Slot> index_ ABSL_GUARDED_BY(mu_);
  SessionCacheStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ward::net
