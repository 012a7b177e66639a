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

// Bytes that differ from position to position, so a misplaced piece changes the digest.
std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) % 251);
  return s;
}

TEST(Sha256StreamTest, EqualsOneShotSha256ForEverySplit) {
  // Lengths around the 64-byte block and the 55/56-byte padding boundary, and a long one.
  for (size_t len : {0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000}) {
    const std::string data = Pattern(len);
    const std::string want = Sha256(data);
    for (size_t a = 0; a <= len; a += len < 130 ? 1 : 7) {
      Sha256Stream one_split;
      one_split.Update(std::string_view(data).substr(0, a));
      one_split.Update(std::string_view(data).substr(a));
      EXPECT_EQ(HexEncode(one_split.Final()), HexEncode(want)) << "len " << len << " split " << a;
      const size_t b = a + (len - a) / 2;
      Sha256Stream two_splits;
      two_splits.Update(std::string_view(data).substr(0, a));
      two_splits.Update("");  // an empty piece changes nothing
      two_splits.Update(std::string_view(data).substr(a, b - a));
      two_splits.Update(std::string_view(data).substr(b));
      EXPECT_EQ(HexEncode(two_splits.Final()), HexEncode(want))
          << "len " << len << " at " << a << "," << b;
    }
    Sha256Stream bytewise;
    for (char c : data) bytewise.Update(std::string_view(&c, 1));
    EXPECT_EQ(HexEncode(bytewise.Final()), HexEncode(want)) << "len " << len;
  }
  EXPECT_EQ(HexEncode(Sha256Stream().Final()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256Stream abc;
  abc.Update("abc");  // FIPS 180-2 example
  EXPECT_EQ(HexEncode(abc.Final()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256StreamTest, CopiesCarryOnIndependently) {
  const std::string prefix = Pattern(100);
  Sha256Stream base;
  base.Update(prefix);
  Sha256Stream copy(base);
  Sha256Stream assigned;
  assigned.Update("state that the assignment replaces");
  assigned = base;
  copy.Update("copy");
  assigned.Update("assigned");
  base.Update("base");
  Sha256Stream copy_of_copy(copy);  // taken after the copy went its own way
  copy_of_copy.Update("!");
  EXPECT_EQ(HexEncode(copy.Final()), HexEncode(Sha256(prefix + "copy")));
  EXPECT_EQ(HexEncode(assigned.Final()), HexEncode(Sha256(prefix + "assigned")));
  EXPECT_EQ(HexEncode(base.Final()), HexEncode(Sha256(prefix + "base")));
  EXPECT_EQ(HexEncode(copy_of_copy.Final()), HexEncode(Sha256(prefix + "copy!")));
  Sha256Stream moved_from;
  moved_from.Update(prefix);
  Sha256Stream moved(std::move(moved_from));
  EXPECT_EQ(HexEncode(moved.Final()), HexEncode(Sha256(prefix)));
}

TEST(Sha256StreamTest, StreamsOnManyThreadsAgreeWithOneShot) {
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t len = 0; len < 300; ++len) {
        std::string data = Pattern(len + t);
        Sha256Stream s;
        s.Update(std::string_view(data).substr(0, len / 3));
        Sha256Stream c(s);
        c.Update(std::string_view(data).substr(len / 3));
        if (c.Final() != Sha256(data)) mismatches.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(HmacTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
}

}  // namespace
}  // namespace ward::crypto
