// Fuzzes Vault's ACL policy language as Ward parses it (auth/policy.h): the HCL front end and
// the JSON one (chosen by a leading '{'), the compiler, and ACL checks against the result.
// Policy text arrives from any token allowed to write sys/policies/acl/<name>.
//
// Input: policy text (seeds are real policies, both forms). Invariants (abort on violation):
//   - ParsePolicy and CompiledPolicy::Compile agree on success, and every error is
//     kInvalidArgument (the documented code);
//   - a rule's capability set with kDenyBit set has no other bit (policy.h's contract);
//   - a compiled policy grants, on each rule's own path, nothing when the merged rule denies;
//   - nothing throws.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "auth/acl.h"
#include "auth/policy.h"

namespace {

using ward::auth::Capability;
using ward::auth::CapabilitySet;

[[noreturn]] void Fail(std::string_view what) {
  std::fprintf(stderr, "policy_fuzzer: invariant violated: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

constexpr Capability kAll[] = {Capability::kCreate, Capability::kRead,   Capability::kUpdate,
                               Capability::kPatch,  Capability::kDelete, Capability::kList,
                               Capability::kSudo};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto rules = ward::auth::ParsePolicy(text);
  auto compiled = ward::auth::CompiledPolicy::Compile("fuzz", text);
  if (rules.ok() != compiled.ok()) Fail("ParsePolicy and Compile disagree");
  if (!rules.ok()) {
    if (rules.status().code() != absl::StatusCode::kInvalidArgument) Fail("error is not kInvalidArgument");
    if (compiled.status() != rules.status()) Fail("ParsePolicy and Compile give different errors");
    return 0;
  }
  for (const ward::auth::PathRule& rule : *rules) {
    if ((rule.capabilities & ward::auth::kDenyBit) && rule.capabilities != ward::auth::kDenyBit) {
      Fail("a deny rule carries other capabilities");
    }
    (void)ward::auth::CapabilityNames(rule.capabilities);
  }

  // Check every rule's path (and a few neighbours) through an Acl holding just this policy.
  auto set = std::make_shared<ward::auth::PolicySet>();
  set->policies["fuzz"] = *compiled;
  ward::auth::Acl acl(set, {"fuzz", "default"});
  for (const ward::auth::PathRule& rule : *rules) {
    std::string path = rule.path;
    std::string concrete = path;
    for (char& c : concrete) {
      if (c == '+' || c == '*') c = 'x';
    }
    for (const std::string& p : {path, concrete, concrete + "/y", path + "/"}) {
      CapabilitySet caps = acl.CapabilitiesOn(p, false);
      CapabilitySet list_caps = acl.CapabilitiesOn(p, true);
      for (CapabilitySet c : {caps, list_caps}) {
        if ((c & ward::auth::kDenyBit) && c != ward::auth::kDenyBit) Fail("Acl: deny with other bits");
      }
      for (Capability cap : kAll) {
        bool allowed = acl.Allowed(p, cap, false);
        if (allowed != ((caps & ward::auth::CapabilityBit(cap)) != 0)) {
          Fail("Allowed disagrees with CapabilitiesOn");
        }
      }
      (void)acl.CapabilityNamesOn(p);
      (void)acl.HasMountAccess(p);
    }
    if (!rule.templated && rule.path.find_first_of("+*") == std::string::npos) {
      std::optional<CapabilitySet> exact = (*compiled)->Exact(rule.path);
      if (!exact.has_value()) Fail("an exact rule is missing from the compiled policy");
      if ((*exact & ward::auth::kDenyBit) && acl.CapabilitiesOn(rule.path) != ward::auth::kDenyBit) {
        Fail("an exact deny rule does not deny its own path");
      }
    }
  }
  return 0;
}
