#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/mount_table.h"
#include "audit/broker.h"
#include "auth/approle_login_limiter.h"
#include "auth/auth_mounts.h"
#include "auth/policy_store.h"
#include "auth/token_store.h"
#include "barrier/barrier.h"
#include "barrier/seal.h"
#include "core/clock.h"
#include "core/secure_bytes.h"
#include "metrics/registry.h"
#include "storage/backend.h"
#include "storage/metered_backend.h"

namespace ward::api {

// Everything that exists only while the node is unsealed. Immutable once built; requests
// hold it through a shared_ptr, so sealing never pulls it out from under one.
struct UnsealedState {
  std::unique_ptr<auth::TokenStore> tokens;
  std::unique_ptr<MountTable> mounts;
  // ACL policies (docs/policies.md); requests check against its snapshot.
  std::unique_ptr<auth::PolicyStore> policies;
  // sys/auth and the AppRole mounts (docs/approle.md).
  std::unique_ptr<auth::AuthMountTable> auth_mounts;
  // Failed logins per client address, for every login route; memory only.
  std::unique_ptr<auth::FailedLoginLimiter> login_limiter;
  // Audit devices (docs/audit.md). Declared last so it is destroyed first: closing the
  // devices writes their final checkpoints.
  std::unique_ptr<audit::Broker> audit;
};

// What `Core::Initialize` hands out, exactly once.
struct InitResult {
  std::vector<core::SecureBytes> shares;
  std::string root_token;  // caller must zero it after use
};

// The lifecycle of one Ward node: initialise, unseal, seal, and the state that unsealing
// builds (token store, mount table). Thread-safe. `storage` and `clock` are borrowed.
// Everything the node stores goes through a storage::MeteredBackend over `storage`, whose
// metrics live in metrics() (docs/metrics.md).
class Core {
 public:
  struct Options {
    auth::TokenStore::Options tokens;
    audit::Broker::Options audit;
  };

  static absl::StatusOr<std::unique_ptr<Core>> Create(storage::Backend& storage,
                                                      core::Clock& clock, Options options);

  // Initialises the seal with `shares`/`threshold` and creates the root token (the barrier is
  // unsealed briefly for that and sealed again). Errors: kFailedPrecondition if already
  // initialised; kInvalidArgument for bad share settings.
  absl::StatusOr<InitResult> Initialize(int shares, int threshold);

  // Dev mode: initialises with a single unseal key and returns it (the caller keeps it).
  absl::StatusOr<core::SecureBytes> InitializeSingleKey();

  // Feeds one unseal key share; builds the unsealed state once the threshold is reached.
  // Errors as barrier::Seal::SubmitShare.
  absl::StatusOr<barrier::SealStatus> SubmitUnsealShare(std::string_view encoded_share);
  void ResetUnsealProgress();

  // Dev mode: unseals with the whole unseal key.
  absl::Status UnsealWithKey(const core::SecureBytes& unseal_key);

  // Seals: drops the unsealed state and every key. Idempotent.
  void Seal();

  absl::StatusOr<barrier::SealStatus> SealStatus();

  // The unsealed state, or nullptr while sealed.
  std::shared_ptr<const UnsealedState> State() const;

  barrier::Barrier& barrier() { return *barrier_; }

  // Node-level metrics that outlive seal cycles (storage operations); the API layer renders
  // them with its own (docs/metrics.md). Thread-safe.
  metrics::Registry& metrics() { return metrics_; }

 private:
  Core(core::Clock& clock, Options options) : clock_(clock), options_(options) {}
  // Builds the unsealed state after the barrier opened; seals again if that fails.
  absl::Status BuildState();

  core::Clock& clock_;
  const Options options_;
  metrics::Registry metrics_;
  // Wraps the borrowed storage; the barrier and the seal use only this. Declared before them
  // so that it outlives them.
  std::unique_ptr<storage::MeteredBackend> storage_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<barrier::Seal> seal_;
  // Serialises lifecycle transitions (init, unseal, seal).
  absl::Mutex lifecycle_mu_;
  mutable absl::Mutex state_mu_ ABSL_ACQUIRED_AFTER(lifecycle_mu_);
  std::shared_ptr<const UnsealedState> state_ ABSL_GUARDED_BY(state_mu_);
};

}  // namespace ward::api
