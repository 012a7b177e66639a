#pragma once

// Checks on HTTP syntax shared by the server and the client. Private to src/net.

#include <cstddef>
#include <string_view>

namespace ward::net::internal {

// Whether `s` is an RFC 9110 token: the only characters allowed in a method or field name.
bool IsHttpToken(std::string_view s);

// Whether a field value is free of CR, LF and NUL (which would split or end the header).
bool IsHttpFieldValue(std::string_view value);

// The length of the request or response header at the start of `data` (start line and fields up
// to and including the empty line), or std::string_view::npos if `data` does not hold all of it
// yet. `from` is where an earlier call stopped looking (its data.size()), so that a header that
// arrives a byte at a time is scanned once, not once per byte.
size_t HeaderEnd(std::string_view data, size_t from = 0);

// Whether a complete header (as measured by HeaderEnd) folds a line: CRLF followed by a space or
// tab (RFC 9112 "obs-fold"). Beast unfolds such lines silently; an intermediary may not, which
// lets one request mean two things, so the server refuses them (RFC 9112 section 5.2 allows
// that).
bool HasObsFold(std::string_view header);

}  // namespace ward::net::internal
