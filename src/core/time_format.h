#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ward::core {

// RFC 3339 in UTC with nanoseconds, as Vault writes timestamps: "2018-03-22T02:24:06.945319214Z".
std::string FormatRfc3339Nanos(absl::Time t);

// Parses a Vault-style duration: an integer number of seconds ("3600") or a Go duration
// string ("1h", "3h25m19s", "1.5h"); "" and "0" parse as zero.
// Errors: kInvalidArgument naming `field` if the text is neither, or negative.
absl::StatusOr<absl::Duration> ParseVaultDuration(std::string_view text, std::string_view field);

// Formats a duration the way Vault prints one in JSON config ("3h25m19s", "0s").
std::string FormatGoDuration(absl::Duration d);

}  // namespace ward::core
