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
#include "auth/cert_auth.h"
#include "barrier/barrier.h"
#include "core/clock.h"

namespace ward::auth {

// One enabled auth method, as sys/auth shows it.
struct AuthMountEntry {
  std::string path;  // "approle/": relative to "auth/", always ends with '/'
  std::string type;  // "token", "approle" or "cert"
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

// A TLS certificate auth mount (docs/cert-auth.md), resolved like AppRoleMatch.
struct CertMount {
  AuthMountEntry entry;
  std::shared_ptr<CertAuthStore> store;
  std::string rest;  // the path after "auth/<mount path>", e.g. "login", "certs/web"
};

// The table of auth methods (sys/auth), persisted through the barrier at "core/auth-mounts"
// (docs/approle.md). "token/" (the token store) is always present and cannot be disabled; "approle"
// and "cert" can be enabled. Each AppRole mount owns an AppRoleStore over "auth/<uuid>/", each
// cert mount a CertAuthStore (docs/cert-auth.md).
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

  // The cert mount whose path is a prefix of `path_under_auth`, or nullopt.
  std::optional<CertMount> FindCert(std::string_view path_under_auth) const;

  // Every cert mount, sorted by path (`rest` empty): the order direct identity tries them in.
  std::vector<CertMount> CertMounts() const;

  // Enables a method of `type` at `path`.
  // Errors: kInvalidArgument for an empty path, a type other than "approle" or "cert" ("token"
  //         is built in), or "path is already in use at <p>" when the path overlaps a mount; barrier errors.
  absl::Status Enable(std::string_view path, std::string_view type, std::string_view description);

  // Disables the mount at `path` and deletes its roles (and an AppRole mount's secret-ids and
  // key). OK if nothing is mounted there. Does not touch tokens: the sys/auth route revokes the
  // mount's tokens (TokenStore::RevokeByPathPrefix) before and after calling this
  // (docs/approle.md).
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
  std::map<std::string, std::shared_ptr<CertAuthStore>> certs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ward::auth
