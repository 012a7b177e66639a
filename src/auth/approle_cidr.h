#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ward::auth {

// An IPv4 or IPv6 network ("10.0.0.0/8", "2001:db8::/32"), for AppRole's CIDR bindings. IPv4
// networks are held as IPv4-mapped IPv6 ("::ffff:a.b.c.d", prefix + 96) so that one comparison
// serves both families and a v4-mapped peer address matches a v4 network. A value type;
// thread-compatible.
class Cidr {
 public:
  // Parses "address/prefix" or a bare address (a single host: /32 or /128). Host bits beyond the
  // prefix are allowed and ignored, as Go's net.ParseCIDR does.
  // Errors: kInvalidArgument naming the text for anything else.
  static absl::StatusOr<Cidr> Parse(std::string_view text);

  // Whether `address` (an IP address as text, e.g. HttpRequest::remote_address) is inside this
  // network. False for text that is not an IP address.
  bool Contains(std::string_view address) const;

  // Whether every address of `inner` is inside this network.
  bool Covers(const Cidr& inner) const;

  // The text it was parsed from.
  const std::string& text() const { return text_; }

 private:
  Cidr() = default;
  bool ContainsBytes(const std::array<uint8_t, 16>& address) const;

  std::array<uint8_t, 16> network_{};
  int prefix_bits_ = 0;  // of the 128-bit form
  std::string text_;
};

// Parses every entry. Errors: kInvalidArgument for the first malformed one.
absl::StatusOr<std::vector<Cidr>> ParseCidrs(const std::vector<std::string>& texts);

// Whether `address` is inside at least one of `cidrs`; true when `cidrs` is empty (no binding).
bool AddressAllowed(const std::vector<Cidr>& cidrs, std::string_view address);

}  // namespace ward::auth
