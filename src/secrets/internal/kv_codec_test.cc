#include "secrets/internal/kv_codec.h"

#include "gtest/gtest.h"

namespace ward::secrets::internal {
namespace {

TEST(KvCodecTest, ConfigRoundTrips) {
  KvConfig config;
  config.max_versions = 7;
  config.cas_required = true;
  config.delete_version_after = absl::Hours(3) + absl::Nanoseconds(5);
  absl::StatusOr<KvConfig> decoded = DecodeConfig(EncodeConfig(config));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->max_versions, 7u);
  EXPECT_TRUE(decoded->cas_required);
  EXPECT_EQ(decoded->delete_version_after, config.delete_version_after);
}

TEST(KvCodecTest, MetadataRoundTrips) {
  SecretMetadata meta;
  meta.path = "team/db";
  meta.created_time = absl::FromUnixNanos(1700000000123456789);
  meta.updated_time = absl::FromUnixNanos(1700000100000000001);
  meta.current_version = 3;
  meta.oldest_version = 2;
  meta.max_versions = 5;
  meta.cas_required = true;
  meta.delete_version_after = absl::Minutes(90);
  meta.custom_metadata = {{"owner", "jdoe"}, {"tier", "1"}};
  meta.classification.owner = "payments";
  meta.classification.max_cache_age = absl::Minutes(5);
  meta.classification.outage_behavior = OutageBehavior::kFailClosed;
  meta.classification.rotation_period = absl::Hours(24 * 30);
  VersionInfo v2{2, absl::FromUnixSeconds(1700000050), absl::FromUnixSeconds(1700000060), false};
  VersionInfo v3{3, absl::FromUnixSeconds(1700000100), std::nullopt, true};
  meta.versions = {{2, v2}, {3, v3}};
  meta.stages = {{"current", 3}, {"previous", 2}};

  absl::StatusOr<SecretMetadata> d = DecodeMetadata(EncodeMetadata(meta));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->path, "team/db");
  EXPECT_EQ(d->created_time, meta.created_time);
  EXPECT_EQ(d->updated_time, meta.updated_time);
  EXPECT_EQ(d->current_version, 3u);
  EXPECT_EQ(d->oldest_version, 2u);
  EXPECT_EQ(d->max_versions, 5u);
  EXPECT_TRUE(d->cas_required);
  EXPECT_EQ(d->delete_version_after, absl::Minutes(90));
  EXPECT_EQ(d->custom_metadata, meta.custom_metadata);
  EXPECT_EQ(d->classification.owner, "payments");
  EXPECT_EQ(d->classification.max_cache_age, absl::Minutes(5));
  EXPECT_EQ(d->classification.outage_behavior, OutageBehavior::kFailClosed);
  EXPECT_EQ(d->classification.rotation_period, absl::Hours(24 * 30));
  ASSERT_EQ(d->versions.size(), 2u);
  EXPECT_EQ(d->versions.at(2).version, 2u);
  EXPECT_EQ(d->versions.at(2).created_time, v2.created_time);
  EXPECT_EQ(d->versions.at(2).deletion_time, v2.deletion_time);
  EXPECT_FALSE(d->versions.at(2).destroyed);
  EXPECT_EQ(d->versions.at(3).deletion_time, std::nullopt);
  EXPECT_TRUE(d->versions.at(3).destroyed);
  EXPECT_EQ(d->stages, meta.stages);
}

TEST(KvCodecTest, CorruptRecordsAreDataLoss) {
  EXPECT_EQ(DecodeMetadata("not json").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeMetadata("[]").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeMetadata(R"({"current_version":"x"})").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeMetadata(R"({"versions":{"0":{}}})").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeMetadata(R"({"classification":{"outage_behavior":"maybe"}})").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeMetadata(R"({"format":2})").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeConfig(R"({"max_versions":-1})").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ward::secrets::internal
