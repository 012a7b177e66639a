#include "net/internal/http_syntax.h"

#include "absl/strings/ascii.h"

namespace ward::net::internal {

bool IsHttpToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool IsHttpFieldValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

size_t HeaderEnd(std::string_view data, size_t from) {
  constexpr std::string_view kEnd = "\r\n\r\n";
  // The terminator may straddle the bytes already scanned and the new ones.
  const size_t start = from > kEnd.size() - 1 ? from - (kEnd.size() - 1) : 0;
  const size_t at = data.find(kEnd, start);
  return at == std::string_view::npos ? at : at + kEnd.size();
}

bool HasObsFold(std::string_view header) {
  for (size_t at = header.find("\r\n"); at != std::string_view::npos;
       at = header.find("\r\n", at + 2)) {
    if (at + 2 < header.size() && (header[at + 2] == ' ' || header[at + 2] == '\t')) return true;
  }
  return false;
}

}  // namespace ward::net::internal
