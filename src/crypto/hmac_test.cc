#include "crypto/hmac.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ward::crypto {
namespace {

TEST(HmacTest, MatchesRfc4231TestCase2) {
  core::SecureBytes key(std::string_view("Jefe"));
  auto mac = HmacSha256(key, "what do ya want for nothing?");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(HexEncode(*mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacTest, PreparedKeyGivesTheSameMacsFromManyThreads) {
  core::SecureBytes key(std::string_view("Jefe"));
  auto prepared = HmacSha256Key::Create(key);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  auto mac = prepared->Mac("what do ya want for nothing?");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(HexEncode(*mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Contexts are reused from call to call (re-initialised to the keyed state): many uses,
  // short and longer than a SHA-256 block, concurrently, all agree with the one-shot HMAC.
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::string data = std::to_string(t * 1000 + i);
        if (i % 3 == 0) data.append(1000, static_cast<char>('a' + t));
        auto a = prepared->Mac(data);
        auto b = HmacSha256(key, data);
        if (!a.ok() || !b.ok() || *a != *b) mismatches.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(HexEncode(*prepared->Mac("")), HexEncode(*HmacSha256(key, "")));
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
