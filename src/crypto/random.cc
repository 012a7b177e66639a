#include "crypto/random.h"

#include <cstdio>

#include <openssl/rand.h>

#include "crypto/openssl_handles.h"

namespace ward::crypto {

absl::StatusOr<core::SecureBytes> RandomBytes(size_t n) {
  core::SecureBytes out(n);
  if (n > 0 && RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
    return absl::InternalError("random generator failed: " + LastOpenSslError());
  }
  return out;
}

absl::StatusOr<std::string> RandomAlphanumeric(size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  static constexpr unsigned kSize = sizeof(kAlphabet) - 1;  // 62
  // Reject bytes >= 248 (4 * 62) so every character is equally likely.
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    auto bytes = RandomBytes(n * 2);
    if (!bytes.ok()) return bytes.status();
    for (size_t i = 0; i < bytes->size() && out.size() < n; ++i) {
      uint8_t b = bytes->data()[i];
      if (b < 248) out.push_back(kAlphabet[b % kSize]);
    }
  }
  return out;
}

absl::StatusOr<std::string> RandomUuid() {
  auto bytes = RandomBytes(16);
  if (!bytes.ok()) return bytes.status();
  uint8_t* b = bytes->data();
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char text[37];
  std::snprintf(text, sizeof(text),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return std::string(text);
}

}  // namespace ward::crypto
