#include "core/time_format.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace ward::core {
namespace {

TEST(TimeFormatTest, Rfc3339HasNanosecondsAndZ) {
  absl::Time t = absl::FromUnixNanos(1521685446945319214);
  EXPECT_EQ(FormatRfc3339Nanos(t), "2018-03-22T02:24:06.945319214Z");
}

TEST(TimeFormatTest, Rfc3339AgreesWithAbslFormatTimeEverywhere) {
  const auto absl_format = [](absl::Time t) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", t, absl::UTCTimeZone());
  };
  std::vector<absl::Time> times = {absl::UnixEpoch(), absl::InfiniteFuture(),
                                   absl::InfinitePast(), absl::FromUnixNanos(-1),
                                   absl::FromUnixSeconds(951782400),    // 2000-02-29
                                   absl::FromUnixSeconds(253402300799),  // 9999-12-31T23:59:59
                                   absl::FromUnixSeconds(253402300800),  // year 10000
                                   absl::FromUnixSeconds(-62167219200),  // 0000-01-01
                                   absl::FromUnixSeconds(-62167219201)};  // year -1
  // A spread of instants from 1901 to 2200 with every kind of nanosecond part.
  uint64_t x = 88172645463325252u;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int64_t seconds = static_cast<int64_t>(x % 9467280000u) - 2177452800;
    times.push_back(absl::FromUnixSeconds(seconds) + absl::Nanoseconds((x >> 20) % 1000000000));
  }
  for (absl::Time t : times) EXPECT_EQ(FormatRfc3339Nanos(t), absl_format(t)) << absl_format(t);
}

TEST(TimeFormatTest, ParsesSecondsAndGoDurations) {
  EXPECT_EQ(*ParseVaultDuration("3600", "ttl"), absl::Hours(1));
  EXPECT_EQ(*ParseVaultDuration("3h25m19s", "ttl"), absl::Hours(3) + absl::Minutes(25) +
                                                        absl::Seconds(19));
  EXPECT_EQ(*ParseVaultDuration("", "ttl"), absl::ZeroDuration());
}

TEST(TimeFormatTest, RejectsGarbageNamingTheField) {
  auto d = ParseVaultDuration("soon", "delete_version_after");
  ASSERT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("delete_version_after"), std::string::npos);
  EXPECT_EQ(ParseVaultDuration("-5", "ttl").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TimeFormatTest, FormatsGoDurations) {
  EXPECT_EQ(FormatGoDuration(absl::ZeroDuration()), "0s");
  EXPECT_EQ(FormatGoDuration(absl::Hours(3) + absl::Minutes(25) + absl::Seconds(19)), "3h25m19s");
}

}  // namespace
}  // namespace ward::core
