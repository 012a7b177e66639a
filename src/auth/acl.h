#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/policy.h"

namespace ward::auth {

// The access a token has: its policies, looked up once in a policy snapshot, evaluated with
// Vault's rules (docs/policies.md):
//  - the built-in "root" policy allows everything;
//  - an exact rule for the path wins; for a LIST (path ending in '/'), an exact rule for the
//    path without the trailing '/' comes next;
//  - otherwise, among the longest matching prefix glob and every matching "+" rule, the one
//    with the highest priority wins: the first wildcard ('+' or '*') later in the pattern;
//    then not ending in '*'; then fewer '+' segments; then longer; then lexically larger;
//  - rules with the same pattern in several of the token's policies are merged (capabilities
//    unioned; a "deny" in any of them makes the merged rule deny);
//  - a winning rule with "deny", or no matching rule, grants nothing.
// Policy names the snapshot does not hold (deleted policies) grant nothing.
//
// Cheap to build (no parsing; one lookup per policy name) and immutable; thread-safe. Holds
// the snapshot alive, so a policy write never changes an Acl already built.
class Acl {
 public:
  Acl(std::shared_ptr<const PolicySet> policies, const std::vector<std::string>& policy_names);

  bool IsRoot() const { return root_; }

  // The capabilities the winning rule grants on `path` (a request path without a leading
  // '/'), kDenyBit for a deny, 0 if no rule matches. `list_operation` enables the LIST fallback
  // to an exact rule without the trailing '/'. For root: every capability bit.
  CapabilitySet CapabilitiesOn(std::string_view path, bool list_operation = false) const;

  // Whether `capability` is granted on `path` (see CapabilitiesOn).
  bool Allowed(std::string_view path, Capability capability, bool list_operation = false) const;

  // What sys/capabilities answers for `path`: ["root"] for root tokens, otherwise the
  // granted capability names sorted, or ["deny"].
  std::vector<std::string> CapabilityNamesOn(std::string_view path) const;

  // Vault's mount-access check (sys/internal/ui/mounts/<path>): whether any rule grants a
  // non-deny capability on `mount_path` (e.g. "secret/") or anywhere below it.
  bool HasMountAccess(std::string_view mount_path) const;

 private:
  std::shared_ptr<const PolicySet> snapshot_;
  std::vector<const CompiledPolicy*> policies_;  // owned by snapshot_
  bool root_ = false;
};

// Whether `path` is root-protected, i.e. needs "sudo" on top of the operation's capability
// (Vault's root paths that Ward has or reserves: sys/seal, sys/step-down, sys/rotate,
// sys/audit[/...], sys/auth/..., sys/raw[/...], sys/remount, sys/config/cors,
// sys/config/auditing/..., sys/config/ui/headers/..., sys/plugins/catalog/...,
// sys/revoke-prefix/..., sys/revoke-force/..., sys/leases/revoke-prefix/...,
// sys/leases/revoke-force/..., sys/leases/lookup/..., auth/token/accessors...,
// auth/token/revoke-orphan[/...]). A trailing '/' is ignored. Pure; thread-safe.
bool IsRootProtected(std::string_view path);

}  // namespace ward::auth
