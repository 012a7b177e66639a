#pragma once

// Propagation helpers for absl::Status / absl::StatusOr.
//
//   WARD_RETURN_IF_ERROR(expr);           // returns the status of `expr` if it is not OK
//   WARD_ASSIGN_OR_RETURN(auto x, expr);  // binds the value of a StatusOr or returns its status

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define WARD_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    ::absl::Status ward_status_ = (expr);          \
    if (!ward_status_.ok()) return ward_status_;   \
  } while (false)

#define WARD_STATUS_CONCAT_INNER_(a, b) a##b
#define WARD_STATUS_CONCAT_(a, b) WARD_STATUS_CONCAT_INNER_(a, b)

#define WARD_ASSIGN_OR_RETURN(lhs, expr) \
  WARD_ASSIGN_OR_RETURN_IMPL_(WARD_STATUS_CONCAT_(ward_statusor_, __LINE__), lhs, expr)

#define WARD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
