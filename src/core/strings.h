#pragma once

// Debian 12's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW is
// 0), which does not convert from std::string_view. Ward's interfaces use std::string_view;
// wrap one with ToAbsl() where an Abseil function wants absl::string_view (absl::StrCat,
// absl::StrSplit, ...). absl::Status constructors accept std::string directly.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace ward::core {

inline absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view FromAbsl(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// Parses a whole decimal integer (optional leading '-'); nullopt for anything else.
std::optional<int64_t> ParseInt64(std::string_view text);
std::optional<uint64_t> ParseUint64(std::string_view text);

// Appends `s` to `out` as a JSON string literal, escaped as Boost.JSON's serializer does
// (quote, backslash and control characters; other bytes verbatim, so `s` should be UTF-8).
// Lets fixed-shape JSON (responses, audit records) be written without building a tree.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace ward::core
