#include "crypto/aead.h"

#include <openssl/evp.h>

#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/hmac.h"
#include "crypto/openssl_handles.h"
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

// AES-256-GCM of `plaintext` with `nonce` on a fresh OpenSSL context, as nonce || ciphertext
// || tag: the reference the prepared key's reused contexts must match byte for byte.
std::string ReferenceSeal(const core::SecureBytes& key, std::string_view nonce,
                          std::string_view plaintext, std::string_view aad) {
  auto bytes = [](std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::string body(plaintext.size(), '\0');
  std::string tag(kAeadTagSize, '\0');
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key.data(), bytes(nonce), nullptr),
            1);
  if (!aad.empty()) {
    EXPECT_EQ(EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())),
              1);
  }
  if (!plaintext.empty()) {
    EXPECT_EQ(EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(body.data()), &len,
                                bytes(plaintext), static_cast<int>(plaintext.size())),
              1);
  }
  EXPECT_EQ(EVP_EncryptFinal_ex(ctx.get(), nullptr, &len), 1);
  EXPECT_EQ(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kAeadTagSize, tag.data()), 1);
  return std::string(nonce) + body + tag;
}

AeadKey NewAeadKey(const core::SecureBytes& key) {
  absl::StatusOr<AeadKey> prepared = AeadKey::Create(key);
  EXPECT_TRUE(prepared.ok()) << prepared.status();
  return *std::move(prepared);
}

TEST(AeadKeyTest, CreateRejectsWrongKeyLength) {
  EXPECT_EQ(AeadKey::Create(core::SecureBytes(16)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AeadKey::Create(core::SecureBytes()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AeadKey::Create(core::SecureBytes(33)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AeadKeyTest, ReusedContextSealsByteForByteAsAFreshContext) {
  core::SecureBytes key = NewKey();
  AeadKey prepared = NewAeadKey(key);
  // Varied lengths (empty, partial blocks, many blocks) and AADs, all on the one pooled
  // context: each seal must equal a fresh context's output for the same nonce.
  const std::vector<std::string> plaintexts = {"",
                                               "a",
                                               std::string(15, 'b'),
                                               std::string(16, 'c'),
                                               std::string(1024, 'd'),
                                               std::string(4097, 'e')};
  const std::vector<std::string> aads = {"", "kv/data/app", std::string(100, 'k')};
  int seals = 0;
  for (const std::string& plaintext : plaintexts) {
    for (const std::string& aad : aads) {
      absl::StatusOr<std::string> sealed = prepared.Seal(plaintext, aad, "HDR");
      ASSERT_TRUE(sealed.ok()) << sealed.status();
      ASSERT_EQ(sealed->size(), 3 + plaintext.size() + kAeadOverhead);
      EXPECT_EQ(sealed->substr(0, 3), "HDR");
      std::string_view body = std::string_view(*sealed).substr(3);
      EXPECT_EQ(body, ReferenceSeal(key, body.substr(0, kAeadNonceSize), plaintext, aad))
          << "plaintext " << plaintext.size() << " bytes, aad " << aad.size() << " bytes";
      ++seals;
    }
  }
  EXPECT_EQ(seals, 18);
  EXPECT_EQ(prepared.IdleContexts(), 1u);  // one context did all of it
}

TEST(AeadKeyTest, InteroperatesWithTheFreeFunctions) {
  core::SecureBytes key = NewKey();
  AeadKey prepared = NewAeadKey(key);
  for (int i = 0; i < 5; ++i) {
    const std::string plaintext = "value " + std::to_string(i) + std::string(i * 100, 'x');
    absl::StatusOr<std::string> by_key = prepared.Seal(plaintext, "kv/data/app");
    ASSERT_TRUE(by_key.ok()) << by_key.status();
    absl::StatusOr<std::string> opened = AeadOpen(key, *by_key, "kv/data/app");
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext);

    absl::StatusOr<std::string> by_free = AeadSeal(key, plaintext, "kv/data/app");
    ASSERT_TRUE(by_free.ok()) << by_free.status();
    opened = prepared.Open(*by_free, "kv/data/app");
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext);
    absl::StatusOr<core::SecureBytes> secret = prepared.OpenSecret(*by_free, "kv/data/app");
    ASSERT_TRUE(secret.ok()) << secret.status();
    EXPECT_EQ(secret->view(), plaintext);
  }
}

TEST(AeadKeyTest, OpensNistGcmTestCase14) {
  AeadKey prepared = NewAeadKey(core::SecureBytes(kAeadKeySize));
  std::string sealed = std::string(kAeadNonceSize, '\0') +
                       Unhex("cea7403d4d606b6e074ec5d3baf39d18") +
                       Unhex("d0d1c8a799996bf0265b98b5d48ab919");
  for (int i = 0; i < 3; ++i) {  // the second and third on a reused context
    absl::StatusOr<std::string> opened = prepared.Open(sealed, "");
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, std::string(16, '\0'));
  }
}

TEST(AeadKeyTest, ReusedContextRejectsEveryFlippedBitAndWrongAad) {
  AeadKey prepared = NewAeadKey(NewKey());
  absl::StatusOr<std::string> sealed = prepared.Seal("0123456789", "aad");
  ASSERT_TRUE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      // A good open first, so the bad one runs on a context that has just succeeded.
      ASSERT_TRUE(prepared.Open(*sealed, "aad").ok());
      std::string tampered = *sealed;
      tampered[i] = static_cast<char>(tampered[i] ^ (1 << bit));
      EXPECT_EQ(prepared.Open(tampered, "aad").status().code(), absl::StatusCode::kDataLoss)
          << "byte " << i << " bit " << bit;
    }
  }
  ASSERT_TRUE(prepared.Open(*sealed, "aad").ok());
  EXPECT_EQ(prepared.Open(*sealed, "aae").status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(prepared.Open(*sealed, "aad").ok());
  EXPECT_EQ(prepared.Open(*sealed, "").status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(prepared.Open(*sealed, "aad").ok());
  EXPECT_EQ(prepared.OpenSecret(*sealed, "aa").status().code(), absl::StatusCode::kDataLoss);
}

TEST(AeadKeyTest, WrongKeyIsDataLoss) {
  AeadKey prepared = NewAeadKey(NewKey());
  AeadKey other = NewAeadKey(NewKey());
  absl::StatusOr<std::string> sealed = prepared.Seal("value", "aad");
  ASSERT_TRUE(sealed.ok());
  ASSERT_TRUE(other.Seal("warm up", "aad").ok());
  EXPECT_EQ(other.Open(*sealed, "aad").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(other.OpenSecret(*sealed, "aad").status().code(), absl::StatusCode::kDataLoss);
}

TEST(AeadKeyTest, FailedOpenDiscardsItsContextAndTheNextCallStillWorks) {
  core::SecureBytes key = NewKey();
  AeadKey prepared = NewAeadKey(key);
  absl::StatusOr<std::string> sealed = prepared.Seal("value", "aad");
  ASSERT_TRUE(sealed.ok());
  ASSERT_EQ(prepared.IdleContexts(), 1u);
  EXPECT_EQ(prepared.Open(*sealed, "wrong").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(prepared.IdleContexts(), 0u);  // freed, not pooled
  absl::StatusOr<std::string> opened = prepared.Open(*sealed, "aad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "value");
  EXPECT_EQ(prepared.IdleContexts(), 1u);
  absl::StatusOr<std::string> again = prepared.Seal("after", "x");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, ReferenceSeal(key, again->substr(0, kAeadNonceSize), "after", "x"));
}

TEST(AeadKeyTest, MalformedInputIsInvalidArgumentAndKeepsThePool) {
  AeadKey prepared = NewAeadKey(NewKey());
  ASSERT_TRUE(prepared.Seal("v", "a").ok());
  EXPECT_EQ(prepared.Open(std::string(kAeadOverhead - 1, 'x'), "a").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(prepared.OpenSecret("", "a").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(prepared.IdleContexts(), 1u);
}

TEST(AeadKeyTest, EmptyPlaintextAndAadRoundTrip) {
  AeadKey prepared = NewAeadKey(NewKey());
  absl::StatusOr<std::string> sealed = prepared.Seal("", "");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), kAeadOverhead);
  absl::StatusOr<std::string> opened = prepared.Open(*sealed, "");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "");
  EXPECT_EQ(prepared.Open(*sealed, "x").status().code(), absl::StatusCode::kDataLoss);
}

TEST(AeadKeyTest, CopiesShareThePreparedStateAndOutliveTheOriginal) {
  core::SecureBytes key = NewKey();
  std::optional<AeadKey> original = NewAeadKey(key);
  ASSERT_TRUE(original->Seal("v", "a").ok());
  AeadKey copy = *original;
  EXPECT_EQ(copy.IdleContexts(), 1u);  // the same pool
  original.reset();
  absl::StatusOr<std::string> sealed = copy.Seal("still here", "a");
  ASSERT_TRUE(sealed.ok());
  absl::StatusOr<std::string> opened = AeadOpen(key, *sealed, "a");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "still here");
}

TEST(AeadKeyTest, ConcurrentSealsAndOpensAreCorrect) {
  core::SecureBytes key = NewKey();
  AeadKey prepared = NewAeadKey(key);
  constexpr int kThreads = 8;
  constexpr int kRounds = 200;
  std::vector<int> good(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::string plaintext = "thread " + std::to_string(t) + " round " + std::to_string(i);
        const std::string aad = "key/" + std::to_string(t);
        absl::StatusOr<std::string> sealed = prepared.Seal(plaintext, aad);
        if (!sealed.ok()) continue;
        absl::StatusOr<std::string> opened = prepared.Open(*sealed, aad);
        // Every third round also fails an open, so discarded contexts mix with reused ones.
        const bool rejected = i % 3 != 0 || prepared.Open(*sealed, aad + "x").status().code() ==
                                                absl::StatusCode::kDataLoss;
        absl::StatusOr<std::string> by_free = AeadOpen(key, *sealed, aad);
        if (opened.ok() && *opened == plaintext && rejected && by_free.ok() &&
            *by_free == plaintext) {
          ++good[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(good[t], kRounds) << "thread " << t;
  EXPECT_GE(prepared.IdleContexts(), 1u);
  EXPECT_LE(prepared.IdleContexts(), static_cast<size_t>(kThreads));
}

}  // namespace
}  // namespace ward::crypto
