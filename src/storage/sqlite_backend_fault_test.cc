// SqliteBackend under injected I/O faults (storage::testing::FaultyVfs): a commit that hits a
// full disk, a write error or a failed fsync writes nothing and fails with kUnavailable, reads
// keep working, and once the fault clears the same backend commits again with the next
// revision. docs/storage.md, "Failure behaviour".

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "storage/sqlite_backend.h"
#include "storage/testing/faulty_vfs.h"

namespace ward::storage {
namespace {

using testing::Fault;
using testing::FaultTarget;
using testing::FaultyVfs;

class SqliteBackendFaultTest : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FaultyVfs>> vfs = FaultyVfs::Register("backend-fault-test");
    ASSERT_TRUE(vfs.ok()) << vfs.status();
    vfs_ = *std::move(vfs);
  }

  std::unique_ptr<SqliteBackend> Open(bool faulty = true) {
    SqliteOptions options;
    options.path = path_;
    if (faulty) options.vfs = vfs_->name();
    absl::StatusOr<std::unique_ptr<SqliteBackend>> backend = SqliteBackend::Create(options);
    EXPECT_TRUE(backend.ok()) << backend.status();
    return backend.ok() ? *std::move(backend) : nullptr;
  }

  static std::string Value(Backend& backend, const std::string& key) {
    absl::StatusOr<Record> record = backend.Get(key);
    return record.ok() ? record->value : std::string(record.status().message());
  }

  core::TempDir dir_;
  std::string path_ = dir_.Join("ward.db");
  std::unique_ptr<FaultyVfs> vfs_;  // declared before backends: unregistered after they close
};

TEST_P(SqliteBackendFaultTest, FailedCommitWritesNothingAndTheBackendRecovers) {
  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);
  ASSERT_EQ(backend->Put("a", "1").value_or(0), 1u);
  ASSERT_EQ(backend->Put("b", "1").value_or(0), 2u);

  vfs_->Inject(GetParam());
  for (int attempt = 0; attempt < 2; ++attempt) {  // the fault persists: so does the error
    std::vector<Op> ops;
    ops.push_back(Op::Put("a", "2"));
    ops.push_back(Op::Delete("b"));
    ops.push_back(Op::Put("c", "2"));
    absl::StatusOr<uint64_t> failed = backend->Commit(std::move(ops));
    EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  }
  EXPECT_GE(vfs_->injected(), 2u);
  // Nothing of the failed commits is visible, and reads work during the fault.
  EXPECT_EQ(backend->revision(), 2u);
  EXPECT_EQ(Value(*backend, "a"), "1");
  EXPECT_EQ(Value(*backend, "b"), "1");
  EXPECT_EQ(backend->Get("c").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<ListPage> page = backend->List("", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->keys, (std::vector<std::string>{"a", "b"}));

  vfs_->Clear();
  // The same backend (same writer connection) commits again; revisions continue without a gap.
  absl::StatusOr<uint64_t> revision = backend->Put("a", "3");
  ASSERT_TRUE(revision.ok()) << revision.status();
  EXPECT_EQ(*revision, 3u);
  EXPECT_EQ(Value(*backend, "a"), "3");
  EXPECT_EQ(backend->commits_committed(), 3u);

  backend.reset();
  backend = Open(/*faulty=*/false);
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->revision(), 3u);
  EXPECT_EQ(Value(*backend, "a"), "3");
  EXPECT_EQ(Value(*backend, "b"), "1");
  EXPECT_EQ(backend->Get("c").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(SqliteBackendFaultTest, EveryCommitOfAFailedGroupFails) {
  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->Put("seed", "x").ok());
  vfs_->Inject(GetParam());
  constexpr int kThreads = 8;
  std::vector<absl::StatusCode> codes(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back(
        [&, i] { codes[i] = backend->Put("k" + std::to_string(i), "v").status().code(); });
  }
  for (std::thread& t : threads) t.join();
  for (absl::StatusCode code : codes) EXPECT_EQ(code, absl::StatusCode::kUnavailable);
  EXPECT_EQ(backend->revision(), 1u);
  absl::StatusOr<ListPage> page = backend->List("k", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->keys.empty());
  vfs_->Clear();
  EXPECT_EQ(backend->Put("k0", "v").value_or(0), 2u);
}

TEST_P(SqliteBackendFaultTest, FaultAfterSomeCallsFailsOnlyTheCommitsThatHitIt) {
  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);
  // Let a few calls through, then fail: the commits before the fault are kept.
  vfs_->Inject(GetParam(), /*after=*/2, FaultTarget::kWal);
  uint64_t acknowledged = 0;
  absl::Status status;
  for (int i = 0; i < 50 && status.ok(); ++i) {
    absl::StatusOr<uint64_t> revision = backend->Put("k" + std::to_string(i), "v");
    status = revision.status();
    if (revision.ok()) acknowledged = *revision;
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(backend->revision(), acknowledged);
  vfs_->Clear();
  backend.reset();
  backend = Open(/*faulty=*/false);
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->revision(), acknowledged);
  absl::StatusOr<ListPage> page = backend->List("k", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->keys.size(), acknowledged);
}

TEST_P(SqliteBackendFaultTest, FailingCheckpointsDoNotFailCommits) {
  std::unique_ptr<SqliteBackend> backend = Open();
  ASSERT_NE(backend, nullptr);
  // Only the database file fails; commits append to the WAL, and the automatic checkpoint
  // (after ~1000 WAL pages) that copies them into the database file fails silently.
  vfs_->Inject(GetParam(), 0, FaultTarget::kMainDatabase);
  const std::string big(64 * 1024, 'x');
  for (int i = 0; i < 80; ++i) {
    absl::StatusOr<uint64_t> revision = backend->Put("k" + std::to_string(i), big);
    ASSERT_TRUE(revision.ok()) << i << ": " << revision.status();
  }
  EXPECT_GT(vfs_->injected(), 0u);  // a checkpoint did try, and failed
  vfs_->Clear();
  backend.reset();
  backend = Open(/*faulty=*/false);
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->revision(), 80u);
  EXPECT_EQ(Value(*backend, "k79"), big);
}

TEST(SqliteBackendVfsTest, UnregisteredVfsIsInvalidArgument) {
  core::TempDir dir;
  SqliteOptions options;
  options.path = dir.Join("ward.db");
  options.vfs = "no-such-vfs";
  EXPECT_EQ(SqliteBackend::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

// Runs `body` in a child process, which then SIGKILLs itself (no destructor, no clean close:
// as a crash). Returns false if the child did not die of that SIGKILL.
bool RunAndKill(const std::function<bool()>& body) {
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    if (!body()) ::_exit(3);
    ::kill(::getpid(), SIGKILL);
    ::_exit(4);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return false;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// After a failed fsync SQLite has already written the commit's WAL frames (the page cache
// holds them); it only leaves them out of the WAL index, and the next commit overwrites them.
// So once a later commit is acknowledged, the failed one can never come back...
TEST(SqliteBackendFsyncTest, FailedCommitIsGoneOnceALaterCommitSucceeded) {
  core::TempDir dir;
  absl::StatusOr<std::unique_ptr<FaultyVfs>> vfs = FaultyVfs::Register("fsync-later-test");
  ASSERT_TRUE(vfs.ok()) << vfs.status();
  SqliteOptions options;
  options.path = dir.Join("ward.db");
  options.vfs = (*vfs)->name();
  ASSERT_TRUE(RunAndKill([&] {
    auto backend = SqliteBackend::Create(options);
    if (!backend.ok() || (*backend)->Put("a", "1").value_or(0) != 1) return false;
    (*vfs)->Inject(Fault::kSyncError);
    if (!absl::IsUnavailable((*backend)->Put("failed", std::string(10000, 'f')).status())) {
      return false;
    }
    (*vfs)->Clear();
    return (*backend)->Put("c", "3").value_or(0) == 2;
  }));
  options.vfs.clear();
  absl::StatusOr<std::unique_ptr<SqliteBackend>> backend = SqliteBackend::Create(options);
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->revision(), 2u);
  EXPECT_EQ((*backend)->Get("failed").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<Record> c = (*backend)->Get("c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->revision, 2u);
}

// ...but if the process dies before any later commit, WAL recovery at the next open may find
// the failed commit's frames complete and replay it: a commit reported as failed may reappear
// (the same unknown outcome as a crash before the reply). Either way the store is consistent:
// the commit is there whole, with its revision, or not at all.
TEST(SqliteBackendFsyncTest, FailedCommitThenCrashLeavesAConsistentStore) {
  core::TempDir dir;
  absl::StatusOr<std::unique_ptr<FaultyVfs>> vfs = FaultyVfs::Register("fsync-crash-test");
  ASSERT_TRUE(vfs.ok()) << vfs.status();
  SqliteOptions options;
  options.path = dir.Join("ward.db");
  options.vfs = (*vfs)->name();
  ASSERT_TRUE(RunAndKill([&] {
    auto backend = SqliteBackend::Create(options);
    if (!backend.ok() || (*backend)->Put("a", "1").value_or(0) != 1) return false;
    (*vfs)->Inject(Fault::kSyncError);
    std::vector<Op> ops;
    ops.push_back(Op::Put("a", "2"));
    ops.push_back(Op::Put("b", "2"));
    return absl::IsUnavailable((*backend)->Commit(std::move(ops)).status());
  }));
  options.vfs.clear();
  absl::StatusOr<std::unique_ptr<SqliteBackend>> backend = SqliteBackend::Create(options);
  ASSERT_TRUE(backend.ok()) << backend.status();
  absl::StatusOr<Record> a = (*backend)->Get("a");
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Record> b = (*backend)->Get("b");
  if ((*backend)->revision() == 2) {
    std::cout << "the commit whose fsync failed reappeared after the crash\n";
    EXPECT_EQ(a->value, "2");
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->revision, 2u);
  } else {
    EXPECT_EQ((*backend)->revision(), 1u);
    EXPECT_EQ(a->value, "1");
    EXPECT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  }
}

INSTANTIATE_TEST_SUITE_P(Faults, SqliteBackendFaultTest,
                         ::testing::Values(Fault::kDiskFull, Fault::kWriteError, Fault::kSyncError),
                         [](const ::testing::TestParamInfo<Fault>& info) {
                           switch (info.param) {
                             case Fault::kDiskFull:
                               return "DiskFull";
                             case Fault::kWriteError:
                               return "WriteError";
                             case Fault::kSyncError:
                               return "SyncError";
                             case Fault::kNone:
                               break;
                           }
                           return "None";
                         });

}  // namespace
}  // namespace ward::storage
