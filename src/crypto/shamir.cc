#include "crypto/shamir.h"

#include <array>
#include <string>

#include "crypto/random.h"

namespace ward::crypto {
namespace internal {

uint8_t GfAdd(uint8_t a, uint8_t b) { return a ^ b; }

// Shift-and-add multiplication, reducing by x^8+x^4+x^3+x+1 (0x11b) as the product grows.
// Branch-free: each step selects with masks, so time does not depend on the operands.
uint8_t GfMul(uint8_t a, uint8_t b) {
  uint8_t product = 0;
  for (int i = 0; i < 8; ++i) {
    uint8_t take = static_cast<uint8_t>(0 - (b & 1));
    product ^= a & take;
    uint8_t carry = static_cast<uint8_t>(0 - (a >> 7));
    a = static_cast<uint8_t>((a << 1) ^ (0x1b & carry));
    b >>= 1;
  }
  return product;
}

// a^254 = a^-1 in GF(2^8) (the multiplicative group has order 255); maps 0 to 0.
// 254 = 2 + 4 + ... + 128, so multiply together the seven successive squares of a.
uint8_t GfInv(uint8_t a) {
  uint8_t square = a;
  uint8_t result = 1;
  for (int i = 0; i < 7; ++i) {
    square = GfMul(square, square);
    result = GfMul(result, square);
  }
  return result;
}

}  // namespace internal

namespace {

using internal::GfInv;
using internal::GfMul;

// Hands out random bytes from OpenSSL in batches.
class RandomPool {
 public:
  absl::StatusOr<uint8_t> Next() {
    if (pos_ == pool_.size()) {
      absl::StatusOr<core::SecureBytes> fresh = RandomBytes(64);
      if (!fresh.ok()) return fresh.status();
      pool_ = std::move(*fresh);
      pos_ = 0;
    }
    return pool_.data()[pos_++];
  }

  // A uniformly distributed value in [0, bound), 1 <= bound <= 256, by rejection sampling.
  absl::StatusOr<unsigned> Below(unsigned bound) {
    const unsigned limit = 256 - 256 % bound;
    while (true) {
      absl::StatusOr<uint8_t> b = Next();
      if (!b.ok()) return b.status();
      if (*b < limit) return *b % bound;
    }
  }

 private:
  core::SecureBytes pool_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<core::SecureBytes>> ShamirSplit(const core::SecureBytes& secret,
                                                           int parts, int threshold) {
  if (secret.empty()) return absl::InvalidArgumentError("cannot split an empty secret");
  if (parts < 1 || parts > kShamirMaxParts) {
    return absl::InvalidArgumentError("parts must be between 1 and 255");
  }
  if (threshold < 1 || threshold > parts) {
    return absl::InvalidArgumentError("threshold must be between 1 and parts");
  }

  // Distinct non-zero x coordinates: the first `parts` entries of a random permutation of
  // 1..255 (partial Fisher-Yates).
  RandomPool random;
  std::array<uint8_t, 255> xs;
  for (int i = 0; i < 255; ++i) xs[i] = static_cast<uint8_t>(i + 1);
  for (int i = 0; i < parts; ++i) {
    absl::StatusOr<unsigned> offset = random.Below(static_cast<unsigned>(255 - i));
    if (!offset.ok()) return offset.status();
    std::swap(xs[i], xs[i + *offset]);
  }

  // Coefficients 1..threshold-1 of every byte's polynomial; coefficient 0 is the secret byte.
  const size_t degree = static_cast<size_t>(threshold - 1);
  absl::StatusOr<core::SecureBytes> coefficients = RandomBytes(secret.size() * degree);
  if (!coefficients.ok()) return coefficients.status();

  std::vector<core::SecureBytes> shares;
  shares.reserve(parts);
  for (int p = 0; p < parts; ++p) {
    const uint8_t x = xs[p];
    core::SecureBytes share(secret.size() + 1);
    for (size_t b = 0; b < secret.size(); ++b) {
      const uint8_t* c = coefficients->data() + b * degree;  // c[k] multiplies x^(k+1)
      // Horner: ((c[d-1] x + c[d-2]) x + ... + c[0]) x + secret[b].
      uint8_t y = 0;
      for (size_t k = degree; k > 0; --k) y = GfMul(y, x) ^ c[k - 1];
      y = GfMul(y, x) ^ secret.data()[b];
      share.data()[b] = y;
    }
    share.data()[secret.size()] = x;
    shares.push_back(std::move(share));
  }
  return shares;
}

absl::StatusOr<core::SecureBytes> ShamirCombine(const std::vector<core::SecureBytes>& shares) {
  if (shares.empty()) return absl::InvalidArgumentError("no shares to combine");
  const size_t share_size = shares.front().size();
  if (share_size < 2) return absl::InvalidArgumentError("share is too short");
  if (shares.size() > static_cast<size_t>(kShamirMaxParts)) {
    return absl::InvalidArgumentError("more than 255 shares");
  }
  std::array<bool, 256> seen{};
  std::vector<uint8_t> xs;
  xs.reserve(shares.size());
  for (const core::SecureBytes& share : shares) {
    if (share.size() != share_size) {
      return absl::InvalidArgumentError("shares have different lengths");
    }
    const uint8_t x = share.data()[share_size - 1];
    if (x == 0) return absl::InvalidArgumentError("share has x coordinate 0");
    if (seen[x]) return absl::InvalidArgumentError("duplicate share");
    seen[x] = true;
    xs.push_back(x);
  }

  // secret = sum_i y_i * L_i(0), where L_i(0) = prod_{j != i} x_j / (x_j - x_i) and
  // subtraction in GF(2^8) is XOR.
  const size_t secret_size = share_size - 1;
  core::SecureBytes secret(secret_size);
  for (size_t i = 0; i < shares.size(); ++i) {
    uint8_t basis = 1;
    for (size_t j = 0; j < shares.size(); ++j) {
      if (j == i) continue;
      basis = GfMul(basis, GfMul(xs[j], GfInv(xs[j] ^ xs[i])));
    }
    for (size_t b = 0; b < secret_size; ++b) {
      secret.data()[b] ^= GfMul(shares[i].data()[b], basis);
    }
  }
  return secret;
}

}  // namespace ward::crypto
