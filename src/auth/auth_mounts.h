#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "auth/approle.h"
#include "barrier/barrier.h"
#include "core/clock.h"

namespace ward::auth {

// One enabled auth method, as sys/auth shows it.
struct AuthMountEntry {
  std::string path;  // "approle/": relative to "auth/", always ends with '/'
  std::string type;  // "token" or "approle"
  std::string description;
  std::string uuid;      // names the method's storage prefix "auth/<uuid>/"
  std::string accessor;  // "auth_approle_1a2b3c4d"
};

// An AppRole mount resolved for a request path under "auth/".
struct AppRoleMatch {
  AuthMountEntry entry;
  std::shared_ptr<AppRoleStore> store;
  std::string rest;  // the path after "auth/<mount path>", e.g. "login", "role/web"
};

// The table of auth methods (sys/auth), persisted through the barrier at "core/auth-mounts"
// (docs/approle.md). "token/" (the token store) is always present and cannot be disabled; "approle"
// is the only type that can be enabled so far. Each AppRole mount owns an AppRoleStore over
// "auth/<uuid>/".
//
// Thread-safe. Lookups take a reader lock; stores are shared_ptr so a request holding one finishes
// safely if the mount is disabled meanwhile (the store is closed first, so its writes fail instead
// of landing after the data was deleted). `barrier` and `clock` are borrowed and must outlive the
// table.
class AuthMountTable {
 public:
  // Loads the table (creating it with "token/" on first use) and opens a store per AppRole mount.
  // REQUIRES: the barrier is unsealed.
  // Errors: barrier errors; kDataLoss for a malformed table.
  static absl::StatusOr<std::unique_ptr<AuthMountTable>> Create(barrier::Barrier& barrier,
                                                                core::Clock& clock);

  // Every mount, "token/" included, sorted by path.
  std::vector<AuthMountEntry> List() const;

  // The entry at `path` ("approle" or "approle/"), or nullopt.
  std::optional<AuthMountEntry> Get(std::string_view path) const;

  // The AppRole mount whose path is a prefix of `path_under_auth` (the request path after "auth/"),
  // or nullopt.
  std::optional<AppRoleMatch> FindAppRole(std::string_view path_under_auth) const;

  // Enables a method of `type` at `path`.
  // Errors: kInvalidArgument for an empty path, a type other than "approle" ("token" is built
  //         in), or "path is already in use at <p>" when the path overlaps a mount; barrier errors.
  absl::Status Enable(std::string_view path, std::string_view type, std::string_view description);

  // Disables the mount at `path` and deletes its roles, secret-ids and key. OK if nothing is
  // mounted there. Tokens already issued through the mount stay valid until they expire or are
  // revoked (Ward does not yet track a token's issuing mount).
  // Errors: kInvalidArgument for "token/"; barrier errors.
  absl::Status Disable(std::string_view path);

 private:
  AuthMountTable(barrier::Barrier& barrier, core::Clock& clock)
      : barrier_(barrier), clock_(clock) {}
  absl::Status Persist(const std::map<std::string, AuthMountEntry>& entries);

  barrier::Barrier& barrier_;
  core::Clock& clock_;
  // Serialises Enable/Disable, including their commits; lookups take only mu_.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, AuthMountEntry> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<AppRoleStore>> approles_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ward::auth
