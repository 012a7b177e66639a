#include "api/core.h"

#include "core/status_macros.h"
#include "crypto/shamir.h"

namespace ward::api {

absl::StatusOr<std::unique_ptr<Core>> Core::Create(storage::Backend& storage, core::Clock& clock,
                                                   Options options) {
  std::unique_ptr<Core> c(new Core(clock, options));
  c->storage_ = std::make_unique<storage::MeteredBackend>(storage, c->metrics_, clock);
  WARD_ASSIGN_OR_RETURN(c->barrier_, barrier::Barrier::Create(*c->storage_, clock));
  WARD_ASSIGN_OR_RETURN(c->seal_, barrier::Seal::Create(*c->barrier_, *c->storage_));
  return c;
}

absl::StatusOr<InitResult> Core::Initialize(int shares, int threshold) {
  absl::MutexLock lock(&lifecycle_mu_);
  barrier::SealConfig config;
  config.shares = shares;
  config.threshold = threshold;
  InitResult result;
  WARD_ASSIGN_OR_RETURN(result.shares, seal_->Initialize(config));
  // Recover the unseal key from `threshold` shares to open the barrier once, create the root
  // token, and seal again: the operator unseals with the shares afterwards.
  std::vector<core::SecureBytes> quorum;
  for (int i = 0; i < threshold; ++i) quorum.push_back(result.shares[i].Copy());
  WARD_ASSIGN_OR_RETURN(core::SecureBytes key, crypto::ShamirCombine(quorum));
  WARD_RETURN_IF_ERROR(barrier_->Unseal(key));
  auto tokens = auth::TokenStore::Create(*barrier_, clock_, options_.tokens);
  absl::StatusOr<auth::IssuedToken> root =
      tokens.ok() ? (*tokens)->CreateRootToken("") : absl::StatusOr<auth::IssuedToken>(tokens.status());
  barrier_->Seal();
  if (!root.ok()) return root.status();
  result.root_token = std::move(root->token);
  return result;
}

absl::StatusOr<core::SecureBytes> Core::InitializeSingleKey() {
  absl::MutexLock lock(&lifecycle_mu_);
  return seal_->InitializeSingleKey();
}

absl::StatusOr<barrier::SealStatus> Core::SubmitUnsealShare(std::string_view encoded_share) {
  absl::MutexLock lock(&lifecycle_mu_);
  WARD_ASSIGN_OR_RETURN(barrier::SealStatus status, seal_->SubmitShare(encoded_share));
  if (!status.sealed && State() == nullptr) {
    WARD_RETURN_IF_ERROR(BuildState());
  }
  return status;
}

void Core::ResetUnsealProgress() {
  absl::MutexLock lock(&lifecycle_mu_);
  seal_->ResetProgress();
}

absl::Status Core::UnsealWithKey(const core::SecureBytes& unseal_key) {
  absl::MutexLock lock(&lifecycle_mu_);
  WARD_RETURN_IF_ERROR(seal_->UnsealWithKey(unseal_key));
  if (State() == nullptr) return BuildState();
  return absl::OkStatus();
}

void Core::Seal() {
  absl::MutexLock lock(&lifecycle_mu_);
  std::shared_ptr<const UnsealedState> old;
  {
    absl::MutexLock state_lock(&state_mu_);
    old = std::move(state_);
  }
  // Dropping the state outside state_mu_: if no request holds it, this closes the audit
  // devices now (final checkpoint and fsync), which must not block State().
  old.reset();
  seal_->SealNow();
}

absl::StatusOr<barrier::SealStatus> Core::SealStatus() { return seal_->Status(); }

std::shared_ptr<const UnsealedState> Core::State() const {
  absl::ReaderMutexLock lock(&state_mu_);
  return state_;
}

absl::Status Core::BuildState() {
  auto state = std::make_shared<UnsealedState>();
  auto tokens = auth::TokenStore::Create(*barrier_, clock_, options_.tokens);
  auto mounts = tokens.ok() ? MountTable::Create(*barrier_, clock_)
                            : absl::StatusOr<std::unique_ptr<MountTable>>(tokens.status());
  if (!mounts.ok()) {
    seal_->SealNow();
    return mounts.status();
  }
  state->tokens = std::move(*tokens);
  state->mounts = std::move(*mounts);
  auto policies = auth::PolicyStore::Create(*barrier_);
  if (!policies.ok()) {
    seal_->SealNow();
    return policies.status();
  }
  state->policies = std::move(*policies);
  auto auth_mounts = auth::AuthMountTable::Create(*barrier_, clock_);
  if (!auth_mounts.ok()) {
    seal_->SealNow();
    return auth_mounts.status();
  }
  state->auth_mounts = std::move(*auth_mounts);
  state->login_limiter =
      std::make_unique<auth::FailedLoginLimiter>(clock_, auth::FailedLoginLimiter::Options{});
  // Reopens every enabled audit device; a device that cannot be opened keeps the node sealed
  // (fail closed).
  auto audit = audit::Broker::Create(*barrier_, clock_, options_.audit);
  if (!audit.ok()) {
    seal_->SealNow();
    return audit.status();
  }
  state->audit = std::move(*audit);
  absl::MutexLock lock(&state_mu_);
  state_ = std::move(state);
  return absl::OkStatus();
}

}  // namespace ward::api
