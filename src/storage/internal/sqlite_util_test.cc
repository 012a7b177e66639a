#include "storage/internal/sqlite_util.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ward::storage::internal {
namespace {

using ::testing::HasSubstr;

TEST(SqliteStatusTest, TransientAndEnvironmentFailuresAreUnavailable) {
  for (int rc : {SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR, SQLITE_IOERR_FSYNC,
                 SQLITE_IOERR_WRITE, SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_BUSY_SNAPSHOT}) {
    EXPECT_EQ(SqliteStatus(nullptr, rc, "x").code(), absl::StatusCode::kUnavailable) << rc;
  }
}

TEST(SqliteStatusTest, CorruptionAndMisuseAreInternal) {
  for (int rc : {SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_MISUSE, SQLITE_ERROR}) {
    EXPECT_EQ(SqliteStatus(nullptr, rc, "x").code(), absl::StatusCode::kInternal) << rc;
  }
}

TEST(SqliteStatusTest, TooBigIsInvalidArgument) {
  EXPECT_EQ(SqliteStatus(nullptr, SQLITE_TOOBIG, "x").code(), absl::StatusCode::kInvalidArgument);
}

TEST(SqliteStatusTest, MessageNamesOperationAndCause) {
  absl::Status status = SqliteStatus(nullptr, SQLITE_BUSY, "commit");
  EXPECT_THAT(status.message(), HasSubstr("commit"));
  EXPECT_THAT(status.message(), HasSubstr("database is locked"));
}

TEST(BindBlobTest, EmptyBytesBindAnEmptyBlobNotNull) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &raw), SQLITE_OK);
  SqliteDb db(raw);
  absl::StatusOr<SqliteStmt> stmt = Prepare(db.get(), "SELECT typeof(?1), length(?1)");
  ASSERT_TRUE(stmt.ok()) << stmt.status();
  ASSERT_TRUE(BindBlob(stmt->get(), 1, std::string_view()).ok());
  ASSERT_EQ(sqlite3_step(stmt->get()), SQLITE_ROW);
  EXPECT_EQ(ColumnBytes(stmt->get(), 0), "blob");
  EXPECT_EQ(sqlite3_column_int(stmt->get(), 1), 0);
}

TEST(PrepareTest, SyntaxErrorIsInternal) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &raw), SQLITE_OK);
  SqliteDb db(raw);
  EXPECT_EQ(Prepare(db.get(), "SELEC 1").status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace ward::storage::internal
