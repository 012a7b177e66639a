#include "storage/internal/sqlite_util.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/strings.h"

namespace ward::storage::internal {

absl::Status SqliteStatus(sqlite3* db, int rc, std::string_view what) {
  std::string message = absl::StrCat("storage: ", core::ToAbsl(what), ": ", sqlite3_errstr(rc));
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    const char* detail = sqlite3_errmsg(db);
    if (detail != nullptr && std::string_view(detail) != sqlite3_errstr(rc)) {
      absl::StrAppend(&message, " (", detail, ")");
    }
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(message);
    case SQLITE_TOOBIG:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<SqliteStmt> Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  SqliteStmt stmt(raw);
  if (rc != SQLITE_OK) return SqliteStatus(db, rc, "prepare statement");
  if (stmt == nullptr) return absl::InternalError("storage: prepare: empty statement");
  return stmt;
}

absl::Status Exec(sqlite3* db, const char* sql) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db, rc, "execute statement");
  return absl::OkStatus();
}

absl::Status BindBlob(sqlite3_stmt* stmt, int index, std::string_view bytes) {
  // A null data pointer would bind NULL, not an empty BLOB.
  const char* data = bytes.data() != nullptr ? bytes.data() : "";
  int rc = sqlite3_bind_blob64(stmt, index, data, bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) return SqliteStatus(sqlite3_db_handle(stmt), rc, "bind");
  return absl::OkStatus();
}

std::string ColumnBytes(sqlite3_stmt* stmt, int col) {
  const void* data = sqlite3_column_blob(stmt, col);
  int size = sqlite3_column_bytes(stmt, col);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

absl::Status StepDone(sqlite3_stmt* stmt, std::string_view what) {
  StmtResetter reset(stmt);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return absl::OkStatus();
  if (rc == SQLITE_ROW) {
    return absl::InternalError(absl::StrCat("storage: ", core::ToAbsl(what), ": unexpected row"));
  }
  return SqliteStatus(sqlite3_db_handle(stmt), rc, what);
}

}  // namespace ward::storage::internal
