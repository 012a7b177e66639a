#include "barrier/barrier.h"

#include <atomic>
#include <limits>
#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "barrier/internal/keyring.h"
#include "core/status_macros.h"
#include "crypto/aead.h"
#include "crypto/random.h"

namespace ward::barrier {
namespace {

using internal::Keyring;
using internal::KeyringTerm;

// First byte of every record the barrier writes (root key, keyring, values).
constexpr char kFormatVersion = 0x01;
// A value: version byte, then the term as a 4-byte big-endian integer, then the AEAD output.
constexpr size_t kValueHeaderSize = 5;
constexpr size_t kKeySize = crypto::kAeadKeySize;
// Rotations retried after losing a race on the keyring to another node or thread.
constexpr int kRotateAttempts = 8;

// Vault clients recognise a sealed server by this text.
absl::Status SealedError() { return absl::UnavailableError("Vault is sealed"); }

absl::Status ReservedKeyError(std::string_view key) {
  return absl::InvalidArgumentError("storage key is reserved for the barrier: " + std::string(key));
}

absl::Status CheckReserved(std::string_view key) {
  return IsReservedKey(key) ? ReservedKeyError(key) : absl::OkStatus();
}

std::string ValueHeader(uint32_t term) {
  std::string header(kValueHeaderSize, '\0');
  header[0] = kFormatVersion;
  header[1] = static_cast<char>(term >> 24);
  header[2] = static_cast<char>(term >> 16);
  header[3] = static_cast<char>(term >> 8);
  header[4] = static_cast<char>(term);
  return header;
}

// Reads the term of a value envelope.
// Errors: kDataLoss if `ciphertext` is not a version-1 envelope of plausible length.
absl::StatusOr<uint32_t> EnvelopeTerm(std::string_view storage_key, std::string_view ciphertext) {
  if (ciphertext.size() < kValueHeaderSize + crypto::kAeadOverhead) {
    return absl::DataLossError("value at " + std::string(storage_key) + " is truncated");
  }
  if (ciphertext[0] != kFormatVersion) {
    return absl::DataLossError("value at " + std::string(storage_key) +
                               " has an unknown format version");
  }
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(ciphertext[i])); };
  return (byte(1) << 24) | (byte(2) << 16) | (byte(3) << 8) | byte(4);
}

absl::StatusOr<std::string> OpenValue(const crypto::AeadKey& key, std::string_view storage_key,
                                      std::string_view ciphertext) {
  absl::StatusOr<std::string> plaintext =
      key.Open(ciphertext.substr(kValueHeaderSize), storage_key);
  if (plaintext.status().code() == absl::StatusCode::kDataLoss) {
    return absl::DataLossError("value at " + std::string(storage_key) +
                               " failed authentication (tampered with, or moved from another key)");
  }
  return plaintext;
}

// Root key and keyring records: version byte, then AEAD output with the storage key as AAD.
absl::StatusOr<std::string> SealRecord(const core::SecureBytes& key, std::string_view plaintext,
                                       std::string_view storage_key) {
  return crypto::AeadSeal(key, plaintext, storage_key, std::string_view(&kFormatVersion, 1));
}

// Returns the AEAD part of a record written by SealRecord.
// Errors: kDataLoss for an unknown version or a truncated record.
absl::StatusOr<std::string_view> RecordBody(std::string_view record, std::string_view storage_key) {
  if (record.size() < 1 + crypto::kAeadOverhead || record[0] != kFormatVersion) {
    return absl::DataLossError(std::string(storage_key) +
                               " is truncated or has an unknown format version");
  }
  return record.substr(1);
}

// The keyring as read from storage, with the revision of the commit that wrote it.
struct StoredKeyring {
  Keyring keyring;
  uint64_t revision = 0;
};

// Every term's data key prepared for AES-GCM (key schedule built once, cipher contexts reused:
// crypto::AeadKey), by term number; what values are sealed and opened with. Each entry holds
// OpenSSL's copy of the key's schedule, so it is dropped with the keyring on Seal.
using TermKeys = std::map<uint32_t, crypto::AeadKey>;

// Prepares every term of `keyring`. Errors: kInternal if OpenSSL fails.
absl::StatusOr<TermKeys> PrepareTermKeys(const Keyring& keyring) {
  TermKeys keys;
  for (const auto& [term, entry] : keyring.terms) {
    WARD_ASSIGN_OR_RETURN(crypto::AeadKey key, crypto::AeadKey::Create(entry.key));
    keys.emplace(term, std::move(key));
  }
  return keys;
}

// Implements Barrier with AES-256-GCM (crypto/aead.h) and the layouts of
// docs/storage-format.md.
class AesGcmBarrier final : public Barrier {
 public:
  AesGcmBarrier(storage::Backend& storage, core::Clock& clock) : storage_(storage), clock_(clock) {}

  absl::StatusOr<bool> Initialized() override {
    absl::StatusOr<storage::Record> record = storage_.Get(kKeyringPath);
    if (record.ok()) return true;
    if (record.status().code() == absl::StatusCode::kNotFound) return false;
    return record.status();
  }

  absl::Status Initialize(const core::SecureBytes& unseal_key) override {
    if (unseal_key.size() != kKeySize) {
      return absl::InvalidArgumentError("unseal key must be 32 bytes");
    }
    WARD_ASSIGN_OR_RETURN(core::SecureBytes root_key, crypto::RandomBytes(kKeySize));
    WARD_ASSIGN_OR_RETURN(core::SecureBytes data_key, crypto::RandomBytes(kKeySize));
    Keyring keyring;
    keyring.active_term = 1;
    keyring.terms.emplace(1, KeyringTerm{std::move(data_key), clock_.Now()});
    core::SecureBytes keyring_json = internal::EncodeKeyring(keyring);

    WARD_ASSIGN_OR_RETURN(std::string sealed_root,
                          SealRecord(unseal_key, root_key.view(), kRootKeyPath));
    WARD_ASSIGN_OR_RETURN(std::string sealed_keyring,
                          SealRecord(root_key, keyring_json.view(), kKeyringPath));
    std::vector<storage::Op> ops;
    ops.push_back(storage::Op::Check(std::string(kRootKeyPath), 0));
    ops.push_back(storage::Op::Check(std::string(kKeyringPath), 0));
    ops.push_back(storage::Op::Put(std::string(kRootKeyPath), std::move(sealed_root)));
    ops.push_back(storage::Op::Put(std::string(kKeyringPath), std::move(sealed_keyring)));
    absl::StatusOr<uint64_t> revision = storage_.Commit(std::move(ops));
    if (revision.status().code() == absl::StatusCode::kAborted) {
      return absl::FailedPreconditionError("barrier is already initialized");
    }
    return revision.status();
  }

  absl::Status Unseal(const core::SecureBytes& unseal_key) override {
    if (!Sealed()) return absl::OkStatus();
    if (unseal_key.size() != kKeySize) {
      return absl::InvalidArgumentError("unseal key must be 32 bytes");
    }
    absl::StatusOr<storage::Record> record = storage_.Get(kRootKeyPath);
    if (record.status().code() == absl::StatusCode::kNotFound) {
      return absl::FailedPreconditionError("barrier is not initialized");
    }
    if (!record.ok()) return record.status();
    WARD_ASSIGN_OR_RETURN(std::string_view body, RecordBody(record->value, kRootKeyPath));
    absl::StatusOr<core::SecureBytes> root_key =
        crypto::AeadOpenSecret(unseal_key, body, kRootKeyPath);
    if (root_key.status().code() == absl::StatusCode::kDataLoss) {
      return absl::PermissionDeniedError("unseal key is incorrect");
    }
    if (!root_key.ok()) return root_key.status();
    if (root_key->size() != kKeySize) return absl::DataLossError("root key has the wrong size");

    WARD_ASSIGN_OR_RETURN(StoredKeyring stored, LoadKeyring(*root_key));
    WARD_ASSIGN_OR_RETURN(TermKeys term_keys, PrepareTermKeys(stored.keyring));
    absl::MutexLock lock(&mu_);
    if (!sealed_) return absl::OkStatus();  // a concurrent Unseal won
    root_key_ = std::move(*root_key);
    keyring_ = std::move(stored.keyring);
    term_keys_ = std::move(term_keys);
    keyring_revision_ = stored.revision;
    encryptions_.store(0, std::memory_order_relaxed);
    sealed_ = false;
    return absl::OkStatus();
  }

  void Seal() override {
    absl::MutexLock lock(&mu_);
    sealed_ = true;
    root_key_.Clear();
    keyring_ = Keyring();  // the old terms' SecureBytes zero themselves
    term_keys_.clear();    // and OpenSSL cleanses the prepared key schedules as it frees them
    keyring_revision_ = 0;
  }

  bool Sealed() const override {
    absl::ReaderMutexLock lock(&mu_);
    return sealed_;
  }

  absl::StatusOr<KeyStatus> Rotate() override ABSL_LOCKS_EXCLUDED(rotate_mu_, mu_) {
    absl::MutexLock rotating(&rotate_mu_);
    for (int attempt = 0; attempt < kRotateAttempts; ++attempt) {
      core::SecureBytes root_key;
      {
        absl::ReaderMutexLock lock(&mu_);
        if (sealed_) return SealedError();
        root_key = root_key_.Copy();
      }
      // Start from the stored keyring, not ours: another node may have added terms.
      WARD_ASSIGN_OR_RETURN(StoredKeyring stored, LoadKeyring(root_key));
      const uint32_t newest = stored.keyring.terms.rbegin()->first;
      if (newest == std::numeric_limits<uint32_t>::max()) {
        return absl::FailedPreconditionError("keyring has used every term number");
      }
      const uint32_t term = newest + 1;
      const absl::Time now = clock_.Now();
      WARD_ASSIGN_OR_RETURN(core::SecureBytes data_key, crypto::RandomBytes(kKeySize));
      stored.keyring.terms.emplace(term, KeyringTerm{std::move(data_key), now});
      stored.keyring.active_term = term;
      core::SecureBytes json = internal::EncodeKeyring(stored.keyring);
      WARD_ASSIGN_OR_RETURN(std::string sealed, SealRecord(root_key, json.view(), kKeyringPath));
      WARD_ASSIGN_OR_RETURN(TermKeys term_keys, PrepareTermKeys(stored.keyring));

      std::vector<storage::Op> ops;
      ops.push_back(storage::Op::Check(std::string(kKeyringPath), stored.revision));
      ops.push_back(storage::Op::Put(std::string(kKeyringPath), std::move(sealed)));
      absl::StatusOr<uint64_t> revision = storage_.Commit(std::move(ops));
      if (revision.status().code() == absl::StatusCode::kAborted) continue;  // lost a race
      if (!revision.ok()) return revision.status();
      stored.revision = *revision;
      Install(std::move(stored), std::move(term_keys));
      return KeyStatus{term, now, 0};
    }
    return absl::AbortedError("keyring kept changing during rotation; try again");
  }

  absl::StatusOr<KeyStatus> Status() const override {
    absl::ReaderMutexLock lock(&mu_);
    if (sealed_) return SealedError();
    const KeyringTerm* active = keyring_.Find(keyring_.active_term);
    return KeyStatus{keyring_.active_term, active->install_time,
                     encryptions_.load(std::memory_order_relaxed)};
  }

  absl::StatusOr<std::string> Get(std::string_view key) override {
    WARD_ASSIGN_OR_RETURN(storage::Record record, GetRecord(key));
    return std::move(record.value);
  }

  absl::StatusOr<storage::Record> GetRecord(std::string_view key) override {
    WARD_RETURN_IF_ERROR(CheckReserved(key));
    if (Sealed()) return SealedError();
    WARD_ASSIGN_OR_RETURN(storage::Record record, storage_.Get(key));
    WARD_ASSIGN_OR_RETURN(std::string plaintext, Decrypt(key, record.value));
    return storage::Record{std::move(plaintext), record.revision};
  }

  absl::StatusOr<uint64_t> Commit(std::vector<storage::Op> ops) override {
    for (const storage::Op& op : ops) WARD_RETURN_IF_ERROR(CheckReserved(op.key));
    uint64_t puts = 0;
    {
      absl::ReaderMutexLock lock(&mu_);
      if (sealed_) return SealedError();
      const crypto::AeadKey& active = ActiveKey();
      const std::string header = ValueHeader(keyring_.active_term);
      for (storage::Op& op : ops) {
        if (op.kind != storage::Op::Kind::kPut) continue;
        absl::StatusOr<std::string> sealed = active.Seal(op.value, op.key, header);
        CountEncryption(sealed.ok());
        if (!sealed.ok()) return sealed.status();
        core::SecureZero(op.value);
        op.value = *std::move(sealed);
        ++puts;
      }
    }
    encryptions_.fetch_add(puts, std::memory_order_relaxed);
    return storage_.Commit(std::move(ops));
  }

  absl::StatusOr<storage::ListPage> List(std::string_view prefix, std::string_view after,
                                         size_t limit) override {
    if (Sealed()) return SealedError();
    // Reserved keys are dropped from the backend's pages; keep reading until the page is
    // full or the backend has nothing more.
    storage::ListPage out;
    std::string cursor(after);
    while (true) {
      const size_t want = limit == 0 ? 0 : limit - out.keys.size();
      WARD_ASSIGN_OR_RETURN(storage::ListPage page, storage_.List(prefix, cursor, want));
      if (page.keys.empty()) break;
      cursor = page.keys.back();
      for (std::string& key : page.keys) {
        if (!IsReservedKey(key)) out.keys.push_back(std::move(key));
      }
      if (!page.more) break;
      if (limit != 0 && out.keys.size() >= limit) {
        out.more = true;
        break;
      }
    }
    return out;
  }

  absl::StatusOr<storage::ScanPage> ScanCiphertext(std::string_view prefix, std::string_view after,
                                                   size_t limit) override {
    if (Sealed()) return SealedError();
    // As List: reserved keys are dropped from the backend's pages; keep reading until the page
    // is full or the backend has nothing more.
    storage::ScanPage out;
    std::string cursor(after);
    while (true) {
      const size_t want = limit == 0 ? 0 : limit - out.records.size();
      WARD_ASSIGN_OR_RETURN(storage::ScanPage page, storage_.Scan(prefix, cursor, want));
      if (page.records.empty()) break;
      cursor = page.records.back().key;
      for (storage::KeyedRecord& record : page.records) {
        if (!IsReservedKey(record.key)) out.records.push_back(std::move(record));
      }
      if (!page.more) break;
      if (limit != 0 && out.records.size() >= limit) {
        out.more = true;
        break;
      }
    }
    return out;
  }

  absl::StatusOr<std::string> Encrypt(std::string_view key, std::string_view plaintext) override {
    WARD_RETURN_IF_ERROR(CheckReserved(key));
    absl::ReaderMutexLock lock(&mu_);
    if (sealed_) return SealedError();
    absl::StatusOr<std::string> sealed =
        ActiveKey().Seal(plaintext, key, ValueHeader(keyring_.active_term));
    CountEncryption(sealed.ok());
    if (!sealed.ok()) return sealed.status();
    encryptions_.fetch_add(1, std::memory_order_relaxed);
    return sealed;
  }

  absl::StatusOr<std::string> Decrypt(std::string_view key, std::string_view ciphertext) override {
    WARD_RETURN_IF_ERROR(CheckReserved(key));
    absl::StatusOr<std::string> plaintext = Open(key, ciphertext);
    // kUnavailable: sealed (or the keyring reload could not read storage); nothing was tried.
    if (!absl::IsUnavailable(plaintext.status())) {
      counts_.decryptions.fetch_add(1, std::memory_order_relaxed);
      if (!plaintext.ok()) counts_.decryption_failures.fetch_add(1, std::memory_order_relaxed);
    }
    return plaintext;
  }

  OperationCounts Counts() const override {
    return OperationCounts{counts_.encryptions.load(std::memory_order_relaxed),
                           counts_.encryption_failures.load(std::memory_order_relaxed),
                           counts_.decryptions.load(std::memory_order_relaxed),
                           counts_.decryption_failures.load(std::memory_order_relaxed)};
  }

 private:
  void CountEncryption(bool ok) {
    counts_.encryptions.fetch_add(1, std::memory_order_relaxed);
    if (!ok) counts_.encryption_failures.fetch_add(1, std::memory_order_relaxed);
  }

  // Decrypt without the reserved-key check and the counting.
  absl::StatusOr<std::string> Open(std::string_view key, std::string_view ciphertext) {
    WARD_ASSIGN_OR_RETURN(uint32_t term, EnvelopeTerm(key, ciphertext));
    {
      absl::ReaderMutexLock lock(&mu_);
      if (sealed_) return SealedError();
      if (auto entry = term_keys_.find(term); entry != term_keys_.end()) {
        return OpenValue(entry->second, key, ciphertext);
      }
      if (term <= keyring_.active_term) return UnknownTermError(key, term);
    }
    // Newer than our active term: another node rotated. Reload the keyring once.
    WARD_RETURN_IF_ERROR(RefreshKeyring());
    absl::ReaderMutexLock lock(&mu_);
    if (sealed_) return SealedError();
    auto entry = term_keys_.find(term);
    if (entry == term_keys_.end()) return UnknownTermError(key, term);
    return OpenValue(entry->second, key, ciphertext);
  }

  static absl::Status UnknownTermError(std::string_view key, uint32_t term) {
    return absl::DataLossError("value at " + std::string(key) +
                               " is encrypted under unknown keyring term " + std::to_string(term));
  }

  // Reads and decrypts the stored keyring. Errors: kDataLoss if it is missing or does not
  // decrypt or parse under `root_key`; storage errors as Backend::Get.
  absl::StatusOr<StoredKeyring> LoadKeyring(const core::SecureBytes& root_key)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::StatusOr<storage::Record> record = storage_.Get(kKeyringPath);
    if (record.status().code() == absl::StatusCode::kNotFound) {
      return absl::DataLossError("root key exists but the keyring is missing");
    }
    if (!record.ok()) return record.status();
    WARD_ASSIGN_OR_RETURN(std::string_view body, RecordBody(record->value, kKeyringPath));
    absl::StatusOr<core::SecureBytes> json = crypto::AeadOpenSecret(root_key, body, kKeyringPath);
    if (json.status().code() == absl::StatusCode::kDataLoss) {
      return absl::DataLossError("keyring does not authenticate under the root key");
    }
    if (!json.ok()) return json.status();
    WARD_ASSIGN_OR_RETURN(Keyring keyring, internal::DecodeKeyring(json->view()));
    return StoredKeyring{std::move(keyring), record->revision};
  }

  // Installs `stored`, with `term_keys` prepared from it, if the barrier is unsealed and
  // `stored` is newer than what it holds.
  void Install(StoredKeyring stored, TermKeys term_keys) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (sealed_ || stored.revision <= keyring_revision_) return;
    if (stored.keyring.active_term != keyring_.active_term) {
      encryptions_.store(0, std::memory_order_relaxed);
    }
    keyring_ = std::move(stored.keyring);
    term_keys_ = std::move(term_keys);
    keyring_revision_ = stored.revision;
  }

  // The active term's prepared key. REQUIRES: unsealed (term_keys_ then holds every term).
  const crypto::AeadKey& ActiveKey() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return term_keys_.find(keyring_.active_term)->second;
  }

  // Reloads the keyring from storage (another node may have rotated).
  // Errors: kUnavailable if sealed; as LoadKeyring.
  absl::Status RefreshKeyring() ABSL_LOCKS_EXCLUDED(mu_) {
    core::SecureBytes root_key;
    {
      absl::ReaderMutexLock lock(&mu_);
      if (sealed_) return SealedError();
      root_key = root_key_.Copy();
    }
    WARD_ASSIGN_OR_RETURN(StoredKeyring stored, LoadKeyring(root_key));
    WARD_ASSIGN_OR_RETURN(TermKeys term_keys, PrepareTermKeys(stored.keyring));
    Install(std::move(stored), std::move(term_keys));
    return absl::OkStatus();
  }

  storage::Backend& storage_;
  core::Clock& clock_;

  // Serialises this node's rotations so they never race each other for the keyring (races
  // with other nodes are resolved by the conditional write and a retry). Held across storage
  // I/O on purpose: nothing else takes it, and rotation is rare.
  absl::Mutex rotate_mu_ ABSL_ACQUIRED_BEFORE(mu_);

  mutable absl::Mutex mu_;
  bool sealed_ ABSL_GUARDED_BY(mu_) = true;
  core::SecureBytes root_key_ ABSL_GUARDED_BY(mu_);
  // Non-empty, with its active term present, whenever !sealed_.
  Keyring keyring_ ABSL_GUARDED_BY(mu_);
  // keyring_'s terms prepared for sealing and opening values: the same term numbers, empty
  // while sealed.
  TermKeys term_keys_ ABSL_GUARDED_BY(mu_);
  // Storage revision of the keyring record keyring_ was read from or written as.
  uint64_t keyring_revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Values encrypted under the active term since unseal or rotation (KeyStatus::encryptions).
  std::atomic<uint64_t> encryptions_{0};
  // Lifetime operation counts (Counts()).
  struct {
    std::atomic<uint64_t> encryptions{0};
    std::atomic<uint64_t> encryption_failures{0};
    std::atomic<uint64_t> decryptions{0};
    std::atomic<uint64_t> decryption_failures{0};
  } counts_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Barrier>> Barrier::Create(storage::Backend& storage,
                                                         core::Clock& clock) {
  return std::unique_ptr<Barrier>(new AesGcmBarrier(storage, clock));
}

}  // namespace ward::barrier
