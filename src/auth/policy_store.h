#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "auth/acl.h"
#include "auth/policy.h"
#include "barrier/barrier.h"

namespace ward::auth {

// Storage prefix of ACL policies: one record per policy at "core/policy/<name>", a JSON object
// {"name": "<name>", "policy": "<text as written>"} encrypted by the barrier
// (docs/policies.md).
inline constexpr std::string_view kPolicyStoragePrefix = "core/policy/";

// Vault's "default" policy text, written at first unseal if no "default" policy is stored.
extern const std::string_view kDefaultPolicyText;

// A policy as stored.
struct StoredPolicy {
  std::string name;
  std::string text;  // "" for the built-in "root" policy
};

// Ward's ACL policy store (Vault's sys/policies/acl): named policies persisted through the
// barrier, each compiled once when loaded or written. Requests read an immutable snapshot
// (Snapshot, AclFor), so a request never parses a policy and never waits for a writer; a write
// publishes a new snapshot that every later request, for every existing token, sees at once.
//
// Built-in policies: "root" (allows everything; never stored; cannot be written or deleted)
// and "default" (stored like any other; created with kDefaultPolicyText if absent; can be
// rewritten but not deleted). Names are trimmed and lower-cased, as Vault does.
//
// Thread-safe. Snapshot/AclFor/Get/List never block on I/O; Put and Delete are serialised
// and block on a barrier commit. `barrier` is borrowed and must outlive the store. The store
// assumes it is the only writer of kPolicyStoragePrefix in its storage.
class PolicyStore {
 public:
  // Loads and compiles every stored policy, writing "default" if it is absent.
  // REQUIRES: the barrier is unsealed.
  // Errors: barrier errors (kUnavailable if sealed, kDataLoss if a value does not
  //         authenticate); kDataLoss if a stored record is malformed or no longer parses.
  static absl::StatusOr<std::unique_ptr<PolicyStore>> Create(barrier::Barrier& barrier);

  PolicyStore(const PolicyStore&) = delete;
  PolicyStore& operator=(const PolicyStore&) = delete;

  // The current snapshot of compiled policies. Never null.
  std::shared_ptr<const PolicySet> Snapshot() const;

  // An Acl for a token with `policy_names`, against the current snapshot.
  Acl AclFor(const std::vector<std::string>& policy_names) const;

  // Returns policy `name` as written ("root": empty text).
  // Errors: kNotFound if there is no such policy.
  absl::StatusOr<StoredPolicy> Get(std::string_view name) const;

  // The stored policy names, sorted, then "root" (Vault lists root last).
  std::vector<std::string> List() const;

  // Parses, compiles and stores `text` as policy `name` (created or replaced); the new
  // snapshot is published after the commit succeeds.
  // Errors: kInvalidArgument "policy name must be provided in the URL" for an empty name,
  //         "policy name must not contain '/'", parse errors as ParsePolicy, and
  //         "cannot update root policy" (checked after parsing, as Vault does);
  //         barrier errors (nothing changes).
  absl::Status Put(std::string_view name, std::string_view text);

  // Deletes policy `name`; OK if it does not exist. Tokens keep the name in their policy list;
  // it grants nothing until a policy with that name is written again.
  // Errors: kInvalidArgument "cannot delete root policy" / "cannot delete default policy";
  //         barrier errors (nothing changes).
  absl::Status Delete(std::string_view name);

  // Trims and lower-cases a policy name (Vault's sanitizeName).
  static std::string NormaliseName(std::string_view name);

 private:
  explicit PolicyStore(barrier::Barrier& barrier);
  void Publish(std::shared_ptr<const PolicySet> set);

  barrier::Barrier& barrier_;
  // Serialises Put/Delete, including their barrier commits.
  absl::Mutex write_mu_;
  // Swapped atomically by writers (holding write_mu_); loaded lock-free by requests.
  std::atomic<std::shared_ptr<const PolicySet>> snapshot_;
};

}  // namespace ward::auth
