#pragma once

// Vault's ACL policy language: parsing (HCL and JSON forms) and the compiled, immutable form
// of one policy that request-time checks run against. The format is described in
// docs/policies.md.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace ward::auth {

// The capabilities a request can need (one per operation, plus sudo for root-protected paths).
enum class Capability { kCreate, kRead, kUpdate, kPatch, kDelete, kList, kSudo };

// The lowercase name Vault uses for `capability` ("create", "read", ..., "sudo").
std::string_view CapabilityName(Capability capability);

// A set of capabilities as a bitmap. kDenyBit set means "deny": every other bit is then clear
// and the set grants nothing.
using CapabilitySet = uint32_t;
inline constexpr CapabilitySet kDenyBit = 1u << 0;
inline constexpr CapabilitySet CapabilityBit(Capability capability) {
  return 1u << (static_cast<uint32_t>(capability) + 1);
}
// Vault's "subscribe" (event subscriptions): accepted in policies, checked by no Ward route yet.
inline constexpr CapabilitySet kSubscribeBit = 1u << 8;

// Combines the capabilities of two rules with the same path, as Vault merges policies: a deny
// on either side wins outright, otherwise the union.
inline constexpr CapabilitySet MergeCapabilities(CapabilitySet a, CapabilitySet b) {
  return ((a | b) & kDenyBit) ? kDenyBit : (a | b);
}

// Vault's capability names for `set`, sorted bytewise; ["deny"] for a deny or empty set.
std::vector<std::string> CapabilityNames(CapabilitySet set);

// One `path "..." { ... }` block as written.
struct PathRule {
  std::string path;  // as written, without a leading '/'; may end in '*' and contain '+'
  CapabilitySet capabilities = 0;
  // The path contains a "{{...}}" identity template. Ward has no identity store, so such a
  // rule can never render and is left out of matching (as Vault does for a token without
  // an entity).
  bool templated = false;
};

// Parses policy text in Vault's HCL form (`path "secret/*" { capabilities = ["read"] }`,
// `#`, `//` and `/* */` comments, trailing commas, the deprecated `policy = "read"` shorthand)
// or its JSON form (`{"path": {"secret/*": {"capabilities": ["read"]}}}`, recognised by a
// leading '{'). Returns the rules in the order written. Pure function; thread-safe.
// Errors (all kInvalidArgument):
//   "policy parse error at line L, column C: <what>" for a syntax error (JSON errors too);
//   "path \"P\": invalid capability \"X\"" for an unknown capability;
//   "path \"P\": invalid policy \"X\"" for an unknown shorthand;
//   "path \"P\": invalid use of wildcards ('+*' is forbidden)";
//   "invalid key \"K\" on line L" for a key Vault's policy language does not have;
//   "path \"P\": K is not supported by Ward" for parameter constraints, wrapping TTL bounds,
//   control groups and MFA, which Ward cannot enforce (accepting them would grant more than
//   the policy says).
absl::StatusOr<std::vector<PathRule>> ParsePolicy(std::string_view text);

// One policy, parsed and compiled into lookup structures once, when it is written.
// Immutable and thread-safe; shared through std::shared_ptr<const CompiledPolicy>.
//
// Rules with the same path within the policy are merged with MergeCapabilities. Paths fall in
// three groups, as in Vault: exact paths, prefix globs (ending in '*', no '+' segment), and
// segment-wildcard paths (containing a "+" segment, optionally ending in '*').
class CompiledPolicy {
 public:
  // A rule with at least one "+" segment.
  struct WildcardRule {
    std::string pattern;                // the full path as written (merge key)
    std::string wc_path;                // pattern without the trailing '*'
    std::vector<std::string> segments;  // wc_path split on '/'
    bool is_prefix = false;             // pattern ends in '*'
    size_t first_wildcard = 0;          // index of the first '+' in the pattern
    size_t wildcards = 0;               // number of "+" segments
    CapabilitySet capabilities = 0;
  };

  // Parses and compiles `text`. Errors: as ParsePolicy.
  static absl::StatusOr<std::shared_ptr<const CompiledPolicy>> Compile(std::string name,
                                                                       std::string text);

  const std::string& name() const { return name_; }
  const std::string& text() const { return text_; }

  // The merged capabilities of the exact rule for `path`, or nullopt if there is none.
  std::optional<CapabilitySet> Exact(std::string_view path) const;
  // The longest prefix glob covering `path`: (prefix length, capabilities), or nullopt.
  std::optional<std::pair<size_t, CapabilitySet>> LongestPrefix(std::string_view path) const;
  const std::vector<WildcardRule>& wildcard_rules() const { return wildcard_; }
  // Exact paths and glob prefixes (without '*'), for mount-access checks.
  const absl::flat_hash_map<std::string, CapabilitySet>& exact_rules() const { return exact_; }
  const absl::flat_hash_map<std::string, CapabilitySet>& prefix_rules() const { return prefix_; }

 private:
  CompiledPolicy(std::string name, std::string text) : name_(std::move(name)), text_(std::move(text)) {}

  std::string name_;
  std::string text_;
  absl::flat_hash_map<std::string, CapabilitySet> exact_;
  absl::flat_hash_map<std::string, CapabilitySet> prefix_;  // keyed by the prefix without '*'
  std::vector<size_t> prefix_lengths_;                       // distinct keys' lengths, descending
  std::vector<WildcardRule> wildcard_;
};

// An immutable snapshot of every stored policy, by name ("root" is never in it: it is built
// in). Shared as std::shared_ptr<const PolicySet>; a write builds a new set.
struct PolicySet {
  absl::flat_hash_map<std::string, std::shared_ptr<const CompiledPolicy>> policies;

  // The policy `name`, or nullptr.
  const CompiledPolicy* Find(std::string_view name) const;
};

}  // namespace ward::auth
