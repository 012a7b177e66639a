#pragma once

// AES-256-GCM authenticated encryption with a random 96-bit nonce per message.
//
// Sealed layout: nonce (12 bytes) || ciphertext (plaintext length) || tag (16 bytes).
// The additional authenticated data (AAD) is authenticated but not stored: the opener must
// supply the same AAD (Ward uses the storage key, so a value moved to another key fails).
//
// A key must not seal more than about 2^32 messages (random-nonce GCM collision bound); Ward
// rotates barrier terms well before that (see docs/storage-format.md).
//
// All functions are thread-safe. For many messages under one key, prepare it once as an
// AeadKey: its methods produce and accept exactly the same bytes as the free functions.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/secure_bytes.h"

namespace ward::crypto {

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadNonceSize = 12;
inline constexpr size_t kAeadTagSize = 16;
// Bytes AeadSeal adds to the plaintext length.
inline constexpr size_t kAeadOverhead = kAeadNonceSize + kAeadTagSize;

// Encrypts `plaintext` under `key`, authenticating `aad`; returns
// prefix || nonce || ciphertext || tag. `prefix` is copied as is and is NOT authenticated (it
// lets callers put a header in front without another copy; authenticate it through `aad` if
// it matters).
// Errors: kInvalidArgument if `key` is not 32 bytes or the message exceeds 2 GiB; kInternal if
// OpenSSL or the random generator fails.
absl::StatusOr<std::string> AeadSeal(const core::SecureBytes& key, std::string_view plaintext,
                                     std::string_view aad, std::string_view prefix = {});

// Decrypts nonce || ciphertext || tag (the output of AeadSeal without its prefix) and returns
// the plaintext.
// Errors: kInvalidArgument if `key` is not 32 bytes or `sealed` is shorter than
// kAeadOverhead; kDataLoss if the tag does not verify (wrong key, wrong AAD, or any byte
// changed); kInternal if OpenSSL fails.
absl::StatusOr<std::string> AeadOpen(const core::SecureBytes& key, std::string_view sealed,
                                     std::string_view aad);

// As AeadOpen, for plaintexts that are key material: the result zeroes itself when destroyed.
absl::StatusOr<core::SecureBytes> AeadOpenSecret(const core::SecureBytes& key,
                                                 std::string_view sealed, std::string_view aad);

// An AES-256-GCM key prepared once (cipher fetched, AES key schedule and GHASH table built),
// for sealing and opening many messages under the same key: each call takes a cipher context
// that already holds the keyed state and only sets the nonce, instead of creating a context
// and keying it again, which is most of the cost of sealing or opening a short message.
// Contexts finished with are kept for later calls (a bounded pool kept with the key); a
// context whose operation failed is freed, never reused. The prepared state and every pooled
// context are freed (and cleansed by OpenSSL) when the last copy of the key is destroyed; no
// copy of the key material outlives it.
//
// Seal, Open and OpenSecret are byte-compatible with AeadSeal, AeadOpen and AeadOpenSecret
// under the same key: same layout, same AAD rules, same error codes. Copies share the
// prepared state. Thread-safe.
class AeadKey {
 public:
  // Prepares `key`; `key` itself is not retained.
  // Errors: kInvalidArgument if `key` is not 32 bytes; kInternal if OpenSSL fails.
  static absl::StatusOr<AeadKey> Create(const core::SecureBytes& key);

  // As AeadSeal(key, plaintext, aad, prefix).
  // Errors: kInvalidArgument if the message exceeds 2 GiB; kInternal if OpenSSL or the random
  // generator fails.
  absl::StatusOr<std::string> Seal(std::string_view plaintext, std::string_view aad,
                                   std::string_view prefix = {}) const;

  // As AeadOpen(key, sealed, aad).
  // Errors: kInvalidArgument if `sealed` is shorter than kAeadOverhead; kDataLoss if the tag
  // does not verify (wrong key, wrong AAD, or any byte changed); kInternal if OpenSSL fails.
  absl::StatusOr<std::string> Open(std::string_view sealed, std::string_view aad) const;

  // As AeadOpenSecret(key, sealed, aad). Errors as Open.
  absl::StatusOr<core::SecureBytes> OpenSecret(std::string_view sealed, std::string_view aad) const;

  // Contexts currently kept for reuse (at most one per thread that used the key at the same
  // time, capped). For tests and diagnostics.
  size_t IdleContexts() const;

 private:
  struct Prepared;
  explicit AeadKey(std::shared_ptr<const Prepared> prepared) : prepared_(std::move(prepared)) {}
  std::shared_ptr<const Prepared> prepared_;
};

}  // namespace ward::crypto
