#pragma once

// The two keys of one audit device: the salt that hashes sensitive values in records, and the
// Ed25519 key that signs checkpoint lines (docs/audit.md).

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/secure_bytes.h"
#include "crypto/hmac.h"
#include "crypto/openssl_handles.h"

namespace ward::audit {

// The prefix of every hashed value in an audit record (Vault's spelling).
inline constexpr std::string_view kHashPrefix = "hmac-sha256:";

// Hashes sensitive strings for audit records: "hmac-sha256:" + lower-case hex of
// HMAC-SHA256(salt, value).
//
// A device also remembers hashed text under keys its callers choose (a token's hashed record
// parts under its accessor, the hashed data of a KV read under the stored version it came
// from), so that what every request repeats is hashed once, not once per record. At most
// kMemoCapacity entries, of
// at most kMemoMaxBytes in all, are kept, in two generations: when the newer half is full, the
// older half is forgotten, and an entry in use is carried into the newer half when it is next
// used. Remembered text is hashed; keys hold accessors and metadata, never secret values or
// tokens.
//
// Thread-safe: Hash is pure; the memo takes a reader lock to look up and a writer lock to add.
class Hasher {
 public:
  static constexpr size_t kMemoCapacity = 10000;
  // At most this many bytes of keys and text are remembered (half per generation), and no
  // single entry larger than kMemoMaxEntryBytes is remembered at all.
  static constexpr size_t kMemoMaxBytes = size_t{16} << 20;
  static constexpr size_t kMemoMaxEntryBytes = size_t{64} << 10;

  // REQUIRES: `salt` is not empty.
  explicit Hasher(const core::SecureBytes& salt);
  Hasher(Hasher&&) noexcept;
  ~Hasher();

  // Returns the hashed form of `value`. Errors: kInternal if OpenSSL fails.
  absl::StatusOr<std::string> Hash(std::string_view value) const;

  // Appends the text remembered under `key` to `out` and returns true; returns false and
  // leaves `out` as it was if nothing is remembered under `key`.
  // With `identity`, only text remembered for that same object (its owner, not merely its
  // address) counts.
  bool AppendRemembered(std::string_view key, std::string& out,
                        const std::shared_ptr<const void>& identity = nullptr) const;

  // Remembers `text` under `key` (replacing what was there), for `identity` if given: the key
  // may contain its address, and AppendRemembered with an identity matches only the same
  // object. The identity is not kept alive (only its control block). Text of more than
  // kMemoMaxEntryBytes is not remembered.
  void Remember(std::string key, std::string text,
                const std::shared_ptr<const void>& identity = nullptr) const;

  // How many entries are remembered now (tests).
  size_t RememberedForTest() const;

 private:
  struct Memo;

  absl::StatusOr<crypto::HmacSha256Key> key_;  // prepared once from the salt
  std::unique_ptr<Memo> memo_;
};

// Signs checkpoint messages with an Ed25519 private key. Immutable and thread-safe.
class CheckpointSigner {
 public:
  // Builds a signer from a 32-byte Ed25519 seed.
  // Errors: kInvalidArgument if the seed is not 32 bytes; kInternal if OpenSSL fails.
  static absl::StatusOr<CheckpointSigner> Create(const core::SecureBytes& seed);

  // Returns the 64-byte signature of `message`, hex-encoded. Errors: kInternal if OpenSSL fails.
  absl::StatusOr<std::string> Sign(std::string_view message) const;

  // The 32-byte public key, hex-encoded: what `ward audit verify --key` takes.
  const std::string& public_key_hex() const { return public_key_hex_; }

 private:
  CheckpointSigner(crypto::EvpPkeyPtr key, std::string public_key_hex)
      : key_(std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free)),
        public_key_hex_(std::move(public_key_hex)) {}

  std::shared_ptr<EVP_PKEY> key_;  // immutable once built; shared so the signer is copyable
  std::string public_key_hex_;
};

// Checks a hex Ed25519 `signature_hex` of `message` under the hex public key.
// Returns true if valid, false if the signature does not verify.
// Errors: kInvalidArgument if the key or signature is not well-formed hex of the right size.
absl::StatusOr<bool> VerifyCheckpointSignature(std::string_view public_key_hex,
                                               std::string_view message,
                                               std::string_view signature_hex);

// Decodes lower- or upper-case hex. Errors: kInvalidArgument for odd length or a non-hex digit.
absl::StatusOr<std::string> HexDecode(std::string_view hex);

}  // namespace ward::audit
