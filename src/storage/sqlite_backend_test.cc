// SQLite-specific behaviour: persistence, file mode, schema versioning, lock failures,
// group commit and crash durability. Shared semantics are in storage_test.cc.

#include "storage/sqlite_backend.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/barrier.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ward::storage {
namespace {

using ::testing::HasSubstr;

class SqliteBackendTest : public ::testing::Test {
 protected:
  SqliteOptions Options() {
    SqliteOptions options;
    options.path = path_;
    return options;
  }

  std::unique_ptr<SqliteBackend> Open(SqliteOptions options) {
    absl::StatusOr<std::unique_ptr<SqliteBackend>> backend =
        SqliteBackend::Create(std::move(options));
    EXPECT_TRUE(backend.ok()) << backend.status();
    return backend.ok() ? *std::move(backend) : nullptr;
  }
  std::unique_ptr<SqliteBackend> Open() { return Open(Options()); }

  // Runs `sql` on a separate raw connection to the same file.
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  core::TempDir dir_;
  std::string path_ = dir_.Join("ward.db");
};

TEST_F(SqliteBackendTest, DataAndRevisionSurviveCloseAndReopen) {
  uint64_t last = 0;
  {
    std::unique_ptr<SqliteBackend> backend = Open();
    ASSERT_NE(backend, nullptr);
    ASSERT_TRUE(backend->Put("a", std::string("v\0a", 3)).ok());
    absl::StatusOr<uint64_t> revision = backend->Put("b", "vb");
    ASSERT_TRUE(revision.ok()) << revision.status();
    ASSERT_TRUE(backend->Put("gone", "x").ok());
    absl::StatusOr<uint64_t> deleted = backend->Delete("gone");
    ASSERT_TRUE(deleted.ok()) << deleted.status();
    last = *deleted;
    EXPECT_EQ(backend->revision(), last);
  }
  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->revision(), last);
  absl::StatusOr<Record> a = backend->Get("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->value, std::string("v\0a", 3));
  EXPECT_EQ(backend->Get("b")->value, "vb");
  EXPECT_EQ(backend->Get("gone").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<uint64_t> next = backend->Put("c", "vc");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, last + 1);
}

TEST_F(SqliteBackendTest, DatabaseFilesAreOwnerOnlyWhateverTheUmask) {
  mode_t old_umask = ::umask(0);
  std::unique_ptr<SqliteBackend> backend = Open();
  ::umask(old_umask);
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->Put("k", "v").ok());
  for (const std::string& file : {path_, path_ + "-wal", path_ + "-shm"}) {
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
  }
}

TEST_F(SqliteBackendTest, ExistingFileWithWideModeIsTightened) {
  Open().reset();
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SqliteBackendTest, InvalidOptionsAreRejected) {
  SqliteOptions empty_path;
  EXPECT_EQ(SqliteBackend::Create(empty_path).status().code(), absl::StatusCode::kInvalidArgument);
  SqliteOptions no_readers = Options();
  no_readers.read_connections = 0;
  EXPECT_EQ(SqliteBackend::Create(no_readers).status().code(), absl::StatusCode::kInvalidArgument);
  SqliteOptions no_batch = Options();
  no_batch.max_commits_per_transaction = 0;
  EXPECT_EQ(SqliteBackend::Create(no_batch).status().code(), absl::StatusCode::kInvalidArgument);
  SqliteOptions negative_timeout = Options();
  negative_timeout.busy_timeout = absl::Seconds(-1);
  EXPECT_EQ(SqliteBackend::Create(negative_timeout).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteBackendTest, MissingDirectoryIsUnavailable) {
  SqliteOptions options;
  options.path = dir_.Join("no/such/dir/ward.db");
  absl::StatusOr<std::unique_ptr<SqliteBackend>> backend = SqliteBackend::Create(options);
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(backend.status().message(), HasSubstr("no/such/dir"));
}

TEST_F(SqliteBackendTest, FileThatIsNotADatabaseIsInternal) {
  {
    std::ofstream out(path_, std::ios::binary);
    out << std::string(4096, 'x');
  }
  EXPECT_EQ(SqliteBackend::Create(Options()).status().code(), absl::StatusCode::kInternal);
}

TEST_F(SqliteBackendTest, NewerSchemaVersionIsFailedPrecondition) {
  Open().reset();
  RawExec("UPDATE ward_state SET schema_version = 99 WHERE id = 1");
  absl::StatusOr<std::unique_ptr<SqliteBackend>> backend = SqliteBackend::Create(Options());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(backend.status().message(), HasSubstr("99"));
}

TEST_F(SqliteBackendTest, CommitBlockedByAnotherWriterIsUnavailableThenRecovers) {
  SqliteOptions options = Options();
  options.busy_timeout = absl::Milliseconds(20);
  std::unique_ptr<SqliteBackend> backend = Open(options);
  ASSERT_NE(backend, nullptr);
  absl::StatusOr<uint64_t> first = backend->Put("k", "v1");
  ASSERT_TRUE(first.ok()) << first.status();

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  absl::StatusOr<uint64_t> blocked = backend->Put("k", "v2");
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(blocked.status().message(), HasSubstr("locked"));
  // Readers are not blocked by the writer lock (WAL).
  absl::StatusOr<Record> record = backend->Get("k");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->value, "v1");

  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  absl::StatusOr<uint64_t> second = backend->Put("k", "v3");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, *first + 1);
  EXPECT_EQ(backend->Get("k")->value, "v3");
}

TEST_F(SqliteBackendTest, ListenerRunsAfterTheCommitIsVisibleToOtherConnections) {
  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);
  std::string seen_by_other_connection;
  backend->AddListener([&](const Change&) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      sqlite3_prepare_v2(db, "SELECT value FROM ward_kv WHERE key = x'6b'", -1, &stmt, nullptr);
      if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
        seen_by_other_connection.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
                                        sqlite3_column_bytes(stmt, 0));
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
  });
  ASSERT_TRUE(backend->Put("k", "v").ok());
  EXPECT_EQ(seen_by_other_connection, "v");
}

TEST_F(SqliteBackendTest, ConcurrentWritersShareTransactions) {
  constexpr int kWriters = 32;
  constexpr int kMaxRounds = 50;
  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);

  absl::Mutex mu;
  std::set<uint64_t> revisions;
  int failures = 0;
  int commits = 0;
  bool batched = false;
  int round = 0;
  for (; round < kMaxRounds && !batched; ++round) {
    uint64_t commits_before = backend->commits_committed();
    uint64_t transactions_before = backend->transactions_committed();
    absl::Barrier* start = new absl::Barrier(kWriters);  // deleted by the last thread through
    std::vector<std::thread> threads;
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t, start] {
        if (start->Block()) delete start;
        absl::StatusOr<uint64_t> revision =
            backend->Put("w/" + std::to_string(round) + "/" + std::to_string(t), std::to_string(t));
        absl::MutexLock lock(&mu);
        ++commits;
        if (!revision.ok()) {
          ++failures;
          return;
        }
        revisions.insert(*revision);
      });
    }
    for (std::thread& thread : threads) thread.join();
    uint64_t commit_delta = backend->commits_committed() - commits_before;
    uint64_t transaction_delta = backend->transactions_committed() - transactions_before;
    EXPECT_EQ(commit_delta, uint64_t{kWriters});
    batched = transaction_delta < commit_delta;
  }
  RecordProperty("rounds_until_batched", round);
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(batched) << "no round of " << kWriters << " concurrent commits shared a transaction";
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(revisions.size(), static_cast<size_t>(commits));
  EXPECT_EQ(*revisions.rbegin(), backend->revision());
  absl::StatusOr<ListPage> page = backend->List("w/", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->keys.size(), static_cast<size_t>(commits));
}

TEST_F(SqliteBackendTest, GroupWithAFailedCheckCommitsTheOthers) {
  // Many writers race on one key with create-if-absent: exactly one wins, the rest get
  // kAborted, and the unrelated puts riding in the same groups all land.
  constexpr int kWriters = 16;
  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);
  std::atomic<int> won{0};
  std::atomic<int> aborted{0};
  std::atomic<int> other{0};
  absl::Barrier* start = new absl::Barrier(kWriters);
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t, start] {
      if (start->Block()) delete start;
      std::vector<Op> ops;
      ops.push_back(Op::Check("lock", 0));
      ops.push_back(Op::Put("lock", std::to_string(t)));
      absl::StatusOr<uint64_t> result = backend->Commit(std::move(ops));
      if (result.ok()) {
        ++won;
      } else if (result.status().code() == absl::StatusCode::kAborted) {
        ++aborted;
      } else {
        ++other;
      }
      if (!backend->Put("side/" + std::to_string(t), "v").ok()) ++other;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(aborted.load(), kWriters - 1);
  EXPECT_EQ(other.load(), 0);
  absl::StatusOr<ListPage> page = backend->List("side/", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->keys.size(), size_t{kWriters});
  EXPECT_EQ(backend->revision(), uint64_t{kWriters + 1});
}

// What a crashing child reports over a pipe after each acknowledged commit.
struct Ack {
  int32_t writer;
  int32_t index;
  uint64_t revision;
};

TEST_F(SqliteBackendTest, AcknowledgedCommitsSurviveKillDashNine) {
  constexpr int kWriters = 4;
  constexpr int kAcksBeforeKill = 200;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: commit from several threads; SIGKILL itself right after the 200th ack, while
    // other commits are in flight. No destructor, no clean close.
    ::close(fds[0]);
    absl::StatusOr<std::unique_ptr<SqliteBackend>> backend = SqliteBackend::Create(Options());
    if (!backend.ok()) ::_exit(2);
    std::atomic<int> acks{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        for (int i = 0;; ++i) {
          absl::StatusOr<uint64_t> revision = (*backend)->Put(
              "crash/" + std::to_string(w) + "/" + std::to_string(i), std::to_string(i));
          if (!revision.ok()) ::_exit(3);
          Ack ack{w, i, *revision};
          if (::write(fds[1], &ack, sizeof(ack)) != sizeof(ack)) ::_exit(4);
          if (++acks == kAcksBeforeKill) ::kill(::getpid(), SIGKILL);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    ::_exit(5);
  }

  ::close(fds[1]);
  std::vector<Ack> acks;
  Ack ack{};
  while (::read(fds[0], &ack, sizeof(ack)) == sizeof(ack)) acks.push_back(ack);
  ::close(fds[0]);
  int wait_status = 0;
  ASSERT_EQ(::waitpid(pid, &wait_status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wait_status)) << "child exited with " << WEXITSTATUS(wait_status);
  EXPECT_EQ(WTERMSIG(wait_status), SIGKILL);
  ASSERT_GE(acks.size(), size_t{kAcksBeforeKill});

  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);
  uint64_t max_revision = 0;
  for (const Ack& a : acks) {
    std::string key = "crash/" + std::to_string(a.writer) + "/" + std::to_string(a.index);
    absl::StatusOr<Record> record = backend->Get(key);
    ASSERT_TRUE(record.ok()) << key << ": " << record.status();
    EXPECT_EQ(record->value, std::to_string(a.index));
    EXPECT_EQ(record->revision, a.revision);
    max_revision = std::max(max_revision, a.revision);
  }
  EXPECT_GE(backend->revision(), max_revision);
}

}  // namespace
}  // namespace ward::storage
