#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "barrier/barrier.h"
#include "core/clock.h"
#include "core/secure_bytes.h"
#include "crypto/hmac.h"

namespace ward::auth {

// One AppRole role, as auth/<mount>/role/<name> reads it (Vault's parameter names).
struct AppRole {
  std::string name;
  // Public half of the login credential; unique within the mount. A UUID unless set.
  std::string role_id;
  bool bind_secret_id = true;                      // whether login needs a secret-id
  std::vector<std::string> secret_id_bound_cidrs;  // login source must be inside one
  // Login source must be inside one, and so must every later use of the issued token (the
  // token carries them as TokenEntry::bound_cidrs), as in Vault (docs/approle.md).
  std::vector<std::string> token_bound_cidrs;
  int64_t secret_id_num_uses = 0;                       // default for new secret-ids; 0 = unlimited
  absl::Duration secret_id_ttl = absl::ZeroDuration();  // default for new secret-ids; 0 = none
  std::vector<std::string> token_policies;              // as given (the token store sanitises)
  absl::Duration token_ttl = absl::ZeroDuration();      // 0 = the token store's default
  absl::Duration token_max_ttl = absl::ZeroDuration();  // 0 = the token store's max
  absl::Duration token_explicit_max_ttl = absl::ZeroDuration();
  int64_t token_num_uses = 0;
  std::string token_type = "default";  // "default" or "service": both issue service tokens
  bool token_no_default_policy = false;
};

// The parameters of a role write; nullopt leaves the field as it is (or at its default when the
// role is new).
struct AppRoleUpdate {
  std::optional<std::string> role_id;
  std::optional<bool> bind_secret_id;
  std::optional<std::vector<std::string>> secret_id_bound_cidrs;
  std::optional<std::vector<std::string>> token_bound_cidrs;
  std::optional<int64_t> secret_id_num_uses;
  std::optional<absl::Duration> secret_id_ttl;
  std::optional<std::vector<std::string>> token_policies;
  std::optional<absl::Duration> token_ttl;
  std::optional<absl::Duration> token_max_ttl;
  std::optional<absl::Duration> token_explicit_max_ttl;
  std::optional<int64_t> token_num_uses;
  std::optional<std::string> token_type;
  std::optional<bool> token_no_default_policy;
};

// Parameters of auth/<mount>/role/<name>/secret-id.
struct SecretIdRequest {
  std::map<std::string, std::string> metadata;  // copied into the token's metadata at login
  std::vector<std::string> cidr_list;           // must lie inside the role's secret_id_bound_cidrs
  std::vector<std::string> token_bound_cidrs;   // must lie inside the role's token_bound_cidrs
  std::optional<absl::Duration> ttl;            // nullopt/0: the role's secret_id_ttl
  std::optional<int64_t> num_uses;              // nullopt/0: the role's secret_id_num_uses
};

// A newly generated secret-id.
struct IssuedSecretId {
  // The only time its plaintext exists in Ward; the caller zeroes it after responding.
  std::string secret_id;
  std::string accessor;
  absl::Duration ttl = absl::ZeroDuration();  // 0 = never expires
  int64_t num_uses = 0;                       // 0 = unlimited
};

// What lookup of a secret-id shows (never the secret-id itself).
struct SecretIdInfo {
  std::string accessor;
  std::vector<std::string> cidr_list;
  std::vector<std::string> token_bound_cidrs;
  std::map<std::string, std::string> metadata;
  absl::Time creation_time;
  absl::Time expiration_time = absl::InfiniteFuture();  // InfiniteFuture = never
  absl::Time last_updated_time;
  absl::Duration ttl = absl::ZeroDuration();  // as created
  int64_t num_uses = 0;                       // uses left; 0 = unlimited
};

// A successful login: what the token the caller now creates must look like.
struct AppRoleGrant {
  std::string role_name;
  std::vector<std::string> token_policies;
  std::map<std::string, std::string> metadata;  // the secret-id's metadata plus "role_name"
  absl::Duration token_ttl = absl::ZeroDuration();
  absl::Duration token_max_ttl = absl::ZeroDuration();  // min of token_max_ttl and
                                                        // token_explicit_max_ttl (0 = none)
  int64_t token_num_uses = 0;
  bool token_no_default_policy = false;
  // Where the token may be used from: the secret-id's token_bound_cidrs if it has any (they lie
  // inside the role's), else the role's (Vault).
  std::vector<std::string> token_bound_cidrs;
};

// The roles and secret-ids of one AppRole auth mount (Vault's approle method).
//
// Storage (docs/approle.md), every value through the barrier under `prefix`:
//   <prefix>hmac-key              32 random bytes, the mount's secret-id HMAC key
//   <prefix>role/<name>           the role (JSON)
//   <prefix>secret-id/<hmac>      one secret-id (JSON), keyed by the lower-case hex
//                                 HMAC-SHA256 of the secret-id; its plaintext is never stored
// Everything is held in memory after Create, with indexes role_id -> role, accessor -> hmac and
// role -> hmacs, so login and lookups do not touch storage. A secret-id is found by its HMAC only
// (no plaintext comparison exists).
//
// Thread-safe. Reads, and logins with a secret-id that has unlimited uses, take a reader lock
// only, so logins run in parallel; mutations (and logins that consume a use or delete an
// expired secret-id) are serialised by a writer mutex held across their one atomic barrier
// commit; the in-memory state changes only after the commit succeeds. `barrier` and `clock` are
// borrowed and must outlive the store.
class AppRoleStore {
 public:
  // Loads the key (creating it if absent) and every role and secret-id under `prefix`. REQUIRES:
  // the barrier is unsealed; `prefix` ends with '/'.
  // Errors: barrier errors; kDataLoss for a malformed stored value.
  static absl::StatusOr<std::unique_ptr<AppRoleStore>> Create(barrier::Barrier& barrier,
                                                              core::Clock& clock,
                                                              std::string prefix);
  AppRoleStore(const AppRoleStore&) = delete;
  AppRoleStore& operator=(const AppRoleStore&) = delete;

  // Creates role `name` or updates it with the fields `update` sets. A new role gets a random
  // role_id unless one is given. Returns the role as stored.
  // Errors: kInvalidArgument for an invalid name, a malformed CIDR, a negative number or
  //         duration, token_ttl above token_max_ttl, a token_type other than "default" or
  //         "service", a role without bind_secret_id and without any CIDR binding, an empty
  //         role_id, or a role_id another role of this mount has; kFailedPrecondition after Close;
  //         barrier errors.
  absl::StatusOr<AppRole> WriteRole(std::string_view name, const AppRoleUpdate& update);

  // Errors: kNotFound if there is no such role.
  absl::StatusOr<AppRole> ReadRole(std::string_view name) const;

  // Role names, sorted.
  std::vector<std::string> ListRoles() const;

  // The name of the role whose role_id is `role_id`, or "" if none (for rate-limit quotas
  // bound to a role; answers from memory).
  std::string RoleNameForRoleId(std::string_view role_id) const;

  // Deletes the role and every secret-id of it in one commit. OK if absent.
  // Errors: kFailedPrecondition after Close; barrier errors.
  absl::Status DeleteRole(std::string_view name);

  // Generates a secret-id for role `role`.
  // Errors: kNotFound for an unknown role; kInvalidArgument for a negative ttl or num_uses, a
  //         ttl above the role's secret_id_ttl or num_uses above its secret_id_num_uses (when those
  //         are set), a malformed CIDR or one outside the role's bindings; kFailedPrecondition
  //         after Close; kInternal if the random generator fails; barrier errors.
  absl::StatusOr<IssuedSecretId> GenerateSecretId(std::string_view role,
                                                  const SecretIdRequest& request);

  // Looks up a secret-id of `role` by value or by accessor. An expired secret-id is not found.
  // Errors: kNotFound if the role or the secret-id (of that role) does not exist.
  absl::StatusOr<SecretIdInfo> LookupSecretId(std::string_view role,
                                              std::string_view secret_id) const;
  absl::StatusOr<SecretIdInfo> LookupSecretIdByAccessor(std::string_view role,
                                                        std::string_view accessor) const;

  // Destroys a secret-id of `role`. DestroySecretId is OK if it does not exist.
  // Errors: kNotFound for an unknown role, or (by accessor) an unknown accessor;
  //         kFailedPrecondition after Close; barrier errors.
  absl::Status DestroySecretId(std::string_view role, std::string_view secret_id);
  absl::Status DestroySecretIdByAccessor(std::string_view role, std::string_view accessor);

  // Accessors of the role's unexpired secret-ids, sorted.
  // Errors: kNotFound for an unknown role.
  absl::StatusOr<std::vector<std::string>> ListSecretIdAccessors(std::string_view role) const;

  // Checks a login by `remote_address`: the role_id names a role; if the role binds secret-ids,
  // `secret_id` is one of that role's, unexpired; the address is inside the role's
  // secret_id_bound_cidrs and token_bound_cidrs and the secret-id's CIDR lists. Consumes one use of
  // a use-limited secret-id (deleting it with its last use) and deletes an expired one it meets.
  // Failures are logged at info without the secret-id or the role name (an HMAC of the name
  // identifies the role to an operator holding the storage).
  // Errors: kInvalidArgument "missing role_id" / "missing secret_id" for empty inputs, and
  //         "invalid role or secret ID" for every credential or address mismatch (the caller must
  //         not learn which part failed); kFailedPrecondition after Close; barrier errors (the use
  //         is then not consumed).
  absl::StatusOr<AppRoleGrant> Login(std::string_view role_id, std::string_view secret_id,
                                     std::string_view remote_address);

  // Makes every later mutation and login fail with kFailedPrecondition, waiting for a mutation
  // in progress (a login that writes nothing may still be finishing; its token is the caller's
  // business). Called before the mount's storage is deleted, so no write lands after it.
  void Close();

  // Secret-ids held, expired ones included (for tests and metrics).
  size_t SecretIdCount() const;

 private:
  struct SecretIdEntry {
    std::string role;
    std::string accessor;
    std::vector<std::string> cidr_list;
    std::vector<std::string> token_bound_cidrs;
    std::map<std::string, std::string> metadata;
    absl::Time creation_time;
    absl::Time expiration_time = absl::InfiniteFuture();
    absl::Time last_updated_time;
    absl::Duration ttl = absl::ZeroDuration();
    int64_t num_uses = 0;
  };

  AppRoleStore(barrier::Barrier& barrier, core::Clock& clock, std::string prefix,
               core::SecureBytes key);
  absl::Status Load();
  absl::StatusOr<std::string> Hash(std::string_view value) const;
  std::string RoleKey(std::string_view name) const;
  std::string SecretIdKey(std::string_view hash) const;
  static SecretIdInfo InfoOf(const SecretIdEntry& e);
  // The unexpired entry of `role` under `hash`, or nullptr.
  const SecretIdEntry* FindLocked(std::string_view role, std::string_view hash,
                                  absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void InsertSecretIdLocked(const std::string& hash, SecretIdEntry e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseSecretIdLocked(const std::string& hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes the secret-id `hash` (storage, then memory).
  absl::Status DeleteSecretIdLocked(const std::string& hash)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // kFailedPrecondition after Close. Mutations call it holding write_mu_.
  absl::Status CheckOpen() const;
  void LogFailure(std::string_view role, std::string_view reason,
                  std::string_view remote_address) const;

  barrier::Barrier& barrier_;
  core::Clock& clock_;
  const std::string prefix_;
  const absl::StatusOr<crypto::HmacSha256Key> key_;  // prepared from the HMAC key

  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Set under write_mu_ (so no mutation is in progress when Close returns); read without it
  // by the logins that take no writer lock.
  std::atomic<bool> closed_{false};

  mutable absl::Mutex mu_;
  std::map<std::string, AppRole> roles_ ABSL_GUARDED_BY(mu_);                        // by name
  // HMAC of role_id -> name (keyed like secret_ids_, so a login never compares the caller's
  // role_id with a stored one byte by byte).
  absl::flat_hash_map<std::string, std::string> by_role_id_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, SecretIdEntry> secret_ids_ ABSL_GUARDED_BY(mu_);  // by hmac
  absl::flat_hash_map<std::string, std::string> by_accessor_ ABSL_GUARDED_BY(mu_);   // -> hmac
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> by_role_
      ABSL_GUARDED_BY(mu_);  // role name -> hmacs
};

}  // namespace ward::auth
