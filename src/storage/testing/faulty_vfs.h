#pragma once

// A fault-injecting SQLite VFS for tests: real SQLite on real files, with failures injected at
// the boundary between SQLite and the operating system (docs/storage.md, "Failure behaviour").

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ward::storage::testing {

// What an injected fault makes SQLite see.
enum class Fault {
  kNone,
  kDiskFull,    // xWrite returns SQLITE_FULL, as the unix VFS does for ENOSPC/EDQUOT
  kWriteError,  // xWrite returns SQLITE_IOERR_WRITE, as the unix VFS does for EIO
  kSyncError,   // xSync returns SQLITE_IOERR_FSYNC, as the unix VFS does for a failed fsync
};

// Which files a fault applies to, by the role SQLite opened them for.
enum class FaultTarget {
  kAnyFile,
  kMainDatabase,  // the database file itself (written by checkpoints)
  kWal,           // the write-ahead log (written and synced by every commit)
};

// A SQLite VFS registered under its own name that forwards every call to the default VFS
// (sqlite3_vfs_find(nullptr)) and, while a fault is armed, fails the matching xWrite or xSync
// calls without passing them on (so a failed write leaves the file untouched and a failed sync
// syncs nothing). Open a database on it with SqliteOptions::vfs = name(), or the `zVfs`
// argument of sqlite3_open_v2.
//
// A fault stays armed until Clear() or the next Inject(): a full disk stays full. Shared memory
// (the WAL index), locks and reads are never faulted.
//
// Thread-safe: SQLite may call in from any thread while the test arms and clears faults.
class FaultyVfs {
 public:
  // Registers a VFS named `name` (not the default one).
  // Errors: kInvalidArgument for an empty name; kAlreadyExists if a VFS of that name is
  //         registered; kInternal if SQLite has no default VFS or refuses the registration.
  static absl::StatusOr<std::unique_ptr<FaultyVfs>> Register(std::string name);

  // Unregisters the VFS. REQUIRES: no database connection opened on it is still open.
  ~FaultyVfs();
  FaultyVfs(const FaultyVfs&) = delete;
  FaultyVfs& operator=(const FaultyVfs&) = delete;

  const std::string& name() const { return name_; }

  // Arms `fault` for files matching `target`: the first `after` matching calls (xWrite for
  // kDiskFull and kWriteError, xSync for kSyncError) still go through, every later one fails.
  // Replaces any fault armed before; kNone is Clear().
  void Inject(Fault fault, uint64_t after = 0, FaultTarget target = FaultTarget::kAnyFile);

  // Disarms the fault: every call goes through again.
  void Clear() { Inject(Fault::kNone); }

  // Calls that reached the real files, and calls failed by injection, since registration.
  uint64_t writes() const;
  uint64_t syncs() const;
  uint64_t injected() const;

  // The VFS's forwarding functions (faulty_vfs.cc).
  friend struct FaultyVfsCallbacks;

 private:
  FaultyVfs(std::string name, sqlite3_vfs* base);

  // Returns the SQLite result code the current xSync (`sync`) or xWrite call on a file opened
  // with `open_flags` must fail with, or SQLITE_OK to let it through; counts the call.
  int Admit(bool sync, int open_flags);

  const std::string name_;
  sqlite3_vfs* const base_;  // the default VFS at registration
  sqlite3_vfs vfs_{};        // what SQLite sees; pAppData points here

  mutable absl::Mutex mu_;
  Fault fault_ ABSL_GUARDED_BY(mu_) = Fault::kNone;
  FaultTarget target_ ABSL_GUARDED_BY(mu_) = FaultTarget::kAnyFile;
  uint64_t pass_remaining_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t writes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t injected_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ward::storage::testing
