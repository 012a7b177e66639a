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
// All functions are thread-safe.

#include <cstddef>
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

}  // namespace ward::crypto
