#include "crypto/random.h"

#include <set>

#include "gtest/gtest.h"

namespace ward::crypto {
namespace {

TEST(RandomTest, AlphanumericHasLengthAndAlphabet) {
  auto s = RandomAlphanumeric(64);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 64u);
  for (char c : *s) EXPECT_TRUE(isalnum(static_cast<unsigned char>(c))) << c;
}

TEST(RandomTest, UuidIsVersion4AndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto u = RandomUuid();
    ASSERT_TRUE(u.ok());
    ASSERT_EQ(u->size(), 36u);
    EXPECT_EQ((*u)[14], '4');
    EXPECT_TRUE(seen.insert(*u).second);
  }
}

}  // namespace
}  // namespace ward::crypto
