#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/secure_bytes.h"

namespace ward::crypto {

// HMAC-SHA256 of `data` under `key`; returns the 32-byte MAC. Thread-safe.
// Errors: kInternal if OpenSSL fails.
absl::StatusOr<std::string> HmacSha256(const core::SecureBytes& key, std::string_view data);

// SHA-256 of `data`; returns the 32-byte digest.
std::string Sha256(std::string_view data);

// Lower-case hex encoding.
std::string HexEncode(std::string_view bytes);

// Compares two byte strings in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace ward::crypto
