#pragma once

// Small RAII and error helpers over the SQLite C API. Private to the storage module.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ward::storage::internal {

struct SqliteDbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct SqliteStmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteDbCloser>;
using SqliteStmt = std::unique_ptr<sqlite3_stmt, SqliteStmtFinalizer>;

// Maps SQLite result code `rc` (not OK/ROW/DONE) to a Status whose message names `what` and
// SQLite's description. `db` may be null; when given, its last error message is included
// (SQLite messages never contain bound values). Mapping:
//   BUSY, LOCKED, FULL, IOERR, CANTOPEN, READONLY, PERM, NOMEM, PROTOCOL -> kUnavailable
//   TOOBIG                                                                  -> kInvalidArgument
//   anything else (CORRUPT, NOTADB, MISUSE, ...)                             -> kInternal
absl::Status SqliteStatus(sqlite3* db, int rc, std::string_view what);

// Prepares `sql` on `db` for repeated use.
// Errors: as SqliteStatus.
absl::StatusOr<SqliteStmt> Prepare(sqlite3* db, std::string_view sql);

// Runs `sql` (one or more statements, no results wanted) on `db`.
// Errors: as SqliteStatus.
absl::Status Exec(sqlite3* db, const char* sql);

// Binds `bytes` as a BLOB (never NULL, even when empty) to parameter `index` (1-based). SQLite
// copies the bytes. Errors: as SqliteStatus.
absl::Status BindBlob(sqlite3_stmt* stmt, int index, std::string_view bytes);

// Column `col` of the current row as bytes (empty for NULL or a zero-length BLOB).
std::string ColumnBytes(sqlite3_stmt* stmt, int col);

// Resets `stmt` and clears its bindings when it goes out of scope, so a read statement never
// keeps its snapshot (which would hold back WAL checkpoints) past its use.
class StmtResetter {
 public:
  explicit StmtResetter(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StmtResetter() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtResetter(const StmtResetter&) = delete;
  StmtResetter& operator=(const StmtResetter&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Steps `stmt` (bound by the caller) to completion, expecting no rows, then resets it.
// Errors: as SqliteStatus.
absl::Status StepDone(sqlite3_stmt* stmt, std::string_view what);

}  // namespace ward::storage::internal
