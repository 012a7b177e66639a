#include "core/secure_bytes.h"

#include <string.h>

namespace ward::core {

void SecureZero(void* data, size_t size) {
  if (data != nullptr && size > 0) ::explicit_bzero(data, size);
}

SecureBytes& SecureBytes::operator=(SecureBytes&& other) noexcept {
  if (this != &other) {
    Clear();
    bytes_ = std::move(other.bytes_);
    other.Clear();
  }
  return *this;
}

void SecureBytes::resize(size_t n) {
  if (n < bytes_.size()) SecureZero(bytes_.data() + n, bytes_.size() - n);
  if (n > bytes_.capacity()) {
    // Growing may reallocate; copy into a fresh buffer so the old one can be wiped.
    std::vector<uint8_t> grown(n, 0);
    std::copy(bytes_.begin(), bytes_.end(), grown.begin());
    Clear();
    bytes_ = std::move(grown);
    return;
  }
  bytes_.resize(n, 0);
}

void SecureBytes::Clear() {
  SecureZero(bytes_.data(), bytes_.capacity());
  bytes_.clear();
}

bool SecureBytes::operator==(const SecureBytes& other) const {
  return bytes_ == other.bytes_;
}

}  // namespace ward::core
