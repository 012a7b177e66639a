#include "barrier/barrier.h"

#include <string>
#include <thread>
#include <vector>

#include "barrier/internal/keyring.h"
#include "barrier/testing/hooked_backend.h"
#include "core/testing/fake_clock.h"
#include "crypto/aead.h"
#include "crypto/random.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"

namespace ward::barrier {
namespace {

using absl::StatusCode;

core::SecureBytes NewKey() {
  absl::StatusOr<core::SecureBytes> key = crypto::RandomBytes(32);
  EXPECT_TRUE(key.ok());
  return std::move(*key);
}

uint32_t StoredTerm(const std::string& raw) {
  EXPECT_GE(raw.size(), 5u);
  return (static_cast<uint32_t>(static_cast<uint8_t>(raw[1])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(raw[2])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(raw[3])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(raw[4]));
}

class BarrierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = NewBarrier(storage_);
    ASSERT_TRUE(barrier_->Initialize(unseal_key_).ok());
    ASSERT_TRUE(barrier_->Unseal(unseal_key_).ok());
  }

  std::unique_ptr<Barrier> NewBarrier(storage::Backend& storage) {
    absl::StatusOr<std::unique_ptr<Barrier>> barrier = Barrier::Create(storage, clock_);
    EXPECT_TRUE(barrier.ok());
    return std::move(*barrier);
  }

  std::string Raw(std::string_view key) {
    absl::StatusOr<storage::Record> record = storage_.Get(key);
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? record->value : "";
  }

  void PutRaw(std::string key, std::string value) {
    ASSERT_TRUE(storage_.Put(std::move(key), std::move(value)).ok());
  }

  core::FakeClock clock_;
  storage::MemoryBackend storage_;
  core::SecureBytes unseal_key_ = NewKey();
  std::unique_ptr<Barrier> barrier_;
};

TEST_F(BarrierTest, FreshStorageIsUninitializedAndInitializeLeavesItSealed) {
  storage::MemoryBackend storage;
  std::unique_ptr<Barrier> barrier = NewBarrier(storage);
  absl::StatusOr<bool> initialized = barrier->Initialized();
  ASSERT_TRUE(initialized.ok());
  EXPECT_FALSE(*initialized);
  EXPECT_TRUE(barrier->Sealed());

  ASSERT_TRUE(barrier->Initialize(unseal_key_).ok());
  initialized = barrier->Initialized();
  ASSERT_TRUE(initialized.ok());
  EXPECT_TRUE(*initialized);
  EXPECT_TRUE(barrier->Sealed());
  EXPECT_TRUE(storage.Get(kRootKeyPath).ok());
  EXPECT_TRUE(storage.Get(kKeyringPath).ok());
}

TEST_F(BarrierTest, InitializeTwiceIsFailedPrecondition) {
  EXPECT_EQ(barrier_->Initialize(NewKey()).code(), StatusCode::kFailedPrecondition);
}

TEST_F(BarrierTest, InitializeAndUnsealRejectWrongKeyLength) {
  storage::MemoryBackend storage;
  std::unique_ptr<Barrier> barrier = NewBarrier(storage);
  EXPECT_EQ(barrier->Initialize(core::SecureBytes(16)).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(barrier->Initialize(unseal_key_).ok());
  EXPECT_EQ(barrier->Unseal(core::SecureBytes(31)).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(barrier->Sealed());
}

TEST_F(BarrierTest, UnsealBeforeInitializeIsFailedPrecondition) {
  storage::MemoryBackend storage;
  std::unique_ptr<Barrier> barrier = NewBarrier(storage);
  EXPECT_EQ(barrier->Unseal(unseal_key_).code(), StatusCode::kFailedPrecondition);
}

TEST_F(BarrierTest, WrongUnsealKeyIsPermissionDenied) {
  barrier_->Seal();
  EXPECT_EQ(barrier_->Unseal(NewKey()).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(barrier_->Sealed());
  EXPECT_TRUE(barrier_->Unseal(unseal_key_).ok());
  EXPECT_FALSE(barrier_->Sealed());
}

TEST_F(BarrierTest, UnsealWhenUnsealedIsOkEvenWithAnotherKey) {
  EXPECT_TRUE(barrier_->Unseal(NewKey()).ok());
  EXPECT_FALSE(barrier_->Sealed());
}

TEST_F(BarrierTest, PutThenGetReturnsPlaintextAndRevision) {
  absl::StatusOr<uint64_t> revision = barrier_->Put("kv/app/db", "hunter2");
  ASSERT_TRUE(revision.ok()) << revision.status();
  absl::StatusOr<std::string> value = barrier_->Get("kv/app/db");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "hunter2");
  absl::StatusOr<storage::Record> record = barrier_->GetRecord("kv/app/db");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->value, "hunter2");
  EXPECT_EQ(record->revision, *revision);

  absl::StatusOr<std::string> empty_put = barrier_->Get("kv/missing");
  EXPECT_EQ(empty_put.status().code(), StatusCode::kNotFound);
}

TEST_F(BarrierTest, EmptyValueRoundTrips) {
  ASSERT_TRUE(barrier_->Put("kv/empty", "").ok());
  absl::StatusOr<std::string> value = barrier_->Get("kv/empty");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "");
}

TEST_F(BarrierTest, CommitEncryptsEveryPutAndAppliesDeletesAndChecks) {
  ASSERT_TRUE(barrier_->Put("a", "1").ok());
  absl::StatusOr<storage::Record> a = barrier_->GetRecord("a");
  ASSERT_TRUE(a.ok());
  std::vector<storage::Op> ops;
  ops.push_back(storage::Op::Check("a", a->revision));
  ops.push_back(storage::Op::Delete("a"));
  ops.push_back(storage::Op::Put("b", "2"));
  ops.push_back(storage::Op::Put("c", "3"));
  ASSERT_TRUE(barrier_->Commit(std::move(ops)).ok());
  EXPECT_EQ(barrier_->Get("a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*barrier_->Get("b"), "2");
  EXPECT_EQ(*barrier_->Get("c"), "3");

  std::vector<storage::Op> stale;
  stale.push_back(storage::Op::Check("b", 1));
  stale.push_back(storage::Op::Put("b", "lost"));
  EXPECT_EQ(barrier_->Commit(std::move(stale)).status().code(), StatusCode::kAborted);
  EXPECT_EQ(*barrier_->Get("b"), "2");
}

TEST_F(BarrierTest, StoredValueIsCiphertextInVersionedEnvelope) {
  const std::string secret = "correct horse battery staple";
  ASSERT_TRUE(barrier_->Put("kv/app/password", secret).ok());
  std::string raw = Raw("kv/app/password");
  EXPECT_EQ(raw.find(secret), std::string::npos);
  EXPECT_EQ(raw.find("horse"), std::string::npos);
  ASSERT_EQ(raw.size(), 5 + 12 + secret.size() + 16);
  EXPECT_EQ(raw[0], '\x01');
  EXPECT_EQ(StoredTerm(raw), 1u);

  // Root key and keyring records do not contain plaintext JSON either.
  EXPECT_EQ(Raw(kKeyringPath).find("active_term"), std::string::npos);
  EXPECT_EQ(Raw(kKeyringPath)[0], '\x01');
  EXPECT_EQ(Raw(kRootKeyPath).size(), 1 + 12 + 32 + 16u);
}

// The barrier seals and opens values with prepared keys and reused cipher contexts; the
// stored bytes must stay exactly what the one-shot crypto::AeadSeal/AeadOpen produce and
// accept under the keyring's data keys (docs/storage-format.md), in both directions.
TEST_F(BarrierTest, ValuesMatchTheOneShotAeadFormatInBothDirections) {
  // The data keys, read from storage the way the format describes.
  auto data_keys = [&]() {
    absl::StatusOr<core::SecureBytes> root_key = crypto::AeadOpenSecret(
        unseal_key_, std::string_view(Raw(kRootKeyPath)).substr(1), kRootKeyPath);
    EXPECT_TRUE(root_key.ok()) << root_key.status();
    absl::StatusOr<core::SecureBytes> json = crypto::AeadOpenSecret(
        *root_key, std::string_view(Raw(kKeyringPath)).substr(1), kKeyringPath);
    EXPECT_TRUE(json.ok()) << json.status();
    absl::StatusOr<internal::Keyring> keyring = internal::DecodeKeyring(json->view());
    EXPECT_TRUE(keyring.ok()) << keyring.status();
    return *std::move(keyring);
  };
  auto header = [](uint32_t term) {
    return std::string{'\x01', static_cast<char>(term >> 24), static_cast<char>(term >> 16),
                       static_cast<char>(term >> 8), static_cast<char>(term)};
  };

  std::unique_ptr<Barrier> other_node = NewBarrier(storage_);
  ASSERT_TRUE(other_node->Unseal(unseal_key_).ok());
  for (uint32_t term = 1; term <= 3; ++term) {
    internal::Keyring keyring = data_keys();
    ASSERT_EQ(keyring.active_term, term);
    for (int i = 0; i < 3; ++i) {  // several values per term, so contexts are reused
      const std::string key = "kv/t" + std::to_string(term) + "/" + std::to_string(i);
      const std::string value = "value " + key + std::string(1000, 'v');
      // Barrier -> one-shot.
      ASSERT_TRUE(barrier_->Put(key, value).ok());
      const std::string raw = Raw(key);
      EXPECT_EQ(raw.substr(0, 5), header(term));
      absl::StatusOr<std::string> opened =
          crypto::AeadOpen(keyring.Find(term)->key, std::string_view(raw).substr(5), key);
      ASSERT_TRUE(opened.ok()) << opened.status();
      EXPECT_EQ(*opened, value);
      // One-shot -> barrier, for this and every earlier term.
      for (uint32_t old = 1; old <= term; ++old) {
        const std::string old_key = key + "/by-one-shot/" + std::to_string(old);
        absl::StatusOr<std::string> sealed =
            crypto::AeadSeal(keyring.Find(old)->key, value, old_key, header(old));
        ASSERT_TRUE(sealed.ok());
        PutRaw(old_key, *sealed);
        EXPECT_EQ(*barrier_->Get(old_key), value) << old_key;
        EXPECT_EQ(*barrier_->Decrypt(old_key, *sealed), value) << old_key;
        EXPECT_EQ(barrier_->Decrypt(key, *sealed).status().code(), StatusCode::kDataLoss);
      }
    }
    // The next term arrives by turns through this node's Rotate, a seal cycle plus a rotation
    // by another node, which this node picks up on read: each path must rebuild the keys.
    if (term == 1) {
      ASSERT_TRUE(barrier_->Rotate().ok());
    } else if (term == 2) {
      barrier_->Seal();
      ASSERT_TRUE(barrier_->Unseal(unseal_key_).ok());
      ASSERT_TRUE(other_node->Rotate().ok());
      ASSERT_TRUE(other_node->Put("kv/from-other", "term three").ok());
      EXPECT_EQ(*barrier_->Get("kv/from-other"), "term three");
      ASSERT_EQ(barrier_->Status()->term, 3u);
    }
  }
}

TEST_F(BarrierTest, ValueMovedToAnotherKeyIsDataLoss) {
  ASSERT_TRUE(barrier_->Put("kv/a", "alpha").ok());
  PutRaw("kv/b", Raw("kv/a"));
  EXPECT_EQ(barrier_->Get("kv/b").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(barrier_->Decrypt("kv/b", Raw("kv/a")).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(*barrier_->Get("kv/a"), "alpha");
}

TEST_F(BarrierTest, EveryTamperedByteIsDataLoss) {
  ASSERT_TRUE(barrier_->Put("kv/a", "alpha").ok());
  const std::string raw = Raw("kv/a");
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string tampered = raw;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    PutRaw("kv/a", tampered);
    EXPECT_EQ(barrier_->Get("kv/a").status().code(), StatusCode::kDataLoss) << "byte " << i;
  }
  PutRaw("kv/a", raw.substr(0, raw.size() - 1));
  EXPECT_EQ(barrier_->Get("kv/a").status().code(), StatusCode::kDataLoss);
  PutRaw("kv/a", raw.substr(0, 5 + 27));
  EXPECT_EQ(barrier_->Get("kv/a").status().code(), StatusCode::kDataLoss);
  PutRaw("kv/a", "");
  EXPECT_EQ(barrier_->Get("kv/a").status().code(), StatusCode::kDataLoss);
  PutRaw("kv/a", raw);
  EXPECT_EQ(*barrier_->Get("kv/a"), "alpha");
}

TEST_F(BarrierTest, SealedBarrierRefusesDataOperationsWithVaultMessage) {
  ASSERT_TRUE(barrier_->Put("kv/a", "alpha").ok());
  const std::string raw = Raw("kv/a");
  barrier_->Seal();
  barrier_->Seal();  // idempotent
  EXPECT_TRUE(barrier_->Sealed());

  absl::Status get = barrier_->Get("kv/a").status();
  EXPECT_EQ(get.code(), StatusCode::kUnavailable);
  EXPECT_EQ(get.message(), "Vault is sealed");
  EXPECT_EQ(barrier_->GetRecord("kv/a").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(barrier_->Put("kv/b", "beta").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(barrier_->Delete("kv/a").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(barrier_->List("kv/", "", 0).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(barrier_->ScanCiphertext("kv/", "", 0).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(barrier_->Encrypt("kv/a", "x").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(barrier_->Decrypt("kv/a", raw).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(barrier_->Status().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(barrier_->Rotate().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Raw("kv/a"), raw);  // nothing was written or deleted
  EXPECT_EQ(storage_.Get("kv/b").status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(barrier_->Unseal(unseal_key_).ok());
  EXPECT_EQ(*barrier_->Get("kv/a"), "alpha");
}

TEST_F(BarrierTest, RotateKeepsOldValuesReadableAndEncryptsNewOnesUnderNewTerm) {
  ASSERT_TRUE(barrier_->Put("kv/old", "written under term 1").ok());
  absl::StatusOr<KeyStatus> before = barrier_->Status();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->term, 1u);
  EXPECT_EQ(before->encryptions, 1u);

  clock_.Advance(absl::Hours(1));
  absl::StatusOr<KeyStatus> rotated = barrier_->Rotate();
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->term, 2u);
  EXPECT_EQ(rotated->install_time, clock_.Now());
  EXPECT_EQ(rotated->encryptions, 0u);

  ASSERT_TRUE(barrier_->Put("kv/new", "written under term 2").ok());
  EXPECT_EQ(StoredTerm(Raw("kv/old")), 1u);
  EXPECT_EQ(StoredTerm(Raw("kv/new")), 2u);
  EXPECT_EQ(*barrier_->Get("kv/old"), "written under term 1");
  EXPECT_EQ(*barrier_->Get("kv/new"), "written under term 2");

  absl::StatusOr<KeyStatus> after = barrier_->Status();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->term, 2u);
  EXPECT_EQ(after->install_time, clock_.Now());
  EXPECT_EQ(after->encryptions, 1u);

  ASSERT_TRUE(barrier_->Rotate().ok());
  absl::StatusOr<std::string> encrypted = barrier_->Encrypt("kv/x", "x");
  ASSERT_TRUE(encrypted.ok());
  EXPECT_EQ(StoredTerm(*encrypted), 3u);
}

TEST_F(BarrierTest, UnknownTermIsDataLoss) {
  ASSERT_TRUE(barrier_->Put("kv/a", "alpha").ok());
  std::string raw = Raw("kv/a");
  raw[4] = 9;  // term 9 does not exist, even after reloading the keyring
  PutRaw("kv/a", raw);
  EXPECT_EQ(barrier_->Get("kv/a").status().code(), StatusCode::kDataLoss);
  raw[4] = 0;  // term 0 is never issued
  EXPECT_EQ(barrier_->Decrypt("kv/a", raw).status().code(), StatusCode::kDataLoss);
}

TEST_F(BarrierTest, ReservedKeysAreRefusedToCallers) {
  for (std::string key : {std::string(kKeyringPath), std::string(kRootKeyPath),
                          std::string(kSealConfigPath), std::string("core/seal/other")}) {
    EXPECT_EQ(barrier_->Get(key).status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(barrier_->GetRecord(key).status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(barrier_->Put(key, "x").status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(barrier_->Delete(key).status().code(), StatusCode::kInvalidArgument) << key;
    std::vector<storage::Op> check;
    check.push_back(storage::Op::Check(key, 0));
    EXPECT_EQ(barrier_->Commit(std::move(check)).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(barrier_->Encrypt(key, "x").status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(barrier_->Decrypt(key, Raw(kKeyringPath)).status().code(),
              StatusCode::kInvalidArgument)
        << key;
  }
  // A commit mixing allowed and reserved keys writes nothing.
  std::vector<storage::Op> mixed;
  mixed.push_back(storage::Op::Put("kv/fine", "x"));
  mixed.push_back(storage::Op::Delete(std::string(kKeyringPath)));
  EXPECT_EQ(barrier_->Commit(std::move(mixed)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(barrier_->Get("kv/fine").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(storage_.Get(kKeyringPath).ok());
  // Keys that merely look similar are ordinary.
  EXPECT_TRUE(barrier_->Put("core/keyring2", "x").ok());
  EXPECT_TRUE(barrier_->Put("core/sealed", "x").ok());
}

TEST_F(BarrierTest, ListHidesReservedKeysAndPagesAcrossThem) {
  ASSERT_TRUE(barrier_->Put("core/a", "1").ok());
  ASSERT_TRUE(barrier_->Put("core/z", "2").ok());
  ASSERT_TRUE(storage_.Put("core/seal/zz-extra", "raw").ok());

  absl::StatusOr<storage::ListPage> all = barrier_->List("core/", "", 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->keys, (std::vector<std::string>{"core/a", "core/z"}));
  EXPECT_FALSE(all->more);

  // "core/keyring" and three "core/seal/..." keys sit between the two visible keys.
  absl::StatusOr<storage::ListPage> first = barrier_->List("core/", "", 1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->keys, (std::vector<std::string>{"core/a"}));
  EXPECT_TRUE(first->more);
  absl::StatusOr<storage::ListPage> second = barrier_->List("core/", "core/a", 1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->keys, (std::vector<std::string>{"core/z"}));
  absl::StatusOr<storage::ListPage> third = barrier_->List("core/", "core/z", 1);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->keys.empty());
  EXPECT_FALSE(third->more);
}

TEST_F(BarrierTest, ScanCiphertextReturnsStoredEnvelopesThatDecryptOpens) {
  ASSERT_TRUE(barrier_->Put("kv/a", "alpha").ok());
  absl::StatusOr<uint64_t> revision_b = barrier_->Put("kv/b", "beta");
  ASSERT_TRUE(revision_b.ok());
  ASSERT_TRUE(barrier_->Put("kw", "other").ok());
  // Not opened by the scan: a tampered value is returned as stored and fails only in Decrypt.
  std::string tampered = Raw("kv/a");
  tampered.back() ^= 1;
  PutRaw("kv/c", Raw("kv/a"));  // moved from another key

  absl::StatusOr<storage::ScanPage> page = barrier_->ScanCiphertext("kv/", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_FALSE(page->more);
  ASSERT_EQ(page->records.size(), 3u);
  EXPECT_EQ(page->records[0].key, "kv/a");
  EXPECT_EQ(page->records[0].value, Raw("kv/a"));
  EXPECT_EQ(page->records[1].key, "kv/b");
  EXPECT_EQ(page->records[1].revision, *revision_b);
  EXPECT_EQ(*barrier_->Decrypt("kv/a", page->records[0].value), "alpha");
  EXPECT_EQ(*barrier_->Decrypt("kv/b", page->records[1].value), "beta");
  EXPECT_EQ(page->records[2].key, "kv/c");
  EXPECT_EQ(barrier_->Decrypt("kv/c", page->records[2].value).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(barrier_->Decrypt("kv/a", tampered).status().code(), StatusCode::kDataLoss);
}

TEST_F(BarrierTest, ScanCiphertextHidesReservedKeysAndPagesAcrossThem) {
  ASSERT_TRUE(barrier_->Put("core/a", "1").ok());
  ASSERT_TRUE(barrier_->Put("core/z", "2").ok());
  ASSERT_TRUE(storage_.Put("core/seal/zz-extra", "raw").ok());

  absl::StatusOr<storage::ScanPage> all = barrier_->ScanCiphertext("core/", "", 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->records.size(), 2u);
  EXPECT_EQ(all->records[0].key, "core/a");
  EXPECT_EQ(all->records[1].key, "core/z");
  EXPECT_FALSE(all->more);

  // "core/keyring" and three "core/seal/..." keys sit between the two visible keys.
  absl::StatusOr<storage::ScanPage> first = barrier_->ScanCiphertext("core/", "", 1);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->records.size(), 1u);
  EXPECT_EQ(first->records[0].key, "core/a");
  EXPECT_TRUE(first->more);
  absl::StatusOr<storage::ScanPage> second = barrier_->ScanCiphertext("core/", "core/a", 1);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->records.size(), 1u);
  EXPECT_EQ(second->records[0].key, "core/z");
  EXPECT_EQ(*barrier_->Decrypt("core/z", second->records[0].value), "2");
  absl::StatusOr<storage::ScanPage> third = barrier_->ScanCiphertext("core/", "core/z", 1);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->records.empty());
  EXPECT_FALSE(third->more);
}

TEST_F(BarrierTest, EncryptAndDecryptMatchCommitAndGet) {
  absl::StatusOr<std::string> ciphertext = barrier_->Encrypt("kv/a", "alpha");
  ASSERT_TRUE(ciphertext.ok());
  PutRaw("kv/a", *ciphertext);
  EXPECT_EQ(*barrier_->Get("kv/a"), "alpha");

  ASSERT_TRUE(barrier_->Put("kv/b", "beta").ok());
  absl::StatusOr<std::string> plaintext = barrier_->Decrypt("kv/b", Raw("kv/b"));
  ASSERT_TRUE(plaintext.ok());
  EXPECT_EQ(*plaintext, "beta");
}

TEST_F(BarrierTest, CountsEncryptionsDecryptionsAndFailuresAcrossSealCycles) {
  OperationCounts start = barrier_->Counts();
  std::vector<storage::Op> ops;
  ops.push_back(storage::Op::Put("kv/a", "1"));
  ops.push_back(storage::Op::Put("kv/b", "2"));
  ops.push_back(storage::Op::Delete("kv/c"));
  ASSERT_TRUE(barrier_->Commit(std::move(ops)).ok());
  ASSERT_TRUE(barrier_->Encrypt("kv/x", "y").ok());
  ASSERT_TRUE(barrier_->Get("kv/a").ok());
  ASSERT_TRUE(barrier_->GetRecord("kv/b").ok());
  EXPECT_EQ(barrier_->Get("kv/absent").status().code(), StatusCode::kNotFound);  // no crypto
  PutRaw("kv/moved", Raw("kv/a"));
  EXPECT_EQ(barrier_->Get("kv/moved").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(barrier_->Decrypt("kv/x", "short").status().code(), StatusCode::kDataLoss);

  OperationCounts open = barrier_->Counts();
  EXPECT_EQ(open.encryptions - start.encryptions, 3u);
  EXPECT_EQ(open.encryption_failures, start.encryption_failures);
  EXPECT_EQ(open.decryptions - start.decryptions, 4u);
  EXPECT_EQ(open.decryption_failures - start.decryption_failures, 2u);

  // Refusals while sealed are not operations; the counts survive the seal cycle.
  barrier_->Seal();
  EXPECT_EQ(barrier_->Get("kv/a").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(barrier_->Encrypt("kv/a", "z").status().code(), StatusCode::kUnavailable);
  OperationCounts sealed = barrier_->Counts();
  EXPECT_EQ(sealed.encryptions, open.encryptions);
  EXPECT_EQ(sealed.decryptions, open.decryptions);
  ASSERT_TRUE(barrier_->Unseal(unseal_key_).ok());
  ASSERT_TRUE(barrier_->Get("kv/a").ok());
  EXPECT_EQ(barrier_->Counts().decryptions, open.decryptions + 1);
}

TEST_F(BarrierTest, NewBarrierOnSameStorageUnsealsAndReadsOldData) {
  ASSERT_TRUE(barrier_->Put("kv/one", "first").ok());
  ASSERT_TRUE(barrier_->Rotate().ok());
  ASSERT_TRUE(barrier_->Put("kv/two", "second").ok());
  barrier_.reset();

  std::unique_ptr<Barrier> reopened = NewBarrier(storage_);
  EXPECT_TRUE(reopened->Sealed());
  EXPECT_TRUE(*reopened->Initialized());
  EXPECT_EQ(reopened->Get("kv/one").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(reopened->Unseal(NewKey()).code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(reopened->Unseal(unseal_key_).ok());
  EXPECT_EQ(*reopened->Get("kv/one"), "first");
  EXPECT_EQ(*reopened->Get("kv/two"), "second");
  EXPECT_EQ(reopened->Status()->term, 2u);
}

TEST_F(BarrierTest, CorruptKeyringIsDataLossOnUnseal) {
  barrier_->Seal();
  std::string keyring = Raw(kKeyringPath);
  keyring[keyring.size() / 2] ^= 0x20;
  PutRaw(std::string(kKeyringPath), keyring);
  EXPECT_EQ(barrier_->Unseal(unseal_key_).code(), StatusCode::kDataLoss);
  EXPECT_TRUE(barrier_->Sealed());
}

TEST_F(BarrierTest, RotationByAnotherNodeIsPickedUpOnRead) {
  std::unique_ptr<Barrier> other = NewBarrier(storage_);
  ASSERT_TRUE(other->Unseal(unseal_key_).ok());
  absl::StatusOr<KeyStatus> rotated = other->Rotate();
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(rotated->term, 2u);
  ASSERT_TRUE(other->Put("kv/from-other", "term two").ok());
  EXPECT_EQ(StoredTerm(Raw("kv/from-other")), 2u);

  // This node still encrypts under term 1 but reads term 2 by reloading the keyring.
  EXPECT_EQ(barrier_->Status()->term, 1u);
  EXPECT_EQ(*barrier_->Get("kv/from-other"), "term two");
  EXPECT_EQ(barrier_->Status()->term, 2u);

  // Rotating here starts from the stored keyring, so no term number is reused.
  absl::StatusOr<KeyStatus> again = barrier_->Rotate();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->term, 3u);
}

TEST_F(BarrierTest, ConcurrentRotationLosesNoTerm) {
  testing::HookedBackend hooked(storage_);
  std::unique_ptr<Barrier> node_a = NewBarrier(hooked);
  std::unique_ptr<Barrier> node_b = NewBarrier(storage_);
  ASSERT_TRUE(node_a->Unseal(unseal_key_).ok());
  ASSERT_TRUE(node_b->Unseal(unseal_key_).ok());

  // Node B rotates (and writes under its new term) after node A has read the keyring but
  // before A's conditional write: A's write must fail its check and A must retry.
  hooked.BeforeNextCommit([&] {
    ASSERT_EQ(node_b->Rotate()->term, 2u);
    ASSERT_TRUE(node_b->Put("kv/b", "from b").ok());
  });
  absl::StatusOr<KeyStatus> rotated = node_a->Rotate();
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->term, 3u);
  ASSERT_TRUE(node_a->Put("kv/a", "from a").ok());

  EXPECT_EQ(StoredTerm(Raw("kv/b")), 2u);
  EXPECT_EQ(StoredTerm(Raw("kv/a")), 3u);
  EXPECT_EQ(*node_a->Get("kv/b"), "from b");
  EXPECT_EQ(*node_b->Get("kv/a"), "from a");

  // A fresh node sees all three terms.
  std::unique_ptr<Barrier> node_c = NewBarrier(storage_);
  ASSERT_TRUE(node_c->Unseal(unseal_key_).ok());
  EXPECT_EQ(node_c->Status()->term, 3u);
  EXPECT_EQ(*node_c->Get("kv/a"), "from a");
  EXPECT_EQ(*node_c->Get("kv/b"), "from b");
}

TEST_F(BarrierTest, ConcurrentReadsWritesAndRotationsAgree) {
  constexpr int kThreads = 4;
  constexpr int kOps = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOps; ++i) {
        const std::string key = "kv/t" + std::to_string(t) + "/" + std::to_string(i);
        const std::string value = "value " + std::to_string(t * kOps + i);
        ASSERT_TRUE(barrier_->Put(key, value).ok());
        absl::StatusOr<std::string> read = barrier_->Get(key);
        ASSERT_TRUE(read.ok()) << read.status();
        ASSERT_EQ(*read, value);
        if (i % 25 == 0) {
          ASSERT_TRUE(barrier_->Rotate().ok());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(barrier_->Status()->term, 1u + kThreads * (kOps / 25));
  EXPECT_EQ(*barrier_->Get("kv/t0/0"), "value 0");
}

}  // namespace
}  // namespace ward::barrier
