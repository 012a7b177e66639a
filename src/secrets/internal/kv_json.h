#pragma once

// JSON helpers of the KV engine (private to src/secrets): parsing with Ward's limits, the
// canonical serialization stored for every version, RFC 7386 merge patch, and the subkeys
// projection. Only the module's .cc files include this header (it pulls in Boost.JSON).

#include <boost/json.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ward::secrets::internal {

// Deepest nesting accepted in secret data (the default of Vault's request JSON depth limit).
inline constexpr size_t kMaxJsonDepth = 300;

// Parses `text` as one JSON value (strict RFC 8259, UTF-8, nesting at most kMaxJsonDepth).
// Errors: kInvalidArgument naming `what` if `text` is not valid JSON.
absl::StatusOr<boost::json::value> ParseJson(std::string_view text, std::string_view what);

// Serializes `value` compactly with object keys sorted bytewise (as Go's encoding/json does
// for maps, so output matches what Vault returns), integers exact, and doubles in the
// shortest form that round-trips, formatted as Go formats float64 ("1.5", "1e+21", "1e-7").
// Errors: kInvalidArgument for a non-finite number.
absl::StatusOr<std::string> SerializeCanonical(const boost::json::value& value);

// Applies `patch` to `target` as RFC 7386 JSON Merge Patch: a null member removes the key,
// object members merge recursively, anything else replaces.
void ApplyMergePatch(boost::json::value& target, const boost::json::value& patch);

// Returns `data` with every value replaced by null, except that a non-empty object whose
// members sit at depth <= `max_depth` (top-level members are at depth 1) is kept and
// projected recursively. `max_depth` 0 means unlimited; a negative value behaves like 1,
// as Vault's does.
boost::json::object SubkeysOf(const boost::json::object& data, int max_depth);

}  // namespace ward::secrets::internal
