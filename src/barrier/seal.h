#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "barrier/barrier.h"
#include "core/secure_bytes.h"
#include "storage/backend.h"

namespace ward::barrier {

// How the unseal key is split (Vault's secret_shares / secret_threshold).
struct SealConfig {
  int shares = 5;     // key shares handed out, 1..255
  int threshold = 3;  // shares needed to unseal, 1..shares; 1 only when shares is 1
};

// What sys/seal-status reports.
struct SealStatus {
  bool initialized = false;
  bool sealed = true;
  int threshold = 0;  // 0 until initialised
  int shares = 0;     // 0 until initialised
  int progress = 0;   // shares submitted towards the current unseal attempt
  std::string nonce;  // identifies the current unseal attempt; "" when progress is 0
};

// Shamir initialisation and unsealing, on top of a Barrier (Vault's "shamir" seal).
//
// Initialize generates a random 32-byte unseal key, initialises the barrier with it, records
// the seal configuration (plain JSON at kSealConfigPath: it holds no secret) and hands out
// the key split into shares (crypto/shamir.h); the key itself is never stored. Operators then
// submit shares one at a time; when `threshold` of them have arrived they are combined and
// the barrier is unsealed. The collected shares live only in memory and are zeroed on reset.
//
// Thread-safe. Methods may block on storage I/O. `barrier` and `storage` are borrowed and
// must outlive the Seal; `storage` must be the backend the barrier uses.
class Seal {
 public:
  // Errors: storage errors reading the seal configuration (kUnavailable/kInternal);
  // kDataLoss if a stored configuration is malformed.
  static absl::StatusOr<std::unique_ptr<Seal>> Create(Barrier& barrier, storage::Backend& storage);

  // Returns the current status. Once initialised this reads memory only.
  // Errors: storage errors (before initialisation is known); kDataLoss if the barrier is
  // initialised but the seal configuration is missing or malformed.
  absl::StatusOr<SealStatus> Status();

  // Initialises: generates the unseal key, initialises the barrier, stores `config`, and
  // returns `config.shares` shares of 33 bytes each (32-byte key share + x coordinate). The
  // barrier stays sealed.
  // Errors: kInvalidArgument for a bad `config` (messages as Vault's, e.g. "threshold must be
  // greater than one for multiple shares"); kFailedPrecondition if already initialised
  // (including losing a race with another initialiser); storage errors.
  absl::StatusOr<std::vector<core::SecureBytes>> Initialize(SealConfig config);

  // Adds one share, given as hex or standard base64 text (Vault accepts either in
  // {"key": ...}); surrounding whitespace is ignored. With a 1-of-1 configuration the raw
  // 32-byte unseal key is accepted too. When `threshold` shares have been collected they are
  // combined and the barrier unsealed; progress resets either way. Returns the status after
  // the call. If the barrier is already unsealed, returns the status and ignores the share.
  // Errors: kFailedPrecondition if not initialised; kInvalidArgument if the text does not
  // decode to a share of the right length, the share (its x coordinate) was already
  // submitted in this attempt, or the combined key does not open the barrier (progress is
  // then reset); barrier and storage errors from Barrier::Unseal (progress is then reset).
  absl::StatusOr<SealStatus> SubmitShare(std::string_view encoded_share);

  // Discards the shares submitted so far (sys/unseal with "reset": true).
  void ResetProgress();

  // Seals the barrier and discards unseal progress.
  void SealNow();

  // Dev mode: unseals with the whole unseal key and discards unseal progress.
  // Errors: as Barrier::Unseal (kPermissionDenied for a wrong key, kFailedPrecondition if not
  // initialised, kInvalidArgument if the key is not 32 bytes).
  absl::Status UnsealWithKey(const core::SecureBytes& unseal_key);

  // Dev mode: initialises with one share and threshold one and returns the raw 32-byte unseal
  // key (for UnsealWithKey, or SubmitShare). Errors: as Initialize.
  absl::StatusOr<core::SecureBytes> InitializeSingleKey();

 private:
  Seal(Barrier& barrier, storage::Backend& storage) : barrier_(barrier), storage_(storage) {}

  // Returns the configuration if the barrier is initialised, nullopt if not. Cached once
  // known. Errors: as Status.
  absl::StatusOr<std::optional<SealConfig>> KnownConfig() ABSL_LOCKS_EXCLUDED(mu_);

  Barrier& barrier_;
  storage::Backend& storage_;

  absl::Mutex mu_;
  std::optional<SealConfig> config_ ABSL_GUARDED_BY(mu_);  // set once initialisation is seen
  std::vector<core::SecureBytes> shares_ ABSL_GUARDED_BY(mu_);
  std::string nonce_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ward::barrier
