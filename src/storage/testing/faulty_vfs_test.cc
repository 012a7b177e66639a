// FaultyVfs on its own, with raw SQLite connections: pass-through, each fault, the `after`
// countdown and the file-role filter.

#include "storage/testing/faulty_vfs.h"

#include <sqlite3.h>

#include <memory>
#include <string>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace ward::storage::testing {
namespace {

class FaultyVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FaultyVfs>> vfs = FaultyVfs::Register("faulty-vfs-test");
    ASSERT_TRUE(vfs.ok()) << vfs.status();
    vfs_ = *std::move(vfs);
    ASSERT_EQ(sqlite3_open_v2(dir_.Join("t.db").c_str(), &db_,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs_->name().c_str()),
              SQLITE_OK);
    sqlite3_extended_result_codes(db_, 1);
    ASSERT_EQ(Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                   "PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (k INTEGER PRIMARY KEY, v)"),
              SQLITE_OK);
  }
  void TearDown() override {
    if (vfs_ != nullptr) vfs_->Clear();
    sqlite3_close(db_);  // before the VFS is unregistered
  }

  int Exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  int Insert(int k) {
    return Exec("INSERT INTO t VALUES (" + std::to_string(k) + ", randomblob(100))");
  }
  int64_t Count() {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, "SELECT count(*) FROM t", -1, &stmt, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
  }

  core::TempDir dir_;
  std::unique_ptr<FaultyVfs> vfs_;
  sqlite3* db_ = nullptr;
};

TEST_F(FaultyVfsTest, WithoutAFaultEveryCallGoesThrough) {
  uint64_t writes = vfs_->writes(), syncs = vfs_->syncs();
  ASSERT_EQ(Insert(1), SQLITE_OK);
  EXPECT_EQ(Count(), 1);
  EXPECT_GT(vfs_->writes(), writes);
  EXPECT_GT(vfs_->syncs(), syncs);  // synchronous=FULL syncs the WAL on commit
  EXPECT_EQ(vfs_->injected(), 0u);
}

TEST_F(FaultyVfsTest, EachFaultFailsTheCommitWithItsCodeUntilCleared) {
  struct Case {
    Fault fault;
    int code;
  };
  int k = 0;
  for (Case c : {Case{Fault::kDiskFull, SQLITE_FULL}, Case{Fault::kWriteError, SQLITE_IOERR_WRITE},
                 Case{Fault::kSyncError, SQLITE_IOERR_FSYNC}}) {
    SCOPED_TRACE(c.code);
    vfs_->Inject(c.fault);
    EXPECT_EQ(Insert(++k), c.code);
    EXPECT_EQ(sqlite3_get_autocommit(db_), 1);  // SQLite rolled the transaction back
    EXPECT_EQ(Count(), k - 1);                  // reads work during the fault
    vfs_->Clear();
    EXPECT_EQ(Insert(k), SQLITE_OK);
    EXPECT_EQ(Count(), k);
  }
  EXPECT_EQ(vfs_->injected(), 3u);
}

TEST_F(FaultyVfsTest, AfterLetsThatManyCallsThroughFirst) {
  const uint64_t writes = vfs_->writes();
  vfs_->Inject(Fault::kWriteError, /*after=*/3);
  int rc = SQLITE_OK;
  int k = 0;
  while (rc == SQLITE_OK && k < 100) rc = Insert(++k);
  EXPECT_EQ(rc, SQLITE_IOERR_WRITE);
  EXPECT_EQ(vfs_->writes() - writes, 3u);
  EXPECT_EQ(vfs_->injected(), 1u);
}

TEST_F(FaultyVfsTest, TargetLimitsTheFaultToOneFileRole) {
  // Commits write only the WAL; a checkpoint writes the database file.
  vfs_->Inject(Fault::kDiskFull, 0, FaultTarget::kMainDatabase);
  ASSERT_EQ(Insert(1), SQLITE_OK);
  EXPECT_EQ(sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_FULL, nullptr, nullptr),
            SQLITE_FULL);
  vfs_->Inject(Fault::kSyncError, 0, FaultTarget::kWal);
  EXPECT_EQ(Insert(2), SQLITE_IOERR_FSYNC);
  vfs_->Clear();
  EXPECT_EQ(sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_FULL, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_EQ(Count(), 1);
}

TEST_F(FaultyVfsTest, RegisterRejectsDuplicateAndEmptyNames) {
  EXPECT_EQ(FaultyVfs::Register("faulty-vfs-test").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(FaultyVfs::Register("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sqlite3_vfs_find(nullptr), sqlite3_vfs_find("unix"));  // default unchanged
}

}  // namespace
}  // namespace ward::storage::testing
