#include "net/http.h"

#include "absl/strings/match.h"
#include "core/strings.h"

namespace ward::net {

std::string_view HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::string_view HttpResponse::Header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (absl::EqualsIgnoreCase(core::ToAbsl(field), core::ToAbsl(name))) return value;
  }
  return {};
}

}  // namespace ward::net
