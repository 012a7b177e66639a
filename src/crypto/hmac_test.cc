#include "crypto/hmac.h"

#include "gtest/gtest.h"

namespace ward::crypto {
namespace {

TEST(HmacTest, MatchesRfc4231TestCase2) {
  core::SecureBytes key(std::string_view("Jefe"));
  auto mac = HmacSha256(key, "what do ya want for nothing?");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(HexEncode(*mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacTest, Sha256OfEmpty) {
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(HmacTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
}

}  // namespace
}  // namespace ward::crypto
