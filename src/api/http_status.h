#pragma once

#include "absl/status/status.h"

namespace ward::api {

// The one place where Ward maps a status code to an HTTP status, following Vault:
//   kInvalidArgument, kFailedPrecondition, kAlreadyExists, kOutOfRange -> 400
//   kPermissionDenied, kUnauthenticated -> 403      kNotFound -> 404
//   kUnimplemented -> 405                           kResourceExhausted -> 429
//   kUnavailable -> 503 (sealed, storage down)      kDeadlineExceeded -> 504
//   kAborted -> 503 (a write lost a race too often; retrying is safe)
//   everything else (kInternal, kDataLoss, kUnknown, kCancelled) -> 500
int HttpStatusFor(const absl::Status& status);

}  // namespace ward::api
