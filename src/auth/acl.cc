#include "auth/acl.h"

#include <string_view>

namespace ward::auth {
namespace {

// One rule of the built-in "default" policy. A path ending in '*' matches any path with the
// text before the '*' as prefix (Vault's glob); otherwise the match is exact.
struct Rule {
  std::string_view path;
  bool read;
  bool update;
};

constexpr Rule kDefaultPolicy[] = {
    {"auth/token/lookup-self", true, true},    {"auth/token/renew-self", false, true},
    {"auth/token/revoke-self", false, true},   {"sys/capabilities-self", false, true},
    {"sys/internal/ui/mounts/*", true, false},
};

bool Matches(std::string_view pattern, std::string_view path) {
  if (!pattern.empty() && pattern.back() == '*') {
    return path.substr(0, pattern.size() - 1) == pattern.substr(0, pattern.size() - 1);
  }
  return path == pattern;
}

bool DefaultAllows(std::string_view path, Capability capability) {
  for (const Rule& rule : kDefaultPolicy) {
    if (!Matches(rule.path, path)) continue;
    if (capability == Capability::kRead && rule.read) return true;
    if (capability == Capability::kUpdate && rule.update) return true;
  }
  return false;
}

}  // namespace

std::string_view CapabilityName(Capability capability) {
  switch (capability) {
    case Capability::kCreate:
      return "create";
    case Capability::kRead:
      return "read";
    case Capability::kUpdate:
      return "update";
    case Capability::kPatch:
      return "patch";
    case Capability::kDelete:
      return "delete";
    case Capability::kList:
      return "list";
    case Capability::kSudo:
      return "sudo";
  }
  return "";
}

bool Allowed(const TokenEntry& entry, std::string_view path, Capability capability) {
  if (entry.HasPolicy("root")) return true;
  return entry.HasPolicy("default") && DefaultAllows(path, capability);
}

}  // namespace ward::auth
