#include "core/time_format.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "core/strings.h"

namespace ward::core {

std::string FormatRfc3339Nanos(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Duration> ParseVaultDuration(std::string_view text, std::string_view field) {
  if (text.empty()) return absl::ZeroDuration();
  if (auto seconds = ParseInt64(text)) {
    if (*seconds < 0) {
      return absl::InvalidArgumentError(absl::StrCat(ToAbsl(field), ": duration must not be negative"));
    }
    return absl::Seconds(*seconds);
  }
  absl::Duration d;
  // absl accepts a bare "0" and unit strings like Go's time.ParseDuration (plus "d" is not Go).
  if (!absl::ParseDuration(ToAbsl(text), &d) || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(field), ": invalid duration \"", ToAbsl(text), "\""));
  }
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(field), ": duration must not be negative"));
  }
  return d;
}

std::string FormatGoDuration(absl::Duration d) {
  if (d == absl::ZeroDuration()) return "0s";
  return absl::FormatDuration(d);
}

}  // namespace ward::core
