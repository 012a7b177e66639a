#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ward::core {

// Owns secret bytes (keys, tokens, plaintext secret values) and zeroes them when destroyed,
// moved from or cleared. Move-only so a secret is never copied by accident; call Copy() where
// a second owner is really needed. Not thread-safe.
class SecureBytes {
 public:
  SecureBytes() = default;
  explicit SecureBytes(size_t size) : bytes_(size, 0) {}
  explicit SecureBytes(std::string_view data) : bytes_(data.begin(), data.end()) {}
  SecureBytes(const uint8_t* data, size_t size) : bytes_(data, data + size) {}
  ~SecureBytes() { Clear(); }

  SecureBytes(SecureBytes&& other) noexcept : bytes_(std::move(other.bytes_)) { other.Clear(); }
  SecureBytes& operator=(SecureBytes&& other) noexcept;
  SecureBytes(const SecureBytes&) = delete;
  SecureBytes& operator=(const SecureBytes&) = delete;

  SecureBytes Copy() const { return SecureBytes(data(), size()); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  void resize(size_t n);

  // A view of the bytes as characters; valid while this object is alive and unchanged.
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
  }

  // Zeroes and empties the buffer.
  void Clear();

  bool operator==(const SecureBytes& other) const;

 private:
  std::vector<uint8_t> bytes_;
};

// Overwrites `size` bytes at `data` with zeros in a way the compiler may not elide.
void SecureZero(void* data, size_t size);

// Zeroes a std::string's contents (for secrets that had to pass through one).
inline void SecureZero(std::string& s) { SecureZero(s.data(), s.size()); }

}  // namespace ward::core
