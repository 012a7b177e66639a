#pragma once

// TLS session ticket keys shared by every node that reads the same storage, kept in the
// barrier at kTicketKeysPath (format in docs/configuration.md, "Session ticket keys"), so that
// a client resumes against any node a session another node began.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "barrier/barrier.h"
#include "core/clock.h"
#include "net/tls.h"

namespace ward::server {

inline constexpr std::string_view kTicketKeysPath = "core/tls/ticket-keys";

// The stored key set, newest first, as one node last read or wrote it.
struct TicketKeySet {
  std::vector<net::TicketKey> keys;  // keys[0] encrypts; every key decrypts
  std::vector<absl::Time> created;   // created[i]: when keys[i] was generated
  // True if this Sync wrote a new key (this node did the rotation).
  bool rotated = false;
  // True if the names of the keys differ from those the previous successful Sync returned
  // (always true for the first): the listener's keys need replacing.
  bool changed = false;
};

// Reads, creates and rotates the shared ticket keys through `barrier`.
//
// Rotation: the node whose Sync finds the newest key at least `rotation` old generates a new
// key and writes {new, previous newest} with a write conditional on the revision it read; a
// node that loses that race re-reads and adopts the winner's keys, so concurrent rotations
// never drop a key another node already serves. Older keys than the previous one are dropped:
// tickets live at most one rotation period after their key stopped encrypting.
//
// Not thread-safe (one owner thread). `barrier` and `clock` are borrowed and must outlive it.
// Key bytes are never logged.
class SharedTicketKeys {
 public:
  SharedTicketKeys(barrier::Barrier& barrier, core::Clock& clock, absl::Duration rotation)
      : barrier_(barrier), clock_(clock), rotation_(rotation) {}

  // Loads the stored keys, creating the first key if none is stored, and rotates if due.
  // Errors: kUnavailable if the barrier is sealed (or storage is unavailable); kDataLoss if the
  // stored value is malformed; kAborted if the conditional write lost to other nodes several
  // times in a row; kInternal if the random generator fails; other barrier errors.
  absl::StatusOr<TicketKeySet> Sync();

 private:
  barrier::Barrier& barrier_;
  core::Clock& clock_;
  const absl::Duration rotation_;
  std::string last_names_;  // the key names of the last successful Sync, concatenated
};

}  // namespace ward::server
