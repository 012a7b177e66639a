#include "core/time_format.h"

#include "gtest/gtest.h"

namespace ward::core {
namespace {

TEST(TimeFormatTest, Rfc3339HasNanosecondsAndZ) {
  absl::Time t = absl::FromUnixNanos(1521685446945319214);
  EXPECT_EQ(FormatRfc3339Nanos(t), "2018-03-22T02:24:06.945319214Z");
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
