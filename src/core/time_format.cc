#include "core/time_format.h"

#include <cctype>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/strings.h"

namespace ward::core {

namespace {

constexpr char kRfc3339Nanos[] = "%Y-%m-%dT%H:%M:%E9SZ";

// Writes `value` as exactly `width` decimal digits ending just before `end`.
void Digits(char* end, int64_t value, int width) {
  for (int i = 0; i < width; ++i) {
    *--end = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

std::string FormatRfc3339Nanos(absl::Time t) {
  // Every response and audit record carries timestamps: the fixed layout is written directly
  // (absl::FormatTime parses its format string each time). Years outside 1000-9999 and the
  // infinite times keep absl's spelling.
  const absl::TimeZone::CivilInfo civil = absl::UTCTimeZone().At(t);
  const absl::CivilSecond cs = civil.cs;
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast() || cs.year() < 1000 ||
      cs.year() > 9999) {
    return absl::FormatTime(kRfc3339Nanos, t, absl::UTCTimeZone());
  }
  std::string out = "0000-00-00T00:00:00.000000000Z";
  Digits(out.data() + 4, cs.year(), 4);
  Digits(out.data() + 7, cs.month(), 2);
  Digits(out.data() + 10, cs.day(), 2);
  Digits(out.data() + 13, cs.hour(), 2);
  Digits(out.data() + 16, cs.minute(), 2);
  Digits(out.data() + 19, cs.second(), 2);
  Digits(out.data() + 29, absl::ToInt64Nanoseconds(civil.subsecond), 9);
  return out;
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
