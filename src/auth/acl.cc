#include "auth/acl.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "core/strings.h"

namespace ward::auth {
namespace {

constexpr CapabilitySet kAllCapabilities =
    CapabilityBit(Capability::kCreate) | CapabilityBit(Capability::kRead) |
    CapabilityBit(Capability::kUpdate) | CapabilityBit(Capability::kPatch) |
    CapabilityBit(Capability::kDelete) | CapabilityBit(Capability::kList) |
    CapabilityBit(Capability::kSudo) | kSubscribeBit;

// A non-exact rule that matched, described for Vault's priority comparison.
struct Candidate {
  std::string_view pattern;  // merge key (the pattern as written)
  std::string_view wc_path;  // pattern without a trailing '*'
  size_t first_wildcard;
  bool is_prefix;
  size_t wildcards;
  CapabilitySet capabilities;
};

// Vault's ordering: true if `a` has lower priority than `b`.
bool LowerPriority(const Candidate& a, const Candidate& b) {
  if (a.first_wildcard != b.first_wildcard) return a.first_wildcard < b.first_wildcard;
  if (a.is_prefix != b.is_prefix) return a.is_prefix;
  if (a.wildcards != b.wildcards) return a.wildcards > b.wildcards;
  if (a.wc_path.size() != b.wc_path.size()) return a.wc_path.size() < b.wc_path.size();
  return a.wc_path < b.wc_path;
}

bool SegmentMatches(const CompiledPolicy::WildcardRule& w, size_t i, std::string_view part) {
  const std::string& seg = w.segments[i];
  if (seg == "+" || seg == part) return true;
  return w.is_prefix && i + 1 == w.segments.size() && absl::StartsWith(core::ToAbsl(part), seg);
}

// Whether the "+" rule `w` matches the request path split into `parts`.
bool WildcardMatches(const CompiledPolicy::WildcardRule& w,
                     const std::vector<std::string_view>& parts) {
  if (parts.size() < w.segments.size()) return false;
  if (!w.is_prefix && parts.size() != w.segments.size()) return false;
  for (size_t i = 0; i < w.segments.size(); ++i) {
    if (!SegmentMatches(w, i, parts[i])) return false;
  }
  return true;
}

// Whether the "+" rule `w` reaches the mount whose path (without its trailing '/') splits into
// `mount_parts`: it names the mount or something below it.
bool WildcardReachesMount(const CompiledPolicy::WildcardRule& w,
                          const std::vector<std::string_view>& mount_parts) {
  size_t n = std::min(w.segments.size(), mount_parts.size());
  for (size_t i = 0; i < n; ++i) {
    if (!SegmentMatches(w, i, mount_parts[i])) return false;
  }
  return w.segments.size() >= mount_parts.size() || w.is_prefix;
}

bool Grants(CapabilitySet caps) { return !(caps & kDenyBit) && (caps & kAllCapabilities) != 0; }

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  for (absl::string_view s : absl::StrSplit(core::ToAbsl(path), '/')) {
    parts.push_back(core::FromAbsl(s));
  }
  return parts;
}

}  // namespace

Acl::Acl(std::shared_ptr<const PolicySet> policies, const std::vector<std::string>& policy_names)
    : snapshot_(std::move(policies)) {
  for (const std::string& name : policy_names) {
    if (name == "root") {
      root_ = true;
      continue;
    }
    if (snapshot_ == nullptr) continue;
    const CompiledPolicy* p = snapshot_->Find(name);
    if (p != nullptr && std::find(policies_.begin(), policies_.end(), p) == policies_.end()) {
      policies_.push_back(p);
    }
  }
}

CapabilitySet Acl::CapabilitiesOn(std::string_view path, bool list_operation) const {
  if (root_) return kAllCapabilities;
  // 1. Exact rules (and, for LIST, the path without its trailing '/').
  auto exact = [this](std::string_view p) -> std::optional<CapabilitySet> {
    std::optional<CapabilitySet> merged;
    for (const CompiledPolicy* policy : policies_) {
      if (auto caps = policy->Exact(p)) merged = MergeCapabilities(merged.value_or(0), *caps);
    }
    return merged;
  };
  if (auto caps = exact(path)) return *caps;
  if (list_operation && !path.empty() && path.back() == '/') {
    if (auto caps = exact(path.substr(0, path.size() - 1))) return *caps;
  }

  // 2. The longest prefix glob (merged across policies that have that same prefix).
  std::vector<Candidate> candidates;
  std::optional<std::pair<size_t, CapabilitySet>> best_prefix;
  bool any_wildcards = false;
  for (const CompiledPolicy* policy : policies_) {
    any_wildcards = any_wildcards || !policy->wildcard_rules().empty();
    auto found = policy->LongestPrefix(path);
    if (!found) continue;
    if (!best_prefix || found->first > best_prefix->first) {
      best_prefix = found;
    } else if (found->first == best_prefix->first) {
      best_prefix->second = MergeCapabilities(best_prefix->second, found->second);
    }
  }
  if (best_prefix) {
    std::string_view prefix = path.substr(0, best_prefix->first);
    candidates.push_back(Candidate{prefix, prefix, best_prefix->first, true, 0, best_prefix->second});
  }

  // 3. Segment-wildcard rules, merged by pattern, then the highest priority wins.
  if (any_wildcards) {
    std::vector<std::string_view> parts = SplitPath(path);
    for (const CompiledPolicy* policy : policies_) {
      for (const CompiledPolicy::WildcardRule& w : policy->wildcard_rules()) {
        if (!WildcardMatches(w, parts)) continue;
        auto same = std::find_if(candidates.begin() + (best_prefix ? 1 : 0), candidates.end(),
                                 [&](const Candidate& c) { return c.pattern == w.pattern; });
        if (same != candidates.end()) {
          same->capabilities = MergeCapabilities(same->capabilities, w.capabilities);
        } else {
          candidates.push_back(Candidate{w.pattern, w.wc_path, w.first_wildcard, w.is_prefix,
                                         w.wildcards, w.capabilities});
        }
      }
    }
  }
  if (candidates.empty()) return 0;
  return std::max_element(candidates.begin(), candidates.end(), LowerPriority)->capabilities;
}

bool Acl::Allowed(std::string_view path, Capability capability, bool list_operation) const {
  if (root_) return true;
  CapabilitySet caps = CapabilitiesOn(path, list_operation);
  return !(caps & kDenyBit) && (caps & CapabilityBit(capability)) != 0;
}

std::vector<std::string> Acl::CapabilityNamesOn(std::string_view path) const {
  if (root_) return {"root"};
  return CapabilityNames(CapabilitiesOn(path));
}

bool Acl::HasMountAccess(std::string_view mount_path) const {
  if (root_) return true;
  if (Grants(CapabilitiesOn(mount_path))) return true;
  // Exact and prefix rules at or below the mount, merged across policies by pattern.
  absl::flat_hash_map<std::string, CapabilitySet> exact, prefix;
  for (const CompiledPolicy* policy : policies_) {
    for (const auto& [rules, merged] : {std::pair{&policy->exact_rules(), &exact},
                                        std::pair{&policy->prefix_rules(), &prefix}}) {
      for (const auto& [pattern, caps] : *rules) {
        if (!absl::StartsWith(pattern, core::ToAbsl(mount_path))) continue;
        auto [it, inserted] = merged->try_emplace(pattern, caps);
        if (!inserted) it->second = MergeCapabilities(it->second, caps);
      }
    }
  }
  for (const auto* merged : {&exact, &prefix}) {
    for (const auto& [pattern, caps] : *merged) {
      if (Grants(caps)) return true;
    }
  }
  // Segment-wildcard rules naming the mount or something below it.
  std::string_view trimmed = mount_path;
  while (!trimmed.empty() && trimmed.back() == '/') trimmed.remove_suffix(1);
  std::vector<std::string_view> mount_parts = SplitPath(trimmed);
  absl::flat_hash_map<std::string, CapabilitySet> wildcard;
  for (const CompiledPolicy* policy : policies_) {
    for (const CompiledPolicy::WildcardRule& w : policy->wildcard_rules()) {
      if (!WildcardReachesMount(w, mount_parts)) continue;
      auto [it, inserted] = wildcard.try_emplace(w.pattern, w.capabilities);
      if (!inserted) it->second = MergeCapabilities(it->second, w.capabilities);
    }
  }
  for (const auto& [pattern, caps] : wildcard) {
    if (Grants(caps)) return true;
  }
  return false;
}

bool IsRootProtected(std::string_view path) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  static constexpr std::string_view kExact[] = {
      "sys/seal",        "sys/step-down",   "sys/rotate",
      "sys/audit",       "sys/raw",         "sys/remount",
      "sys/config/cors", "auth/token/revoke-orphan",
  };
  // Prefixes: the path must continue past them.
  static constexpr std::string_view kPrefixes[] = {
      "sys/audit/",
      "sys/auth/",
      "sys/raw/",
      "sys/config/auditing/",
      "sys/config/ui/headers/",
      "sys/plugins/catalog/",
      "sys/revoke-prefix/",
      "sys/revoke-force/",
      "sys/leases/revoke-prefix/",
      "sys/leases/revoke-force/",
      "sys/leases/lookup/",
      "auth/token/accessors",
      "auth/token/revoke-orphan/",
  };
  for (std::string_view e : kExact) {
    if (path == e) return true;
  }
  for (std::string_view p : kPrefixes) {
    if (path.size() >= p.size() && path.substr(0, p.size()) == p) return true;
  }
  return false;
}

}  // namespace ward::auth
