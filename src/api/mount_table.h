#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "barrier/barrier.h"
#include "core/clock.h"
#include "pki/engine.h"
#include "secrets/kv_engine.h"

namespace ward::api {

// One entry of the mount table, as sys/mounts shows it.
struct MountEntry {
  std::string path;         // "secret/": always ends with '/'
  std::string type;         // "kv" (KV version 2) or "pki"
  std::string description;
  std::string uuid;         // names the engine's storage prefix: "logical/<uuid>/"
  std::string accessor;     // "kv_1a2b3c4d", "pki_1a2b3c4d"
  std::map<std::string, std::string> options;  // KV: {"version": "2"}; PKI: {}
};

// A resolved mount for a request path. Exactly one of `engine` (type "kv") and `pki` (type
// "pki") is set.
struct MountMatch {
  // The table's own entry, shared (not copied: a match is made for every request); never null.
  std::shared_ptr<const MountEntry> entry;
  std::shared_ptr<secrets::KvEngine> engine;
  std::shared_ptr<pki::PkiEngine> pki;
  std::string rest;  // the request path after the mount path
};

// The table of secrets engines mounted on this node, persisted through the barrier at
// "core/mounts" (docs/kv-format.md). On first use it mounts KV v2 at "secret/".
//
// Thread-safe. Lookups take a reader lock; engines are shared_ptr so a request holding one
// finishes safely even if the mount is removed meanwhile. `barrier` and `clock` are borrowed.
class MountTable {
 public:
  // Loads the table and creates an engine per mount (KV v2 or PKI, by type). Errors from the
  // barrier and engines.
  static absl::StatusOr<std::unique_ptr<MountTable>> Create(barrier::Barrier& barrier,
                                                            core::Clock& clock);

  // The mount whose path is the longest prefix of `path` (no leading slash), or nullopt.
  std::optional<MountMatch> Find(std::string_view path) const;

  std::vector<MountEntry> List() const;

  // Mounts an engine at `path`: KV v2 for `type` "kv-v2", or "kv" with options version "2"
  // (listed as type "kv"); a PKI engine (pki/engine.h) for `type` "pki". Either stores its data
  // under "logical/<uuid>/".
  // Errors: kInvalidArgument for an unsupported type or version, a reserved path (sys/, auth/,
  // cubbyhole/, identity/) or an empty path; kAlreadyExists->kInvalidArgument "path is already
  // in use at <path>" when it overlaps an existing mount.
  absl::Status Mount(std::string_view path, std::string_view type, std::string_view description,
                     const std::map<std::string, std::string>& options);

  // Unmounts `path` and deletes all of its data. OK if nothing is mounted there (as Vault).
  absl::Status Unmount(std::string_view path);

 private:
  MountTable(barrier::Barrier& barrier, core::Clock& clock) : barrier_(barrier), clock_(clock) {}
  absl::Status Persist(const std::vector<MountEntry>& entries) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  barrier::Barrier& barrier_;
  core::Clock& clock_;
  // Serialises Mount/Unmount; lookups only take mu_.
  absl::Mutex write_mu_;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  std::map<std::string, std::shared_ptr<const MountEntry>> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<secrets::KvEngine>> engines_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<pki::PkiEngine>> pki_engines_ ABSL_GUARDED_BY(mu_);
};

// Normalises a mount path: strips leading '/', ensures a trailing '/'.
std::string NormaliseMountPath(std::string_view path);

}  // namespace ward::api
