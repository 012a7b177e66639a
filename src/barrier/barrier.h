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

// Facts about the keyring, for sys/key-status and sys/rotate responses.
struct KeyStatus {
  uint32_t term = 0;          // the active term: new writes are encrypted under it
  absl::Time install_time;    // when the active term was added
  uint64_t encryptions = 0;   // values encrypted under the active term since unseal
};

// The encryption barrier: every value Ward stores passes through here and reaches storage
// only as AES-256-GCM ciphertext whose additional authenticated data is the storage key, so
// a value copied to another key fails to decrypt.
//
// Keys: a 32-byte root key protected by the unseal key (see docs/storage-format.md) encrypts
// the keyring; the keyring holds one data key per numbered term. New values use the active
// (highest) term; values written under older terms stay readable. The reserved prefix "core/seal/"
// and the key "core/keyring" are written by the barrier itself and refused to callers.
//
// Thread-safe. Data operations may block on storage I/O. `storage` and `clock` are borrowed
// and must outlive the barrier. When sealed, every data operation fails with kUnavailable.
class Barrier {
 public:
  static absl::StatusOr<std::unique_ptr<Barrier>> Create(storage::Backend& storage,
                                                         core::Clock& clock);
  virtual ~Barrier() = default;

  // Whether a keyring exists in storage.
  virtual absl::StatusOr<bool> Initialized() = 0;

  // Creates the root key and the first term, protected by `unseal_key` (32 bytes). Leaves the
  // barrier sealed. Errors: kFailedPrecondition if already initialised; kInvalidArgument if
  // the unseal key is not 32 bytes.
  virtual absl::Status Initialize(const core::SecureBytes& unseal_key) = 0;

  // Opens the barrier with `unseal_key`. Errors: kFailedPrecondition if not initialised;
  // kPermissionDenied if the key does not decrypt the root key; kOk if already unsealed.
  virtual absl::Status Unseal(const core::SecureBytes& unseal_key) = 0;

  // Forgets every key held in memory. Idempotent.
  virtual void Seal() = 0;
  virtual bool Sealed() const = 0;

  // Adds a new term and makes it active; persists the keyring. Returns the new status.
  // Errors: kUnavailable if sealed.
  virtual absl::StatusOr<KeyStatus> Rotate() = 0;
  virtual absl::StatusOr<KeyStatus> Status() const = 0;

  // Returns the plaintext stored at `key`.
  // Errors: kNotFound if absent; kUnavailable if sealed; kDataLoss if the ciphertext does not
  // authenticate (tampered, or moved from another key).
  virtual absl::StatusOr<std::string> Get(std::string_view key) = 0;

  // Returns the plaintext and revision stored at `key` (revision for later Check ops).
  virtual absl::StatusOr<storage::Record> GetRecord(std::string_view key) = 0;

  // Encrypts the value of every kPut in `ops` and commits them atomically (see
  // storage::Backend::Commit). Errors as Backend::Commit, plus kUnavailable if sealed and
  // kInvalidArgument for a reserved key.
  virtual absl::StatusOr<uint64_t> Commit(std::vector<storage::Op> ops) = 0;

  // Lists keys as storage::Backend::List does (keys are not encrypted).
  virtual absl::StatusOr<storage::ListPage> List(std::string_view prefix, std::string_view after,
                                                 size_t limit) = 0;

  // Encrypts/decrypts one value for `key` exactly as Commit/Get would, for in-memory indexes
  // that keep ciphertext and decrypt on read. Errors as Get.
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
