#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/secure_bytes.h"
#include "storage/backend.h"

namespace ward::barrier {

// Storage keys the barrier and the seal write themselves (layouts in docs/storage-format.md).
// Callers of Barrier may not read, write, check or see them.
inline constexpr std::string_view kReservedSealPrefix = "core/seal/";
inline constexpr std::string_view kRootKeyPath = "core/seal/root-key";
inline constexpr std::string_view kSealConfigPath = "core/seal/config";
inline constexpr std::string_view kKeyringPath = "core/keyring";

// Whether `key` is one of the barrier's own storage keys (see above).
inline bool IsReservedKey(std::string_view key) {
  return key == kKeyringPath || key.substr(0, kReservedSealPrefix.size()) == kReservedSealPrefix;
}

// Facts about the keyring, for sys/key-status and sys/rotate responses.
struct KeyStatus {
  uint32_t term = 0;         // the active term: new writes are encrypted under it
  absl::Time install_time;   // when the active term was added
  uint64_t encryptions = 0;  // values this node encrypted under the active term since it
                             // unsealed or the term became active
};

// How many values a barrier has encrypted and decrypted since it was created (across seal
// cycles), for metrics (docs/metrics.md). Calls refused before any cryptography (sealed,
// reserved key) are not counted.
struct OperationCounts {
  uint64_t encryptions = 0;          // values sealed by Commit (each put) and Encrypt
  uint64_t encryption_failures = 0;  // of which failed
  uint64_t decryptions = 0;          // values opened by Get, GetRecord and Decrypt
  uint64_t decryption_failures = 0;  // of which failed (did not authenticate, malformed
                                     // envelope, unknown term)
};

// The encryption barrier: every value Ward stores passes through here and reaches storage
// only as AES-256-GCM ciphertext whose additional authenticated data is the storage key, so
// a value copied to another key fails to decrypt.
//
// Keys (docs/storage-format.md): the unseal key (never stored) encrypts a 32-byte root key at
// kRootKeyPath; the root key encrypts the keyring at kKeyringPath; the keyring holds one data
// key per numbered term. New values use the active (highest) term; values written under older
// terms stay readable. The barrier's own keys (IsReservedKey) are refused to callers with
// kInvalidArgument and never appear in List.
//
// Several nodes may share one storage backend: Rotate writes the keyring conditionally on
// its revision, and a node that meets a value under a term newer than its own reloads the
// keyring before giving up.
//
// Thread-safe; the data path takes a reader lock only, and no lock is held during storage
// I/O. Data operations may block on storage I/O. `storage` and `clock` are borrowed and must
// outlive the barrier. A new barrier starts sealed. While sealed, every data operation
// (Get, GetRecord, Commit, List, Encrypt, Decrypt, Rotate, Status) fails with kUnavailable
// and the message "Vault is sealed", which Vault clients recognise.
class Barrier {
 public:
  // Never fails today; StatusOr leaves room for backends that must be probed.
  static absl::StatusOr<std::unique_ptr<Barrier>> Create(storage::Backend& storage,
                                                         core::Clock& clock);
  virtual ~Barrier() = default;

  // Whether a keyring exists in storage. Errors: storage errors from Backend::Get.
  virtual absl::StatusOr<bool> Initialized() = 0;

  // Creates the root key and the first term, protected by `unseal_key` (32 bytes), in one
  // conditional commit, so of several concurrent initialisers exactly one succeeds. Leaves
  // the barrier sealed.
  // Errors: kFailedPrecondition if already initialised; kInvalidArgument if the unseal key is
  // not 32 bytes; storage errors from Backend::Commit.
  virtual absl::Status Initialize(const core::SecureBytes& unseal_key) = 0;

  // Opens the barrier with `unseal_key`. Returns OK at once if already unsealed (whatever the
  // key).
  // Errors: kFailedPrecondition if not initialised; kInvalidArgument if the key is not 32
  // bytes; kPermissionDenied if the key does not decrypt the root key; kDataLoss if the root
  // key or keyring record is corrupt; storage errors from Backend::Get.
  virtual absl::Status Unseal(const core::SecureBytes& unseal_key) = 0;

  // Forgets (zeroes) every key held in memory. Idempotent.
  virtual void Seal() = 0;
  virtual bool Sealed() const = 0;

  // Adds a term with a fresh key, makes it active and persists the keyring; values under
  // older terms stay readable. The new term is one above the highest term in storage (not
  // just in memory), and the write is conditional on the keyring's revision, retried a few
  // times if another node rotates at the same moment. Returns the new active term's status.
  // Errors: kUnavailable if sealed; kAborted if the keyring kept changing under concurrent
  // rotations by other nodes; kDataLoss if the stored keyring is corrupt; storage errors.
  virtual absl::StatusOr<KeyStatus> Rotate() = 0;

  // Returns the active term's status. Errors: kUnavailable if sealed.
  virtual absl::StatusOr<KeyStatus> Status() const = 0;

  // Monotonic operation counts since the barrier was created; answers while sealed too.
  // Lock-free.
  virtual OperationCounts Counts() const = 0;

  // Returns the plaintext stored at `key`.
  // Errors: kInvalidArgument for a reserved key; kUnavailable if sealed; kNotFound if absent;
  // kDataLoss if the stored value does not authenticate (tampered with, truncated, or moved
  // from another key) or names a term the keyring does not hold; storage errors.
  virtual absl::StatusOr<std::string> Get(std::string_view key) = 0;

  // As Get, and also returns the revision of the commit that wrote `key` (for later Check
  // ops). Errors as Get.
  virtual absl::StatusOr<storage::Record> GetRecord(std::string_view key) = 0;

  // Encrypts the value of every kPut in `ops` under the active term and commits `ops`
  // atomically (see storage::Backend::Commit); put values are zeroed after encryption.
  // Returns the commit's revision.
  // Errors: as Backend::Commit (kAborted for a failed check, ...); kInvalidArgument if any op
  // names a reserved key (nothing is written); kUnavailable if sealed.
  virtual absl::StatusOr<uint64_t> Commit(std::vector<storage::Op> ops) = 0;

  // Lists keys as storage::Backend::List does (keys are not encrypted), leaving out reserved
  // keys. A page may report `more` when only reserved keys follow; the next page is then
  // empty. Errors: kUnavailable if sealed; storage errors.
  virtual absl::StatusOr<storage::ListPage> List(std::string_view prefix, std::string_view after,
                                                 size_t limit) = 0;

  // As List, with every key's stored value and revision, read from storage in one call
  // (storage::Backend::Scan): for loading many values at once. The values are NOT decrypted
  // or authenticated: each is the envelope that Decrypt(key, value) opens (and authenticates),
  // so a caller opens only the values it needs and may keep the envelope as its in-memory
  // ciphertext. Reserved keys are left out; the page is then filled from further storage
  // pages, as List does.
  // Errors: kUnavailable if sealed; storage errors.
  virtual absl::StatusOr<storage::ScanPage> ScanCiphertext(std::string_view prefix,
                                                           std::string_view after,
                                                           size_t limit) = 0;

  // Encrypts/decrypts one value for `key` exactly as Commit/Get would, for in-memory indexes
  // that keep ciphertext and decrypt on read. Encrypt counts towards KeyStatus::encryptions.
  // Decrypt does no storage I/O unless the value names a term newer than this node's active
  // term (another node rotated), when it reloads the keyring once.
  // Errors: kInvalidArgument for a reserved key; kUnavailable if sealed; Decrypt: kDataLoss
  // as Get.
  virtual absl::StatusOr<std::string> Encrypt(std::string_view key, std::string_view plaintext) = 0;
  virtual absl::StatusOr<std::string> Decrypt(std::string_view key,
                                              std::string_view ciphertext) = 0;

  // Convenience wrappers over Commit.
  absl::StatusOr<uint64_t> Put(std::string key, std::string value) {
    std::vector<storage::Op> ops;
    ops.push_back(storage::Op::Put(std::move(key), std::move(value)));
    return Commit(std::move(ops));
  }
  absl::StatusOr<uint64_t> Delete(std::string key) {
    std::vector<storage::Op> ops;
    ops.push_back(storage::Op::Delete(std::move(key)));
    return Commit(std::move(ops));
  }
};

}  // namespace ward::barrier
