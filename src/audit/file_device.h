#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
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
  // much time has passed since its last sync, when a batch holds a checkpoint line, and when
  // the device closes or rotates, so a busy device syncs a few times a second, not once per
  // batch. Those syncs run on a second thread of the device while the writer goes on writing:
  // a slow disk flush holds up no record. Zero: sync after every batch, on the writer thread
  // (the writer then waits for each sync before it takes the next batch).
  absl::Duration sync_interval = absl::Milliseconds(250);
  // Test hook: runs before each fdatasync (on the thread that syncs).
  std::function<void()> before_sync;
};

// An append-only audit file: one JSON line per record, hash-chained, with signed checkpoints
// (audit/chain.h, docs/audit.md).
//
// Append queues a record and blocks until a single writer thread has written it to the file
// with write(2) (not necessarily fsynced). The writer takes everything queued as one batch and
// writes it with one write(); fdatasync follows at most options.sync_interval later (and with
// every checkpoint) on the device's sync thread, so no request waits for a disk flush and
// records are lost only if the machine itself goes down within that interval. An existing
// file is continued: its last line gives the chain head (an incomplete last line, left by a
// crash mid-write, is cut off first).
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
  // Errors: kFailedPrecondition if the device is closed; kDeadlineExceeded if the queue stayed
  //         full, or the write did not complete, within options.timeout (the record may still
  //         be written later); kResourceExhausted if the disk is full (ENOSPC, EDQUOT);
  //         kInternal for any other write error, or if an earlier fdatasync failed (the device
  //         then refuses every record until it is reopened).
  absl::Status Append(std::string record_json);

  // Called once with the outcome of an AppendAsync, from the writer thread (or from the calling
  // thread if the record was refused at once). Must be cheap and must not call into the device.
  using Done = std::function<void(absl::Status)>;

  // Queues `record_json` like Append but returns at once; `done` learns the outcome: OK once
  // the record is written, or Append's errors, except that a full queue refuses the record at
  // once with kUnavailable instead of waiting for room (the caller is an event loop that must
  // not block). A record whose write never completes (a hung file system) never calls `done`:
  // the caller keeps its own deadline. Records appended by one thread are written in the order
  // appended, whichever of Append and AppendAsync was used.
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

  FileDevice(std::string path, int fd, bool regular, ChainHead head, Hasher hasher,
             CheckpointSigner signer, core::Clock& clock, FileDeviceOptions options);

  void WriterLoop();
  // Appends a signed checkpoint line to `buf`, advancing head_. Writer thread only.
  absl::Status AddCheckpoint(std::string& buf);
  // Writes `buf` at the end of the file; on failure cuts the file back to offset_.
  absl::Status WriteBatch(const std::string& buf);
  // fdatasync (regular files only); clears dirty_. Writer thread only.
  absl::Status Sync();
  // Sync, counting it and marking the device broken if it fails. Writer thread only; takes mu_.
  void SyncWritten();
  // Asks the sync thread to sync what has been written (clears dirty_), or syncs at once when
  // options.sync_interval is zero. Writer thread only; takes mu_.
  void SyncSoon();
  // Waits until the sync thread has no sync wanted or running, before the writer closes the
  // file it syncs. Writer thread only; takes mu_.
  void AwaitSyncsDone();
  void SyncerLoop();
  // Counts a finished sync and marks the device broken if it failed. REQUIRES: mu_ held.
  void RecordSync(const absl::Status& synced) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Does the work of Reopen. Writer thread only.
  absl::Status SwitchFile();

  const std::string path_;
  const Hasher hasher_;
  const CheckpointSigner signer_;
  core::Clock& clock_;
  const FileDeviceOptions options_;

  // Writer-thread state (no lock: only the writer thread touches these once it runs, and
  // Close reads fd_ after joining it).
  int fd_;
  bool regular_;  // a regular file: fsync and truncate apply
  ChainHead head_;
  size_t since_checkpoint_ = 0;
  uint64_t offset_ = 0;  // file size after the last successful write
  bool dirty_ = false;   // written since the last fdatasync
  std::chrono::steady_clock::time_point last_sync_ = std::chrono::steady_clock::now();

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // set when fdatasync failed
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
  // A Reopen waiting for the writer; every concurrent Reopen shares it.
  std::shared_ptr<Slot> reopen_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  // The sync thread's work: sync `sync_fd_` when `sync_wanted_`; `sync_running_` while it does.
  bool sync_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool sync_running_ ABSL_GUARDED_BY(mu_) = false;
  bool syncer_stop_ ABSL_GUARDED_BY(mu_) = false;
  int sync_fd_ ABSL_GUARDED_BY(mu_) = -1;
  std::thread writer_;
  std::thread syncer_;
};

}  // namespace ward::audit
