#pragma once

// Shamir secret sharing over GF(2^8) (the AES field, reduction polynomial x^8+x^4+x^3+x+1).
//
// Each byte of the secret is the constant term of its own random polynomial of degree
// threshold-1; a share holds that polynomial evaluated at one x coordinate for every byte.
// Share layout: y values (one per secret byte, in secret order) followed by the x coordinate
// (one byte, non-zero). This is the layout HashiCorp Vault's shamir package uses, so shares are
// secret-length + 1 bytes.
//
// Any `threshold` distinct shares of one split recover the secret; fewer reveal nothing about
// it. Combine cannot detect shares from different splits or too few shares: it then returns
// a wrong secret, which the caller must detect (the barrier does, by failing to decrypt).
//
// Field arithmetic runs in constant time (no table lookups indexed by secret data). All
// functions are thread-safe.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/secure_bytes.h"

namespace ward::crypto {

inline constexpr int kShamirMaxParts = 255;

// Splits `secret` into `parts` shares, any `threshold` of which recover it. x coordinates are
// distinct, non-zero and chosen at random.
// Errors: kInvalidArgument unless 1 <= threshold <= parts <= 255 and `secret` is non-empty;
// kInternal if the random generator fails.
absl::StatusOr<std::vector<core::SecureBytes>> ShamirSplit(const core::SecureBytes& secret,
                                                           int parts, int threshold);

// Recovers the secret from shares of one split (Lagrange interpolation at x = 0).
// Errors: kInvalidArgument if `shares` is empty, a share is shorter than 2 bytes, the shares
// differ in length, a share has x coordinate 0, or two shares have the same x coordinate.
absl::StatusOr<core::SecureBytes> ShamirCombine(const std::vector<core::SecureBytes>& shares);

namespace internal {
// GF(2^8) arithmetic, exposed for tests.
uint8_t GfAdd(uint8_t a, uint8_t b);
uint8_t GfMul(uint8_t a, uint8_t b);
// Multiplicative inverse; GfInv(0) is 0.
uint8_t GfInv(uint8_t a);
}  // namespace internal

}  // namespace ward::crypto
