#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "spdlog/spdlog.h"

// Logging for Ward: spdlog with one logfmt-style line per event, e.g.
//   2026-11-22T10:07:28.123Z info request request_id=... method=GET route=kv status=200 ms=0.41
// Never pass secret values, tokens or key material to a log call; log paths, ids and codes.

namespace ward::core {

// Configures the default logger: `level` is one of trace, debug, info, warn, error, off.
// Errors: kInvalidArgument for an unknown level.
absl::Status InitLogging(std::string_view level);

// Whether `level` names a log level InitLogging accepts.
bool IsValidLogLevel(std::string_view level);

}  // namespace ward::core
