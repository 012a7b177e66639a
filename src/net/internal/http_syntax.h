#pragma once

// Checks on HTTP syntax shared by the server and the client. Private to src/net.

#include <string_view>

namespace ward::net::internal {

// Whether `s` is an RFC 9110 token: the only characters allowed in a method or field name.
bool IsHttpToken(std::string_view s);

// Whether a field value is free of CR, LF and NUL (which would split or end the header).
bool IsHttpFieldValue(std::string_view value);

}  // namespace ward::net::internal
