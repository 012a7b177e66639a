#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "storage/backend.h"

namespace ward::storage::internal {

// Checks what every backend requires of a commit's ops.
// Errors: kInvalidArgument if an op has an empty key or an unknown kind.
absl::Status ValidateOps(const std::vector<Op>& ops);

// The keys put or deleted by `ops`, ascending and without duplicates (checks excluded).
std::vector<std::string> ChangedKeys(const std::vector<Op>& ops);

// The smallest byte string greater than every string starting with `prefix`, or nullopt when
// there is none (prefix empty or all 0xff bytes). E.g. "a\xff" -> "b", "ab" -> "ac".
std::optional<std::string> PrefixUpperBound(std::string_view prefix);

}  // namespace ward::storage::internal
