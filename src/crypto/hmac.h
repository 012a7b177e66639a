#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/secure_bytes.h"

namespace ward::crypto {

// HMAC-SHA256 of `data` under `key`; returns the 32-byte MAC. Thread-safe.
// Errors: kInternal if OpenSSL fails.
absl::StatusOr<std::string> HmacSha256(const core::SecureBytes& key, std::string_view data);

// An HMAC-SHA256 key prepared once (algorithm fetched, key absorbed), for MACing many values
// under the same key: each Mac starts from the prepared state instead of setting the key up
// again, which is most of the cost of a short HmacSha256 call, and reuses contexts finished
// with by earlier calls (kept with the key, freed with it). Copies share the prepared state;
// thread-safe.
class HmacSha256Key {
 public:
  // Errors: kInternal if OpenSSL fails.
  static absl::StatusOr<HmacSha256Key> Create(const core::SecureBytes& key);

  // HMAC-SHA256 of `data`: the same 32 bytes as HmacSha256(key, data).
  // Errors: kInternal if OpenSSL fails.
  absl::StatusOr<std::string> Mac(std::string_view data) const;

 private:
  struct Prepared;
  explicit HmacSha256Key(std::shared_ptr<const Prepared> prepared)
      : prepared_(std::move(prepared)) {}
  std::shared_ptr<const Prepared> prepared_;
};

// SHA-256 of `data`; returns the 32-byte digest.
std::string Sha256(std::string_view data);

// Lower-case hex encoding.
std::string HexEncode(std::string_view bytes);

// Compares two byte strings in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace ward::crypto
