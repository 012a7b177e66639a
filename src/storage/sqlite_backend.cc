#include "storage/sqlite_backend.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "storage/internal/ops.h"
#include "storage/internal/sqlite_util.h"

namespace ward::storage {

using internal::BindBlob;
using internal::ColumnBytes;
using internal::Exec;
using internal::Prepare;
using internal::SqliteDb;
using internal::SqliteStatus;
using internal::SqliteStmt;
using internal::StepDone;
using internal::StmtResetter;

namespace {

// The schema this build writes. A database with a higher version was written by a newer
// build and is refused; a lower one would be migrated here (there is none yet).
constexpr int64_t kSchemaVersion = 1;

constexpr const char* kSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS ward_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version INTEGER NOT NULL,
  revision INTEGER NOT NULL
);
INSERT OR IGNORE INTO ward_state (id, schema_version, revision) VALUES (1, 1, 0);
CREATE TABLE IF NOT EXISTS ward_kv (
  key BLOB PRIMARY KEY,
  value BLOB NOT NULL,
  revision INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

absl::Status ErrnoStatus(std::string_view what, const std::string& path, int err) {
  return absl::UnavailableError(
      absl::StrCat("storage: ", core::ToAbsl(what), " ", path, ": ", std::strerror(err)));
}

// Makes sure `path` exists with mode 0600 before SQLite opens it (SQLite would create it
// 0644). SQLite gives the -wal and -shm files it creates the main file's mode.
absl::Status PrepareDatabaseFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  bool created = fd >= 0;
  if (!created) {
    if (errno != EEXIST) return ErrnoStatus("cannot create database file", path, errno);
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("cannot open database file", path, errno);
  }
  struct stat st {};
  absl::Status status;
  if (::fstat(fd, &st) != 0) {
    status = ErrnoStatus("cannot stat database file", path, errno);
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::UnavailableError(absl::StrCat("storage: not a regular file: ", path));
  } else if ((st.st_mode & 0777) != 0600) {
    // New files: the umask may have dropped owner bits. Old files: never wider than 0600.
    if (!created) {
      spdlog::warn("storage: tightening database file mode to 0600 path={} mode={:o}", path,
                   st.st_mode & 0777);
    }
    if (::fchmod(fd, 0600) != 0) status = ErrnoStatus("cannot chmod database file", path, errno);
  }
  ::close(fd);
  WARD_RETURN_IF_ERROR(status);
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string side = path + suffix;
    if (::stat(side.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
      if (::chmod(side.c_str(), 0600) != 0) return ErrnoStatus("cannot chmod", side, errno);
    }
  }
  if (created) {
    // Make the new directory entry durable too.
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    std::string dir = parent.empty() ? std::string(".") : parent.string();
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return ErrnoStatus("cannot open directory", dir, errno);
    int rc = ::fsync(dir_fd);
    int err = errno;
    ::close(dir_fd);
    if (rc != 0) return ErrnoStatus("cannot fsync directory", dir, err);
  }
  return absl::OkStatus();
}

absl::StatusOr<SqliteDb> OpenConnection(const SqliteOptions& options) {
  sqlite3* raw = nullptr;
  // NOMUTEX: each connection is used by one thread at a time (the writer thread, or whoever
  // holds a pooled reader), so SQLite's per-connection mutex is not needed.
  int rc = sqlite3_open_v2(options.path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                           options.vfs.empty() ? nullptr : options.vfs.c_str());
  SqliteDb db(raw);
  if (rc != SQLITE_OK) return SqliteStatus(db.get(), rc, "open database");
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(
      db.get(), static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(options.busy_timeout),
                                                   std::numeric_limits<int>::max())));
  // Durability of every commit (also relevant to checkpoints run by any connection).
  WARD_RETURN_IF_ERROR(Exec(db.get(), "PRAGMA synchronous = FULL"));
  return db;
}

// Steps `stmt` expecting exactly one row with an integer in column 0.
absl::StatusOr<int64_t> StepInt(sqlite3_stmt* stmt, std::string_view what) {
  StmtResetter reset(stmt);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) return sqlite3_column_int64(stmt, 0);
  if (rc == SQLITE_DONE) {
    return absl::InternalError(absl::StrCat("storage: ", core::ToAbsl(what), ": no row"));
  }
  return SqliteStatus(sqlite3_db_handle(stmt), rc, what);
}

}  // namespace

struct SqliteBackend::PendingCommit {
  std::vector<Op> ops;
  absl::StatusOr<uint64_t> result = absl::UnknownError("storage: commit not run");
  bool done = false;  // guarded by SqliteBackend::queue_mu_; `result` is final once set
};

struct SqliteBackend::WriterConnection {
  SqliteDb db;
  SqliteStmt begin, commit, rollback, savepoint, release, rollback_to;
  SqliteStmt read_revision, write_revision, check, put, erase;

  absl::Status PrepareStatements() {
    sqlite3* d = db.get();
    WARD_ASSIGN_OR_RETURN(begin, Prepare(d, "BEGIN IMMEDIATE"));
    WARD_ASSIGN_OR_RETURN(commit, Prepare(d, "COMMIT"));
    WARD_ASSIGN_OR_RETURN(rollback, Prepare(d, "ROLLBACK"));
    WARD_ASSIGN_OR_RETURN(savepoint, Prepare(d, "SAVEPOINT ward_commit"));
    WARD_ASSIGN_OR_RETURN(release, Prepare(d, "RELEASE ward_commit"));
    WARD_ASSIGN_OR_RETURN(rollback_to, Prepare(d, "ROLLBACK TO ward_commit"));
    WARD_ASSIGN_OR_RETURN(read_revision,
                          Prepare(d, "SELECT revision FROM ward_state WHERE id = 1"));
    WARD_ASSIGN_OR_RETURN(write_revision,
                          Prepare(d, "UPDATE ward_state SET revision = ?1 WHERE id = 1"));
    WARD_ASSIGN_OR_RETURN(check, Prepare(d, "SELECT revision FROM ward_kv WHERE key = ?1"));
    WARD_ASSIGN_OR_RETURN(put, Prepare(d,
                                       "INSERT INTO ward_kv (key, value, revision) "
                                       "VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE "
                                       "SET value = excluded.value, revision = excluded.revision"));
    WARD_ASSIGN_OR_RETURN(erase, Prepare(d, "DELETE FROM ward_kv WHERE key = ?1"));
    return absl::OkStatus();
  }

  bool InTransaction() const { return sqlite3_get_autocommit(db.get()) == 0; }

  // The stored revision of `key`, 0 if absent.
  absl::StatusOr<uint64_t> KeyRevision(const std::string& key) {
    StmtResetter reset(check.get());
    WARD_RETURN_IF_ERROR(BindBlob(check.get(), 1, key));
    int rc = sqlite3_step(check.get());
    if (rc == SQLITE_ROW) return static_cast<uint64_t>(sqlite3_column_int64(check.get(), 0));
    if (rc == SQLITE_DONE) return 0;
    return SqliteStatus(db.get(), rc, "check key revision");
  }

  // Inside the open transaction: opens the savepoint and applies `ops` as commit `revision`.
  // On error the savepoint is left open for the caller to roll back. kAborted if a check
  // failed.
  absl::Status Apply(const std::vector<Op>& ops, uint64_t revision) {
    WARD_RETURN_IF_ERROR(StepDone(savepoint.get(), "savepoint"));
    for (const Op& op : ops) {
      if (op.kind != Op::Kind::kCheck) continue;
      WARD_ASSIGN_OR_RETURN(uint64_t current, KeyRevision(op.key));
      if (current != op.revision) {
        return absl::AbortedError("storage: check failed: key revision changed");
      }
    }
    for (const Op& op : ops) {
      switch (op.kind) {
        case Op::Kind::kPut:
          WARD_RETURN_IF_ERROR(BindBlob(put.get(), 1, op.key));
          WARD_RETURN_IF_ERROR(BindBlob(put.get(), 2, op.value));
          sqlite3_bind_int64(put.get(), 3, static_cast<int64_t>(revision));
          WARD_RETURN_IF_ERROR(StepDone(put.get(), "put"));
          break;
        case Op::Kind::kDelete:
          WARD_RETURN_IF_ERROR(BindBlob(erase.get(), 1, op.key));
          WARD_RETURN_IF_ERROR(StepDone(erase.get(), "delete"));
          break;
        case Op::Kind::kCheck:
          break;
      }
    }
    sqlite3_bind_int64(write_revision.get(), 1, static_cast<int64_t>(revision));
    WARD_RETURN_IF_ERROR(StepDone(write_revision.get(), "write revision"));
    return StepDone(release.get(), "release savepoint");
  }
};

struct SqliteBackend::ReaderConnection {
  SqliteDb db;
  SqliteStmt get;
  // List and Scan statements, indexed by (after is the lower bound ? 1 : 0) + (upper bound ?
  // 2 : 0).
  SqliteStmt list[4];
  SqliteStmt scan[4];

  absl::Status PrepareStatements() {
    sqlite3* d = db.get();
    WARD_RETURN_IF_ERROR(Exec(d, "PRAGMA query_only = ON"));
    WARD_ASSIGN_OR_RETURN(get, Prepare(d, "SELECT value, revision FROM ward_kv WHERE key = ?1"));
    for (int i = 0; i < 4; ++i) {
      std::string where =
          absl::StrCat(" FROM ward_kv WHERE key ", (i & 1) != 0 ? ">" : ">=", " ?1",
                       (i & 2) != 0 ? " AND key < ?2" : "", " ORDER BY key LIMIT ?3");
      WARD_ASSIGN_OR_RETURN(list[i], Prepare(d, absl::StrCat("SELECT key", where)));
      WARD_ASSIGN_OR_RETURN(scan[i],
                            Prepare(d, absl::StrCat("SELECT key, value, revision", where)));
    }
    return absl::OkStatus();
  }

  // The statement of `stmts` (list or scan) for a range read of `prefix` after `after`.
  static sqlite3_stmt* RangeStatement(SqliteStmt (&stmts)[4], std::string_view prefix,
                                      std::string_view after) {
    const bool exclusive = !after.empty() && after >= prefix;
    const bool bounded = internal::PrefixUpperBound(prefix).has_value();
    return stmts[(exclusive ? 1 : 0) + (bounded ? 2 : 0)].get();
  }

  // Binds the range of a List or Scan (see those) to `stmt`, from RangeStatement. `limit` + 1
  // rows are asked for, so that the extra row tells whether there are more.
  static absl::Status BindRange(sqlite3_stmt* stmt, std::string_view prefix, std::string_view after,
                                size_t limit) {
    const bool exclusive = !after.empty() && after >= prefix;
    std::optional<std::string> upper = internal::PrefixUpperBound(prefix);
    WARD_RETURN_IF_ERROR(BindBlob(stmt, 1, exclusive ? after : prefix));
    if (upper.has_value()) WARD_RETURN_IF_ERROR(BindBlob(stmt, 2, *upper));
    // Negative means no limit.
    int64_t sql_limit = -1;
    if (limit != 0 && limit < static_cast<size_t>(std::numeric_limits<int64_t>::max())) {
      sql_limit = static_cast<int64_t>(limit) + 1;
    }
    sqlite3_bind_int64(stmt, 3, sql_limit);
    return absl::OkStatus();
  }

  absl::StatusOr<ScanPage> Scan(std::string_view prefix, std::string_view after, size_t limit) {
    sqlite3_stmt* stmt = RangeStatement(scan, prefix, after);
    StmtResetter reset(stmt);
    WARD_RETURN_IF_ERROR(BindRange(stmt, prefix, after, limit));
    ScanPage page;
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqliteStatus(db.get(), rc, "scan");
      if (limit != 0 && page.records.size() == limit) {
        page.more = true;
        break;
      }
      page.records.push_back(KeyedRecord{ColumnBytes(stmt, 0), ColumnBytes(stmt, 1),
                                         static_cast<uint64_t>(sqlite3_column_int64(stmt, 2))});
    }
    return page;
  }

  absl::StatusOr<Record> Get(std::string_view key) {
    StmtResetter reset(get.get());
    WARD_RETURN_IF_ERROR(BindBlob(get.get(), 1, key));
    int rc = sqlite3_step(get.get());
    if (rc == SQLITE_DONE) return absl::NotFoundError("storage: key not found");
    if (rc != SQLITE_ROW) return SqliteStatus(db.get(), rc, "get");
    Record record;
    record.value = ColumnBytes(get.get(), 0);
    record.revision = static_cast<uint64_t>(sqlite3_column_int64(get.get(), 1));
    return record;
  }

  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after, size_t limit) {
    sqlite3_stmt* stmt = RangeStatement(list, prefix, after);
    StmtResetter reset(stmt);
    WARD_RETURN_IF_ERROR(BindRange(stmt, prefix, after, limit));
    ListPage page;
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqliteStatus(db.get(), rc, "list");
      if (limit != 0 && page.keys.size() == limit) {
        page.more = true;
        break;
      }
      page.keys.push_back(ColumnBytes(stmt, 0));
    }
    return page;
  }
};

SqliteBackend::SqliteBackend(SqliteOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<SqliteBackend>> SqliteBackend::Create(SqliteOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("storage: empty database path");
  if (options.read_connections < 1) {
    return absl::InvalidArgumentError("storage: read_connections must be at least 1");
  }
  if (options.max_commits_per_transaction < 1) {
    return absl::InvalidArgumentError("storage: max_commits_per_transaction must be at least 1");
  }
  if (options.busy_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("storage: negative busy_timeout");
  }
  if (!options.vfs.empty() && sqlite3_vfs_find(options.vfs.c_str()) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("storage: no SQLite VFS named ", options.vfs));
  }
  std::unique_ptr<SqliteBackend> backend(new SqliteBackend(std::move(options)));
  WARD_RETURN_IF_ERROR(backend->Open());
  backend->writer_thread_ = std::thread([b = backend.get()] { b->WriterLoop(); });
  return backend;
}

absl::Status SqliteBackend::Open() {
  WARD_RETURN_IF_ERROR(PrepareDatabaseFile(options_.path));

  auto writer = std::make_unique<WriterConnection>();
  WARD_ASSIGN_OR_RETURN(writer->db, OpenConnection(options_));
  sqlite3* db = writer->db.get();
  {
    WARD_ASSIGN_OR_RETURN(SqliteStmt wal, Prepare(db, "PRAGMA journal_mode = WAL"));
    StmtResetter reset(wal.get());
    int rc = sqlite3_step(wal.get());
    if (rc != SQLITE_ROW) return SqliteStatus(db, rc, "enable WAL mode");
    if (ColumnBytes(wal.get(), 0) != "wal") {
      return absl::UnavailableError("storage: the database refused WAL journal mode");
    }
  }

  // Schema: create if absent, refuse one from a newer build.
  WARD_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  absl::Status schema = [&]() -> absl::Status {
    WARD_RETURN_IF_ERROR(Exec(db, kSchemaSql));
    WARD_ASSIGN_OR_RETURN(SqliteStmt stmt,
                          Prepare(db, "SELECT schema_version FROM ward_state WHERE id = 1"));
    WARD_ASSIGN_OR_RETURN(int64_t version, StepInt(stmt.get(), "read schema version"));
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("storage: database schema version ", version,
                       " is newer than this build supports (", kSchemaVersion, ")"));
    }
    if (version < 1) {
      return absl::InternalError(absl::StrCat("storage: invalid schema version ", version));
    }
    return Exec(db, "COMMIT");
  }();
  if (!schema.ok()) {
    if (sqlite3_get_autocommit(db) == 0) (void)Exec(db, "ROLLBACK");
    return schema;
  }

  WARD_RETURN_IF_ERROR(writer->PrepareStatements());
  WARD_ASSIGN_OR_RETURN(int64_t revision, StepInt(writer->read_revision.get(), "read revision"));
  revision_.store(static_cast<uint64_t>(revision), std::memory_order_release);
  writer_ = std::move(writer);

  std::vector<std::unique_ptr<ReaderConnection>> readers;
  for (int i = 0; i < options_.read_connections; ++i) {
    auto reader = std::make_unique<ReaderConnection>();
    WARD_ASSIGN_OR_RETURN(reader->db, OpenConnection(options_));
    WARD_RETURN_IF_ERROR(reader->PrepareStatements());
    readers.push_back(std::move(reader));
  }
  absl::MutexLock lock(&pool_mu_);
  idle_readers_ = std::move(readers);
  return absl::OkStatus();
}

SqliteBackend::~SqliteBackend() {
  {
    absl::MutexLock lock(&queue_mu_);
    closing_ = true;
  }
  if (writer_thread_.joinable()) writer_thread_.join();
  {
    absl::MutexLock lock(&pool_mu_);
    idle_readers_.clear();
  }
  writer_.reset();  // closed last: the last connection to close checkpoints the WAL
}

bool SqliteBackend::QueueReadyOrClosing() const { return !queue_.empty() || closing_; }

void SqliteBackend::WriterLoop() {
  std::vector<PendingCommit*> batch;
  const auto max_batch = static_cast<size_t>(options_.max_commits_per_transaction);
  while (true) {
    batch.clear();
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(this, &SqliteBackend::QueueReadyOrClosing));
      if (queue_.empty()) return;  // closing, and everything queued has been completed
      while (!queue_.empty() && batch.size() < max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    RunGroup(batch);
    absl::MutexLock lock(&queue_mu_);
    for (PendingCommit* pending : batch) pending->done = true;
  }
}

void SqliteBackend::RunGroup(const std::vector<PendingCommit*>& batch) {
  WriterConnection& w = *writer_;
  // A failure of the transaction as a whole fails every commit of the group: none of them
  // was written. (Even a kAborted decided inside the group is replaced, since it was judged
  // against commits that are now rolled back.)
  auto fail_group = [&](const absl::Status& status) {
    if (w.InTransaction()) (void)StepDone(w.rollback.get(), "rollback");
    for (PendingCommit* pending : batch) pending->result = status;
  };

  if (absl::Status status = StepDone(w.begin.get(), "begin transaction"); !status.ok()) {
    return fail_group(status);
  }
  absl::StatusOr<int64_t> stored = StepInt(w.read_revision.get(), "read revision");
  if (!stored.ok()) return fail_group(stored.status());
  auto revision = static_cast<uint64_t>(*stored);

  uint64_t applied = 0;
  for (PendingCommit* pending : batch) {
    absl::Status status = w.Apply(pending->ops, revision + 1);
    if (status.ok()) {
      ++revision;
      ++applied;
      pending->result = revision;
      continue;
    }
    // SQLite rolls the whole transaction back by itself after some errors (e.g. a full disk).
    if (!w.InTransaction()) return fail_group(status);
    absl::Status undo = StepDone(w.rollback_to.get(), "rollback to savepoint");
    if (undo.ok()) undo = StepDone(w.release.get(), "release savepoint");
    if (!undo.ok()) return fail_group(undo);
    pending->result = status;  // only this commit fails
  }

  if (applied == 0) {
    (void)StepDone(w.rollback.get(), "rollback");
    return;
  }
  if (absl::Status status = StepDone(w.commit.get(), "commit"); !status.ok()) {
    return fail_group(status);
  }
  revision_.store(revision, std::memory_order_release);
  commits_committed_.fetch_add(applied, std::memory_order_relaxed);
  transactions_committed_.fetch_add(1, std::memory_order_relaxed);
}

absl::StatusOr<uint64_t> SqliteBackend::Commit(std::vector<Op> ops) {
  WARD_RETURN_IF_ERROR(internal::ValidateOps(ops));
  Change change;
  change.keys = internal::ChangedKeys(ops);
  PendingCommit pending;
  pending.ops = std::move(ops);
  {
    absl::MutexLock lock(&queue_mu_);
    if (closing_) return absl::UnavailableError("storage: storage is closing");
    queue_.push_back(&pending);
    queue_mu_.Await(absl::Condition(&pending.done));
  }
  if (!pending.result.ok()) return pending.result.status();
  change.revision = *pending.result;
  listeners_.Notify(change);
  return change.revision;
}

bool SqliteBackend::ReaderAvailable() const { return !idle_readers_.empty(); }

std::unique_ptr<SqliteBackend::ReaderConnection> SqliteBackend::AcquireReader() {
  absl::MutexLock lock(&pool_mu_);
  pool_mu_.Await(absl::Condition(this, &SqliteBackend::ReaderAvailable));
  std::unique_ptr<ReaderConnection> reader = std::move(idle_readers_.back());
  idle_readers_.pop_back();
  return reader;
}

void SqliteBackend::ReleaseReader(std::unique_ptr<ReaderConnection> reader) {
  absl::MutexLock lock(&pool_mu_);
  idle_readers_.push_back(std::move(reader));
}

absl::StatusOr<Record> SqliteBackend::Get(std::string_view key) {
  std::unique_ptr<ReaderConnection> reader = AcquireReader();
  absl::StatusOr<Record> result = reader->Get(key);
  ReleaseReader(std::move(reader));
  return result;
}

absl::StatusOr<ListPage> SqliteBackend::List(std::string_view prefix, std::string_view after,
                                             size_t limit) {
  std::unique_ptr<ReaderConnection> reader = AcquireReader();
  absl::StatusOr<ListPage> result = reader->List(prefix, after, limit);
  ReleaseReader(std::move(reader));
  return result;
}

absl::StatusOr<ScanPage> SqliteBackend::Scan(std::string_view prefix, std::string_view after,
                                             size_t limit) {
  std::unique_ptr<ReaderConnection> reader = AcquireReader();
  absl::StatusOr<ScanPage> result = reader->Scan(prefix, after, limit);
  ReleaseReader(std::move(reader));
  return result;
}

uint64_t SqliteBackend::AddListener(std::function<void(const Change&)> listener) {
  return listeners_.Add(std::move(listener));
}

void SqliteBackend::RemoveListener(uint64_t id) { listeners_.Remove(id); }

}  // namespace ward::storage
