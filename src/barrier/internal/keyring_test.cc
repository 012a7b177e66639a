#include "barrier/internal/keyring.h"

#include <string>

#include "gtest/gtest.h"

namespace ward::barrier::internal {
namespace {

Keyring TwoTerms() {
  Keyring keyring;
  keyring.active_term = 2;
  keyring.terms.emplace(
      1, KeyringTerm{core::SecureBytes(std::string(32, 'a')), absl::FromUnixSeconds(1700000000)});
  keyring.terms.emplace(2, KeyringTerm{core::SecureBytes(std::string(32, 'b')),
                                       absl::FromUnixNanos(1700000100123456789)});
  return keyring;
}

absl::StatusCode DecodeCode(std::string_view json) { return DecodeKeyring(json).status().code(); }

TEST(KeyringTest, EncodeDecodeRoundTrips) {
  Keyring keyring = TwoTerms();
  core::SecureBytes json = EncodeKeyring(keyring);
  absl::StatusOr<Keyring> decoded = DecodeKeyring(json.view());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->active_term, 2u);
  ASSERT_EQ(decoded->terms.size(), 2u);
  EXPECT_EQ(decoded->Find(1)->key.view(), std::string(32, 'a'));
  EXPECT_EQ(decoded->Find(2)->key.view(), std::string(32, 'b'));
  EXPECT_EQ(decoded->Find(1)->install_time, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(decoded->Find(2)->install_time, absl::FromUnixNanos(1700000100123456789));
  EXPECT_EQ(decoded->Find(3), nullptr);
}

TEST(KeyringTest, EncodingIsDocumentedJson) {
  Keyring keyring;
  keyring.active_term = 1;
  keyring.terms.emplace(
      1, KeyringTerm{core::SecureBytes(std::string(32, '\0')), absl::FromUnixSeconds(1700000000)});
  EXPECT_EQ(EncodeKeyring(keyring).view(),
            R"({"version":1,"active_term":1,"terms":[{"term":1,)"
            R"("key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",)"
            R"("install_time":"2023-11-14T22:13:20.000000000Z"}]})");
}

TEST(KeyringTest, CopyIsDeep) {
  Keyring keyring = TwoTerms();
  Keyring copy = keyring.Copy();
  keyring.terms.clear();
  EXPECT_EQ(copy.active_term, 2u);
  EXPECT_EQ(copy.Find(2)->key.view(), std::string(32, 'b'));
}

TEST(KeyringTest, DecodeRejectsMalformedKeyrings) {
  const std::string key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  auto with = [&](std::string version, std::string active, std::string term, std::string k,
                  std::string time) {
    return R"({"version":)" + version + R"(,"active_term":)" + active + R"(,"terms":[{"term":)" +
           term + R"(,"key":")" + k + R"(","install_time":")" + time + R"("}]})";
  };
  const std::string good_time = "2023-11-14T22:13:20Z";
  ASSERT_TRUE(DecodeKeyring(with("1", "1", "1", key, good_time)).ok());

  EXPECT_EQ(DecodeCode("not json"), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode(R"({"version":1)"), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode("[]"), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode(with("2", "1", "1", key, good_time)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode(with("1", "2", "1", key, good_time)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode(with("1", "0", "0", key, good_time)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode(with("1", "1", "4294967296", key, good_time)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode(with("1", "1", "1", "AAAA", good_time)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode(with("1", "1", "1", "!!not base64!!", good_time)),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode(with("1", "1", "1", key, "yesterday")), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeCode(R"({"version":1,"active_term":1,"terms":[)"
                       R"({"term":1,"key":")" +
                       key +
                       R"(","install_time":"2023-11-14T22:13:20Z"},)"
                       R"({"term":1,"key":")" +
                       key + R"(","install_time":"2023-11-14T22:13:20Z"}]})"),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ward::barrier::internal
