#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/chain.h"
#include "audit/keys.h"
#include "core/clock.h"

namespace ward::audit {

struct FileDeviceOptions {
  // A signed checkpoint line follows every `checkpoint_every` records (and one is written on
  // Close).
  size_t checkpoint_every = 1000;
  // Records waiting for the writer; Append waits for room up to `timeout`.
  size_t queue_capacity = 4096;
  // How long Append waits for room in the queue and then for its record to be written before
  // it gives up (fail closed).
  absl::Duration timeout = absl::Seconds(5);
  // Longest time a written record may wait for its fdatasync. Records are acknowledged once
  // written (write(2): they survive the process being killed); the file is synced when this
  // much time has passed since its last sync, when a write holds a checkpoint line, and when
  // the device closes or rotates: a few times a second plus once per checkpoint_every records
  // (about 38 times a second at 38,000 records/s), not once per write. Those syncs run on a sync thread of the device while records go on being written:
  // a slow disk flush holds up no record. Zero: sync after every batch, on the writer thread
  // (the writer then waits for each sync before it takes the next batch; the device is then
  // always in queued mode, see FileDevice).
  absl::Duration sync_interval = absl::Milliseconds(250);
  // Test hook: queued mode even for a file that would be written directly.
  bool queued_only = false;
  // Test hook: runs before each fdatasync (on the thread that syncs).
  std::function<void()> before_sync;
};

// An append-only audit file: one JSON line per record, hash-chained, with signed checkpoints
// (audit/chain.h, docs/audit.md).
//
// A record counts as written once write(2) has put it in the file (not necessarily fsynced):
// fdatasync follows at most options.sync_interval later (and after every checkpoint) on the
// device's sync thread, so no request waits for a disk flush and records are lost only if the
// machine itself goes down within that interval. Records are written in one of two modes,
// chosen when the file is opened (and again when Reopen switches files):
//  - direct, for a regular file on a local file system (as nginx writes its access log): the
//    thread that appends chains and writes its records itself, under the device's write lock,
//    and the append is answered on that thread. A write(2) to a local file returns once the
//    bytes are in the page cache; handing each record to another thread and back cost more
//    than the write (docs/benchmarks.md). The lock is held only for what depends on the chain
//    head: each record's line is hashed up to its seq before the lock is taken
//    (PrehashedRecord); under it the rest is hashed, the lines are copied into one buffer and
//    written. A direct append takes no other lock unless the device refuses it.
//  - queued, for anything else (pipes, character devices, and network or FUSE file systems,
//    whose writes can hang), and when options.sync_interval is zero: a single writer thread
//    takes everything queued as one batch, writes it with one write(), and answers each
//    record, so a hanging file holds up no appending thread.
// An existing file is continued: its last line gives the chain head (an incomplete last line,
// left by a crash mid-write, is cut off first).
//
// Thread-safe. `clock` is borrowed and must outlive the device.
class FileDevice {
 public:
  // Opens (creating with mode 0600 if needed) `path` for appending and starts the writer.
  // Errors: kNotFound / kPermissionDenied / kInternal if the file cannot be opened or read;
  //         kDataLoss if an existing file does not end with a Ward audit line.
  static absl::StatusOr<std::unique_ptr<FileDevice>> Open(std::string path, Hasher hasher,
                                                          CheckpointSigner signer,
                                                          core::Clock& clock,
                                                          FileDeviceOptions options);
  FileDevice(const FileDevice&) = delete;
  FileDevice& operator=(const FileDevice&) = delete;
  // Closes the device (see Close) if still open.
  ~FileDevice();

  // Appends `record_json` (a serialized JSON object without seq/prev_hash) and returns once
  // it has been written to the file.
  // Errors: kFailedPrecondition if the device is closed; kDeadlineExceeded (queued mode) if
  //         the queue stayed full, or the write did not complete, within options.timeout (the
  //         record may still be written later); kResourceExhausted if the disk is full (ENOSPC, EDQUOT);
  //         kInternal for any other write error, or if an earlier fdatasync failed (the device
  //         then refuses every record until it is reopened).
  absl::Status Append(std::string record_json);

  // Called once with the outcome of an AppendAsync: from the calling thread, before AppendAsync
  // returns, in direct mode and when the record is refused at once; from the writer thread in
  // queued mode. Must be cheap and must not call into the device.
  using Done = std::function<void(absl::Status)>;

  // Appends `record_json` like Append; in queued mode returns without waiting. `done` learns
  // the outcome: OK once the record is written, or Append's errors, except that a full queue
  // refuses the record at once with kUnavailable instead of waiting for room (the caller may
  // be an event loop). In queued mode a record whose write never completes (a hung file
  // system) never calls `done`: the caller keeps its own deadline. Records appended by one
  // thread are written in the order appended, whichever of Append and AppendAsync was used.
  void AppendAsync(std::string record_json, Done done);

  // AppendAsync for several records at once (a request's request and response records): they
  // are queued together, so they go into the file next to each other in one write, and `done`
  // is called once, with the outcome they share (OK at once for no records). Refusals are as for
  // AppendAsync (a queue without room for all of them refuses all of them).
  void AppendAsync(std::vector<std::string> records, Done done);

  // Reopens the file at path() for log rotation (SIGHUP), between two batches of the writer,
  // and returns once done. If the path still names the open file, nothing changes. Otherwise
  // (the file was renamed or removed): the old file gets a closing checkpoint if records
  // followed its last one and is closed, and the file now at the path is opened (created with
  // mode 0600 if needed). A new empty file starts with a signed rotation line that continues
  // the chain of the old file (audit/chain.h); an existing one is continued from its last
  // line, as Open does. Records queued meanwhile wait and go to the new file.
  // Errors: kFailedPrecondition if the device is closed; Open's errors for the new file (the
  //         device then keeps appending to the old file, which stays open); kResourceExhausted
  //         / kInternal if the rotation line cannot be written (likewise).
  absl::Status Reopen();

  // Stops accepting records, writes what is queued, a final checkpoint if any record followed
  // the last one, syncs and closes the file. Idempotent. Returns the first error of that final
  // write or sync.
  absl::Status Close();

  const Hasher& hasher() const { return hasher_; }
  const std::string& path() const { return path_; }

  struct Stats {
    uint64_t records = 0;      // records written
    uint64_t checkpoints = 0;  // checkpoint lines written
    uint64_t batches = 0;      // write() calls that succeeded
    uint64_t syncs = 0;        // fdatasync() calls
    uint64_t failures = 0;     // batches that failed to write
    uint64_t reopens = 0;      // files switched by Reopen
    size_t queued = 0;         // records waiting for the writer now
  };
  Stats GetStats() const;

  // Whether records are now written by the appending thread (direct mode; see above).
  bool writes_directly() const { return direct_.load(std::memory_order_acquire); }

 private:
  // What a waiting Append learns about its record.
  struct Slot {
    bool done = false;
    absl::Status status;
  };
  struct Pending {
    std::string record;
    std::shared_ptr<Slot> slot;  // a waiting Append, or
    Done done;                   // an AppendAsync's callback
  };
  // Records hashed as far as they can be before the chain head is known, and a buffer with
  // room for their lines: the part of writing them that needs no lock (PrepareBatch). Borrows
  // the records' bytes.
  struct Batch {
    std::vector<PrehashedRecord> records;
    std::string buf;
  };

  FileDevice(std::string path, int fd, bool regular, ChainHead head, Hasher hasher,
             CheckpointSigner signer, core::Clock& clock, FileDeviceOptions options);

  // Whether records are written by the appending thread (see the class comment) for a file
  // opened as `fd` at `path`.
  static bool WritesDirectly(int fd, bool regular, const FileDeviceOptions& options);

  void WriterLoop();
  // The refusal of a record appended now (closing, or broken), or OK. REQUIRES: mu_ held.
  absl::Status Refusal() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Refusal(), taking mu_ only if refusing_ says there may be one.
  absl::Status CheckRefusal() const ABSL_LOCKS_EXCLUDED(mu_);
  // Hashes `records` as far as possible and sizes a buffer for their lines (no lock needed).
  // The batch borrows the records' bytes.
  Batch PrepareBatch(const std::vector<std::string_view>& records) const;
  // Chains the batch's records (with the checkpoints that fall due) into batch.buf, writes it
  // with one write(), and counts them (and tells the sync thread). Spends the batch's records.
  // On failure the chain stays as it was.
  absl::Status WriteRecords(Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Appends a signed checkpoint line to `buf`, advancing head_.
  absl::Status AddCheckpoint(std::string& buf) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Writes `buf` at the end of the file; on failure cuts the file back to offset_.
  absl::Status WriteBatch(const std::string& buf) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // fdatasync of the open file on this thread (regular files only). Takes mu_.
  absl::Status Sync() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // fdatasync of `fd` (with the before_sync hook).
  absl::Status SyncFd(int fd) const;
  // Sync, counting it and marking the device broken if it fails. Takes mu_.
  void SyncWritten() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Waits until the sync thread has no sync wanted or running, then points it at `fd` (the
  // file now open), so that the file it synced may be closed. Takes mu_.
  void RetargetSyncs(int fd);
  // Writes `records` on the calling thread if the device is in direct mode and nothing is
  // queued from before a mode switch; nullopt = queue them instead. Takes write_mu_ (and mu_
  // only when the device refuses records).
  std::optional<absl::Status> TryAppendDirect(const std::vector<std::string>& records);
  // The sync thread (only when options.sync_interval > 0): syncs when asked (a checkpoint was
  // written) and when written records have waited sync_interval.
  void SyncerLoop();
  // Counts a finished sync and marks the device broken if it failed. REQUIRES: mu_ held.
  void RecordSync(const absl::Status& synced) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Does the work of Reopen: switches files under write_mu_, then syncs the old file and
  // closes it without the lock. Writer thread only.
  absl::Status SwitchFile() ABSL_LOCKS_EXCLUDED(write_mu_);

  const std::string path_;
  const Hasher hasher_;
  const CheckpointSigner signer_;
  core::Clock& clock_;
  const FileDeviceOptions options_;

  // The open file and its chain: whoever writes holds write_mu_ (the writer thread, or an
  // appending thread in direct mode). Taken before mu_.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  int fd_ ABSL_GUARDED_BY(write_mu_);
  bool regular_ ABSL_GUARDED_BY(write_mu_);  // a regular file: fsync and truncate apply
  ChainHead head_ ABSL_GUARDED_BY(write_mu_);
  size_t since_checkpoint_ ABSL_GUARDED_BY(write_mu_) = 0;
  uint64_t offset_ ABSL_GUARDED_BY(write_mu_) = 0;  // file size after the last good write
  // Direct mode (records written by the appending thread) for the open file. Stored under
  // write_mu_; read without it to choose a path, and under it to confirm the choice.
  std::atomic<bool> direct_{false};
  // Records queued, or taken by the writer and not yet written: incremented under mu_ when
  // they are queued, decremented by the writer under write_mu_ once it has written (or failed)
  // them. A direct append that sees it non-zero under write_mu_ queues its records behind them,
  // so that a thread's records queued before a switch to direct mode go first.
  std::atomic<size_t> unwritten_{0};
  // closing_ || !broken_.ok(), stored with them under mu_ (both only ever become true), so
  // that a direct append checks for a refusal without taking mu_.
  std::atomic<bool> refusing_{false};
  // Write counters, kept outside mu_ so that a direct append takes no lock but write_mu_.
  std::atomic<uint64_t> records_written_{0};
  std::atomic<uint64_t> checkpoints_written_{0};
  std::atomic<uint64_t> batches_written_{0};
  std::atomic<uint64_t> failed_batches_{0};

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // set when fdatasync failed
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
  // A Reopen waiting for the writer; every concurrent Reopen shares it.
  std::shared_ptr<Slot> reopen_ ABSL_GUARDED_BY(mu_);
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;    // Stats::syncs
  uint64_t reopens_ ABSL_GUARDED_BY(mu_) = 0;  // Stats::reopens
  // The sync thread's work: sync `sync_fd_` when `sync_wanted_`; `sync_running_` while it
  // does; `unsynced_` = records written since the last sync began, at `last_sync_`.
  bool sync_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool sync_running_ ABSL_GUARDED_BY(mu_) = false;
  bool syncer_stop_ ABSL_GUARDED_BY(mu_) = false;
  // Cleared under mu_ (when a sync begins). A write sets it without mu_ and, only if it was
  // clear, then takes mu_ once: the sync thread waits for it in conditions on mu_, which are
  // evaluated when mu_ is released. So a busy device takes mu_ about once per sync, not per
  // write.
  std::atomic<bool> unsynced_{false};
  int sync_fd_ ABSL_GUARDED_BY(mu_) = -1;
  std::chrono::steady_clock::time_point last_sync_ ABSL_GUARDED_BY(mu_) =
      std::chrono::steady_clock::now();
  std::thread writer_;
  std::thread syncer_;
};

}  // namespace ward::audit
