#include "crypto/shamir.h"

#include <algorithm>
#include <random>
#include <set>

#include "crypto/random.h"
#include "gtest/gtest.h"

namespace ward::crypto {
namespace {

using internal::GfAdd;
using internal::GfInv;
using internal::GfMul;

// Textbook multiplication with branches, as an independent reference for GfMul.
uint8_t ReferenceMul(uint8_t a, uint8_t b) {
  unsigned product = 0;
  for (int i = 0; i < 8; ++i) {
    if (b & (1u << i)) product ^= static_cast<unsigned>(a) << i;
  }
  for (int bit = 14; bit >= 8; --bit) {
    if (product & (1u << bit)) product ^= 0x11bu << (bit - 8);
  }
  return static_cast<uint8_t>(product);
}

core::SecureBytes Secret(std::string_view text) { return core::SecureBytes(text); }

std::vector<core::SecureBytes> Pick(const std::vector<core::SecureBytes>& shares,
                                    const std::vector<size_t>& indexes) {
  std::vector<core::SecureBytes> out;
  for (size_t i : indexes) out.push_back(shares[i].Copy());
  return out;
}

TEST(GaloisFieldTest, MatchesKnownProducts) {
  // FIPS-197 section 4.2: {57} * {83} = {c1}; {53} and {ca} are inverses.
  EXPECT_EQ(GfMul(0x57, 0x83), 0xc1);
  EXPECT_EQ(GfMul(0x53, 0xca), 0x01);
  EXPECT_EQ(GfInv(0x53), 0xca);
  EXPECT_EQ(GfAdd(0x57, 0x83), 0xd4);
  EXPECT_EQ(GfMul(0, 0x83), 0);
  EXPECT_EQ(GfInv(0), 0);
}

TEST(GaloisFieldTest, MulMatchesReferenceForAllPairs) {
  for (unsigned a = 0; a < 256; ++a) {
    for (unsigned b = 0; b < 256; ++b) {
      ASSERT_EQ(GfMul(a, b), ReferenceMul(a, b)) << a << " * " << b;
    }
  }
}

TEST(GaloisFieldTest, EveryNonZeroElementHasInverse) {
  for (unsigned a = 1; a < 256; ++a) {
    EXPECT_EQ(GfMul(a, GfInv(a)), 1) << a;
  }
}

TEST(ShamirTest, SharesHaveSecretLengthPlusDistinctNonZeroX) {
  auto shares = ShamirSplit(Secret("0123456789abcdef0123456789abcdef"), 5, 3);
  ASSERT_TRUE(shares.ok()) << shares.status();
  ASSERT_EQ(shares->size(), 5u);
  std::set<uint8_t> xs;
  for (const core::SecureBytes& share : *shares) {
    ASSERT_EQ(share.size(), 33u);
    uint8_t x = share.data()[32];
    EXPECT_NE(x, 0);
    EXPECT_TRUE(xs.insert(x).second);
  }
}

TEST(ShamirTest, EverySubsetOfThresholdOrMoreRecoversSecret) {
  core::SecureBytes secret = Secret("the root of all trust, 32 bytes!");
  auto shares = ShamirSplit(secret, 5, 3);
  ASSERT_TRUE(shares.ok());
  int recovered = 0;
  for (unsigned mask = 1; mask < 32; ++mask) {
    std::vector<size_t> indexes;
    for (size_t i = 0; i < 5; ++i) {
      if (mask & (1u << i)) indexes.push_back(i);
    }
    auto combined = ShamirCombine(Pick(*shares, indexes));
    ASSERT_TRUE(combined.ok()) << combined.status();
    if (indexes.size() >= 3) {
      EXPECT_EQ(*combined, secret) << "mask " << mask;
      ++recovered;
    } else {
      EXPECT_FALSE(*combined == secret) << "mask " << mask;
    }
  }
  EXPECT_EQ(recovered, 16);  // C(5,3) + C(5,4) + C(5,5)
}

TEST(ShamirTest, ThresholdOneSharesEqualSecret) {
  core::SecureBytes secret = Secret("abc");
  auto shares = ShamirSplit(secret, 4, 1);
  ASSERT_TRUE(shares.ok());
  for (const core::SecureBytes& share : *shares) {
    EXPECT_EQ(share.view().substr(0, 3), "abc");
    auto combined = ShamirCombine(Pick(*shares, {0}));
    ASSERT_TRUE(combined.ok());
    EXPECT_EQ(*combined, secret);
  }
}

TEST(ShamirTest, SinglePartSingleThresholdRoundTrips) {
  core::SecureBytes secret = Secret("only one");
  auto shares = ShamirSplit(secret, 1, 1);
  ASSERT_TRUE(shares.ok());
  ASSERT_EQ(shares->size(), 1u);
  auto combined = ShamirCombine(*shares);
  ASSERT_TRUE(combined.ok());
  EXPECT_EQ(*combined, secret);
}

TEST(ShamirTest, MaximumPartsUseEveryNonZeroX) {
  core::SecureBytes secret = Secret("k");
  auto shares = ShamirSplit(secret, 255, 255);
  ASSERT_TRUE(shares.ok());
  std::set<uint8_t> xs;
  for (const core::SecureBytes& share : *shares) xs.insert(share.data()[1]);
  EXPECT_EQ(xs.size(), 255u);
  EXPECT_EQ(xs.count(0), 0u);
  auto combined = ShamirCombine(*shares);
  ASSERT_TRUE(combined.ok());
  EXPECT_EQ(*combined, secret);
}

TEST(ShamirTest, SplitRejectsInvalidArguments) {
  core::SecureBytes secret = Secret("s");
  EXPECT_EQ(ShamirSplit(secret, 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(secret, 256, 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(secret, 3, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(secret, 3, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(secret, -1, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(core::SecureBytes(), 3, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ShamirTest, CombineRejectsMalformedShares) {
  auto shares = ShamirSplit(Secret("secret"), 3, 2);
  ASSERT_TRUE(shares.ok());

  EXPECT_EQ(ShamirCombine({}).status().code(), absl::StatusCode::kInvalidArgument);

  std::vector<core::SecureBytes> duplicate = Pick(*shares, {0, 0});
  EXPECT_EQ(ShamirCombine(duplicate).status().code(), absl::StatusCode::kInvalidArgument);

  std::vector<core::SecureBytes> uneven = Pick(*shares, {0, 1});
  uneven[1].resize(4);
  EXPECT_EQ(ShamirCombine(uneven).status().code(), absl::StatusCode::kInvalidArgument);

  std::vector<core::SecureBytes> zero_x = Pick(*shares, {0, 1});
  zero_x[1].data()[zero_x[1].size() - 1] = 0;
  EXPECT_EQ(ShamirCombine(zero_x).status().code(), absl::StatusCode::kInvalidArgument);

  std::vector<core::SecureBytes> too_short;
  too_short.push_back(core::SecureBytes(1));
  EXPECT_EQ(ShamirCombine(too_short).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ShamirTest, RandomSplitsRoundTripFromRandomSubsets) {
  std::mt19937 rng(20240611);
  for (int round = 0; round < 300; ++round) {
    const size_t length = std::uniform_int_distribution<size_t>(1, 64)(rng);
    const int parts = std::uniform_int_distribution<int>(1, round % 50 == 0 ? 255 : 12)(rng);
    const int threshold = std::uniform_int_distribution<int>(1, parts)(rng);
    core::SecureBytes secret(length);
    for (size_t i = 0; i < length; ++i) {
      secret.data()[i] = static_cast<uint8_t>(rng());
    }
    auto shares = ShamirSplit(secret, parts, threshold);
    ASSERT_TRUE(shares.ok()) << shares.status();

    std::vector<size_t> order(static_cast<size_t>(parts));
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    const int take = std::uniform_int_distribution<int>(threshold, parts)(rng);
    order.resize(static_cast<size_t>(take));

    auto combined = ShamirCombine(Pick(*shares, order));
    ASSERT_TRUE(combined.ok()) << combined.status();
    EXPECT_EQ(*combined, secret) << "round " << round << " parts " << parts << " threshold "
                                 << threshold << " take " << take;

    if (threshold > 1) {
      order.resize(static_cast<size_t>(threshold - 1));
      auto short_combined = ShamirCombine(Pick(*shares, order));
      ASSERT_TRUE(short_combined.ok());
      // One byte could collide by chance (1/256); a secret of 8+ bytes essentially cannot.
      if (length >= 8) {
        EXPECT_FALSE(*short_combined == secret) << "round " << round;
      }
    }
  }
}

}  // namespace
}  // namespace ward::crypto
