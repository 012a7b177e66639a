#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "core/secure_bytes.h"

namespace ward::crypto {

// Cryptographically secure random bytes from OpenSSL's DRBG. Thread-safe.
// Errors: kInternal if the generator fails (it does not in practice once seeded).
absl::StatusOr<core::SecureBytes> RandomBytes(size_t n);

// A random string of `n` characters from [A-Za-z0-9] (for tokens and ids), without modulo bias.
absl::StatusOr<std::string> RandomAlphanumeric(size_t n);

// A random version-4 UUID in canonical text form ("5e61e30f-8bfe-44cb-8627-80c84aab232c").
absl::StatusOr<std::string> RandomUuid();

}  // namespace ward::crypto
