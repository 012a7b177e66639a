#include "crypto/aead.h"

#include <set>
#include <string>

#include "crypto/hmac.h"
#include "crypto/random.h"
#include "gtest/gtest.h"

namespace ward::crypto {
namespace {

core::SecureBytes NewKey() {
  absl::StatusOr<core::SecureBytes> key = RandomBytes(kAeadKeySize);
  EXPECT_TRUE(key.ok());
  return std::move(*key);
}

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST(AeadTest, RoundTripReturnsPlaintext) {
  core::SecureBytes key = NewKey();
  absl::StatusOr<std::string> sealed = AeadSeal(key, "attack at dawn", "kv/data/app");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->size(), 14 + kAeadOverhead);
  EXPECT_EQ(sealed->find("attack at dawn"), std::string::npos);

  absl::StatusOr<std::string> opened = AeadOpen(key, *sealed, "kv/data/app");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "attack at dawn");

  absl::StatusOr<core::SecureBytes> secret = AeadOpenSecret(key, *sealed, "kv/data/app");
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(secret->view(), "attack at dawn");
}

TEST(AeadTest, PrefixIsCopiedInFrontAndNotPartOfTheSealedMessage) {
  core::SecureBytes key = NewKey();
  absl::StatusOr<std::string> sealed = AeadSeal(key, "value", "aad", "HDR");
  ASSERT_TRUE(sealed.ok());
  ASSERT_EQ(sealed->size(), 3 + 5 + kAeadOverhead);
  EXPECT_EQ(sealed->substr(0, 3), "HDR");
  absl::StatusOr<std::string> opened = AeadOpen(key, std::string_view(*sealed).substr(3), "aad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "value");
}

TEST(AeadTest, EmptyPlaintextAndAadRoundTrip) {
  core::SecureBytes key = NewKey();
  absl::StatusOr<std::string> sealed = AeadSeal(key, "", "");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), kAeadOverhead);
  absl::StatusOr<std::string> opened = AeadOpen(key, *sealed, "");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "");
  EXPECT_EQ(AeadOpen(key, *sealed, "x").status().code(), absl::StatusCode::kDataLoss);
}

TEST(AeadTest, OpensNistGcmTestCase14) {
  // NIST GCM spec test case 14: K = 0^256, IV = 0^96, P = 0^128, no AAD.
  core::SecureBytes key(kAeadKeySize);
  std::string sealed = std::string(kAeadNonceSize, '\0') +
                       Unhex("cea7403d4d606b6e074ec5d3baf39d18") +
                       Unhex("d0d1c8a799996bf0265b98b5d48ab919");
  absl::StatusOr<std::string> opened = AeadOpen(key, sealed, "");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, std::string(16, '\0'));
}

TEST(AeadTest, NoncesDifferBetweenSeals) {
  core::SecureBytes key = NewKey();
  std::set<std::string> nonces;
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::string> sealed = AeadSeal(key, "same", "same");
    ASSERT_TRUE(sealed.ok());
    EXPECT_TRUE(nonces.insert(sealed->substr(0, kAeadNonceSize)).second);
  }
}

TEST(AeadTest, WrongAadIsDataLoss) {
  core::SecureBytes key = NewKey();
  absl::StatusOr<std::string> sealed = AeadSeal(key, "value", "key/a");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(AeadOpen(key, *sealed, "key/b").status().code(), absl::StatusCode::kDataLoss);
}

TEST(AeadTest, WrongKeyIsDataLoss) {
  core::SecureBytes key = NewKey();
  core::SecureBytes other = NewKey();
  absl::StatusOr<std::string> sealed = AeadSeal(key, "value", "aad");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(AeadOpen(other, *sealed, "aad").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(AeadOpenSecret(other, *sealed, "aad").status().code(), absl::StatusCode::kDataLoss);
}

TEST(AeadTest, EveryFlippedBitIsDataLoss) {
  core::SecureBytes key = NewKey();
  absl::StatusOr<std::string> sealed = AeadSeal(key, "0123456789", "aad");
  ASSERT_TRUE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string tampered = *sealed;
      tampered[i] = static_cast<char>(tampered[i] ^ (1 << bit));
      EXPECT_EQ(AeadOpen(key, tampered, "aad").status().code(), absl::StatusCode::kDataLoss)
          << "byte " << i << " bit " << bit;
    }
  }
}

TEST(AeadTest, TruncatedOrExtendedIsRejected) {
  core::SecureBytes key = NewKey();
  absl::StatusOr<std::string> sealed = AeadSeal(key, "0123456789", "aad");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(AeadOpen(key, sealed->substr(0, sealed->size() - 1), "aad").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(AeadOpen(key, *sealed + "x", "aad").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(AeadOpen(key, sealed->substr(0, kAeadOverhead - 1), "aad").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AeadOpen(key, "", "aad").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AeadTest, WrongKeyLengthIsInvalidArgument) {
  core::SecureBytes short_key(16);
  EXPECT_EQ(AeadSeal(short_key, "v", "a").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AeadOpen(short_key, std::string(64, 'x'), "a").status().code(),
            absl::StatusCode::kInvalidArgument);
  core::SecureBytes empty_key;
  EXPECT_EQ(AeadSeal(empty_key, "v", "a").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AeadTest, LargePlaintextRoundTrips) {
  core::SecureBytes key = NewKey();
  std::string big(1 << 20, 'z');
  absl::StatusOr<std::string> sealed = AeadSeal(key, big, "big");
  ASSERT_TRUE(sealed.ok());
  absl::StatusOr<std::string> opened = AeadOpen(key, *sealed, "big");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, big);
}

}  // namespace
}  // namespace ward::crypto
