#include "auth/approle_cidr.h"

#include <arpa/inet.h>

#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/strings.h"

namespace ward::auth {
namespace {

// The 128-bit form of an address and whether it was written as IPv4; nullopt if `text` is not an
// address.
struct Address {
  std::array<uint8_t, 16> bytes{};
  bool v4 = false;
};

std::optional<Address> ParseAddress(std::string_view text) {
  std::string s(text);
  Address a;
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(a.bytes.data() + 12, &v4, 4);
    a.v4 = true;
    return a;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(a.bytes.data(), &v6, 16);
    return a;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<Cidr> Cidr::Parse(std::string_view text) {
  auto invalid = [text] {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid CIDR block \"", core::ToAbsl(text), "\""));
  };
  size_t slash = text.find('/');
  std::optional<Address> address = ParseAddress(text.substr(0, slash));
  if (!address) return invalid();
  int max_bits = address->v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    std::string_view prefix = text.substr(slash + 1);
    std::optional<int64_t> parsed = core::ParseInt64(prefix);
    if (!parsed || prefix.empty() || prefix[0] == '-' || *parsed > max_bits) return invalid();
    bits = static_cast<int>(*parsed);
  }
  Cidr c;
  c.prefix_bits_ = address->v4 ? bits + 96 : bits;
  c.network_ = address->bytes;
  for (int i = c.prefix_bits_; i < 128; ++i) {
    c.network_[i / 8] &= static_cast<uint8_t>(~(0x80u >> (i % 8)));
  }
  c.text_ = std::string(text);
  return c;
}

bool Cidr::ContainsBytes(const std::array<uint8_t, 16>& address) const {
  for (int i = 0; i < prefix_bits_; ++i) {
    uint8_t mask = static_cast<uint8_t>(0x80u >> (i % 8));
    if ((address[i / 8] & mask) != (network_[i / 8] & mask)) return false;
  }
  return true;
}

bool Cidr::Contains(std::string_view address) const {
  std::optional<Address> a = ParseAddress(address);
  return a.has_value() && ContainsBytes(a->bytes);
}

bool Cidr::Covers(const Cidr& inner) const {
  return inner.prefix_bits_ >= prefix_bits_ && ContainsBytes(inner.network_);
}

absl::StatusOr<std::vector<Cidr>> ParseCidrs(const std::vector<std::string>& texts) {
  std::vector<Cidr> out;
  for (const std::string& t : texts) {
    absl::StatusOr<Cidr> c = Cidr::Parse(t);
    if (!c.ok()) return c.status();
    out.push_back(*std::move(c));
  }
  return out;
}

bool AddressAllowed(const std::vector<Cidr>& cidrs, std::string_view address) {
  if (cidrs.empty()) return true;
  for (const Cidr& c : cidrs) {
    if (c.Contains(address)) return true;
  }
  return false;
}

}  // namespace ward::auth
