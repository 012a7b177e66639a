#pragma once

// Helpers shared by the audit module's tests.

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "audit/keys.h"
#include "core/secure_bytes.h"

namespace ward::audit::testing {

inline Hasher TestHasher() { return Hasher(core::SecureBytes(std::string(32, 'k'))); }

inline CheckpointSigner TestSigner(char fill = 's') {
  return *CheckpointSigner::Create(core::SecureBytes(std::string(32, fill)));
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

inline std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

}  // namespace ward::audit::testing
