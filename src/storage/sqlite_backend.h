#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/backend.h"
#include "storage/internal/listener_set.h"

namespace ward::storage {

struct SqliteOptions {
  // File path of the database. Required. Created with mode 0600 if absent (an existing file
  // with group/other permission bits is tightened to 0600). The directory must exist; its
  // permissions are the caller's business. SQLite adds `<path>-wal` and `<path>-shm` beside it.
  std::string path;
  // How long a connection waits for a lock held by another connection or process before the
  // operation fails with kUnavailable.
  absl::Duration busy_timeout = absl::Seconds(5);
  // Read connections in the pool; Get and List calls beyond this many wait for a free one.
  int read_connections = 4;
  // Most commits applied in one group transaction (bounds the transaction's size).
  int max_commits_per_transaction = 1000;
  // Name of the registered SQLite VFS every connection is opened with; empty: SQLite's
  // default (the unix VFS). Tests use storage::testing::FaultyVfs here to inject I/O errors.
  std::string vfs;
};

// A durable Backend in one SQLite database file (schema and design in docs/storage.md).
//
// Writes use group commit: Commit() queues the ops and waits; one writer thread takes every
// queued commit, applies each inside its own SAVEPOINT of a single transaction, and COMMITs
// once, so one WAL fsync (synchronous=FULL) covers the whole group. A commit is acknowledged
// only after that COMMIT returned, i.e. it survives kill -9 and power loss (within what fsync
// promises). Reads use a small pool of separate connections that, in WAL mode, run alongside
// the writer and see every commit acknowledged before the read started.
//
// Thread-safe. Listeners run on the thread that called Commit, after the commit is durable,
// with no lock held; listeners of concurrent commits may run concurrently and out of
// revision order. The process must be the only writer of the file (use a lock on the data
// directory); another writer makes commits fail with kUnavailable after `busy_timeout`.
class SqliteBackend final : public Backend {
 public:
  // Opens (creating if absent) the database at `options.path`, enables WAL mode, creates the
  // schema if absent, and starts the writer thread.
  // Errors: kInvalidArgument for an empty path, a non-positive pool/batch size, a negative
  //         busy timeout or an unregistered VFS; kFailedPrecondition if the schema version is
  //         newer than this build understands; kUnavailable if the file cannot be created or
  //         opened (missing directory, permissions, locked by another process); kInternal if
  //         the file is not a Ward database or is corrupt.
  static absl::StatusOr<std::unique_ptr<SqliteBackend>> Create(SqliteOptions options);

  // Completes every commit already queued (they are durable when their callers wake), stops
  // the writer thread and closes the connections. REQUIRES: no call on this object is in
  // progress or starts during or after destruction; a Commit that nevertheless races with it
  // gets kUnavailable "storage is closing" instead of being queued.
  ~SqliteBackend() override;

  SqliteBackend(const SqliteBackend&) = delete;
  SqliteBackend& operator=(const SqliteBackend&) = delete;

  // Errors: kNotFound if `key` is absent; kUnavailable on lock timeout or I/O failure;
  //         kInternal on corruption.
  absl::StatusOr<Record> Get(std::string_view key) override;

  // Returns the new revision. Revisions are consecutive: a failed commit uses none. A commit
  // with no ops, or only checks, also gets a revision. Ops apply in order (a later op on the
  // same key wins); checks see the state before the commit, including every commit
  // acknowledged earlier.
  // Errors (nothing written in every case): kInvalidArgument for an empty key (or a value too
  //         large for SQLite); kAborted if a check did not match; kUnavailable on lock
  //         timeout, full disk or I/O failure, for every commit of the failed group, and
  //         "storage is closing" during destruction; kInternal on corruption.
  absl::StatusOr<uint64_t> Commit(std::vector<Op> ops) override;

  // Errors: kUnavailable on lock timeout or I/O failure; kInternal on corruption.
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                size_t limit) override;

  // One SELECT on one read connection: the page is a consistent snapshot.
  // Errors: kUnavailable on lock timeout or I/O failure; kInternal on corruption.
  absl::StatusOr<ScanPage> Scan(std::string_view prefix, std::string_view after,
                                size_t limit) override;

  // See internal::ListenerSet for the removal guarantee.
  uint64_t AddListener(std::function<void(const Change&)> listener) override;
  void RemoveListener(uint64_t id) override;

  // The revision of the latest commit acknowledged by this object (at open: the stored one).
  uint64_t revision() const { return revision_.load(std::memory_order_acquire); }
  // Successful commits since open.
  uint64_t commits_committed() const { return commits_committed_.load(std::memory_order_relaxed); }
  // SQLite transactions committed since open; below commits_committed() when group commit
  // batched several commits into one transaction (and one fsync).
  uint64_t transactions_committed() const {
    return transactions_committed_.load(std::memory_order_relaxed);
  }

 private:
  struct WriterConnection;  // the writer thread's connection and statements
  struct ReaderConnection;  // one pooled read connection and its statements
  struct PendingCommit;     // one queued Commit call

  explicit SqliteBackend(SqliteOptions options);

  absl::Status Open();
  void WriterLoop();
  // Applies `batch` in one transaction and fills in each commit's result.
  void RunGroup(const std::vector<PendingCommit*>& batch);
  bool QueueReadyOrClosing() const ABSL_SHARED_LOCKS_REQUIRED(queue_mu_);

  std::unique_ptr<ReaderConnection> AcquireReader();
  void ReleaseReader(std::unique_ptr<ReaderConnection> reader);
  bool ReaderAvailable() const ABSL_SHARED_LOCKS_REQUIRED(pool_mu_);

  const SqliteOptions options_;

  // Used only by the writer thread once it has started (and by Open before that).
  std::unique_ptr<WriterConnection> writer_;

  absl::Mutex queue_mu_;
  std::deque<PendingCommit*> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool closing_ ABSL_GUARDED_BY(queue_mu_) = false;

  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<ReaderConnection>> idle_readers_ ABSL_GUARDED_BY(pool_mu_);

  std::atomic<uint64_t> revision_{0};
  std::atomic<uint64_t> commits_committed_{0};
  std::atomic<uint64_t> transactions_committed_{0};

  internal::ListenerSet listeners_;
  std::thread writer_thread_;
};

}  // namespace ward::storage
