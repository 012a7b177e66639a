#include "auth/policy_store.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "barrier/barrier.h"
#include "barrier/testing/unsealed_barrier.h"
#include "core/secure_bytes.h"
#include "core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"

namespace ward::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

core::SecureBytes UnsealKey() {
  core::SecureBytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<uint8_t>(i * 5 + 3);
  return key;
}

class PolicyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = barrier::testing::NewUnsealedBarrier(backend_, clock_, UnsealKey());
    ASSERT_TRUE(b.ok()) << b.status();
    barrier_ = *std::move(b);
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<PolicyStore> Open() {
    auto store = PolicyStore::Create(*barrier_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  storage::MemoryBackend backend_;
  core::FakeClock clock_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<PolicyStore> store_;
};

TEST_F(PolicyStoreTest, StartsWithDefaultStoredAndRootBuiltIn) {
  EXPECT_THAT(store_->List(), ElementsAre("default", "root"));
  auto def = store_->Get("default");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->text, kDefaultPolicyText);
  auto stored = barrier_->Get("core/policy/default");
  ASSERT_TRUE(stored.ok()) << stored.status();
  auto root = store_->Get("root");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->name, "root");
  EXPECT_EQ(root->text, "");
  EXPECT_EQ(store_->Get("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PolicyStoreTest, DefaultPolicyGrantsVaultsSelfServicePaths) {
  Acl acl = store_->AclFor({"default"});
  EXPECT_TRUE(acl.Allowed("auth/token/lookup-self", Capability::kRead));
  EXPECT_FALSE(acl.Allowed("auth/token/lookup-self", Capability::kUpdate));
  EXPECT_TRUE(acl.Allowed("auth/token/renew-self", Capability::kUpdate));
  EXPECT_TRUE(acl.Allowed("auth/token/revoke-self", Capability::kUpdate));
  EXPECT_TRUE(acl.Allowed("sys/capabilities-self", Capability::kUpdate));
  EXPECT_TRUE(acl.Allowed("cubbyhole/x", Capability::kCreate));
  EXPECT_TRUE(acl.Allowed("identity/oidc/provider/p/authorize", Capability::kRead));
  EXPECT_FALSE(acl.Allowed("identity/entity/id/{{identity.entity.id}}", Capability::kRead));
  EXPECT_FALSE(acl.Allowed("secret/data/app", Capability::kRead));
  EXPECT_FALSE(acl.Allowed("auth/token/create", Capability::kUpdate));
}

TEST_F(PolicyStoreTest, PutAppliesToExistingAclsBuiltLaterAndPersists) {
  ASSERT_TRUE(store_->Put(" Dev ", R"(path "secret/data/*" { capabilities = ["read"] })").ok());
  Acl before = store_->AclFor({"dev"});
  EXPECT_TRUE(before.Allowed("secret/data/x", Capability::kRead));
  ASSERT_TRUE(store_->Put("dev", R"(path "secret/data/*" { capabilities = ["update"] })").ok());
  // An Acl is a snapshot; the next one sees the change.
  EXPECT_TRUE(before.Allowed("secret/data/x", Capability::kRead));
  Acl after = store_->AclFor({"dev"});
  EXPECT_FALSE(after.Allowed("secret/data/x", Capability::kRead));
  EXPECT_TRUE(after.Allowed("secret/data/x", Capability::kUpdate));
  EXPECT_THAT(store_->List(), ElementsAre("default", "dev", "root"));

  // Reopening from storage gives the same policies.
  std::unique_ptr<PolicyStore> reopened = Open();
  ASSERT_NE(reopened, nullptr);
  auto dev = reopened->Get("dev");
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ(dev->text, R"(path "secret/data/*" { capabilities = ["update"] })");
  EXPECT_TRUE(reopened->AclFor({"dev"}).Allowed("secret/data/x", Capability::kUpdate));
}

TEST_F(PolicyStoreTest, InvalidPolicyIsRejectedAndNothingChanges) {
  ASSERT_TRUE(store_->Put("dev", R"(path "a" { capabilities = ["read"] })").ok());
  absl::Status s = store_->Put("dev", "path \"a\" {\n  capabilities [\"read\"]\n}");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("line 2, column 16: expected '='"));
  EXPECT_TRUE(store_->AclFor({"dev"}).Allowed("a", Capability::kRead));
  EXPECT_EQ(store_->Put("", "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("a/b", "").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PolicyStoreTest, BuiltInsCannotBeRemovedAndRootCannotBeChanged) {
  absl::Status s = store_->Put("root", R"(path "a" { capabilities = ["read"] })");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "cannot update root policy");
  s = store_->Delete("root");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "cannot delete root policy");
  s = store_->Delete("DEFAULT");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "cannot delete default policy");
  // default can be rewritten, and the rewrite survives a reopen (it is not reset).
  ASSERT_TRUE(store_->Put("default", R"(path "x" { capabilities = ["list"] })").ok());
  std::unique_ptr<PolicyStore> reopened = Open();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->Get("default")->text, R"(path "x" { capabilities = ["list"] })");
  EXPECT_FALSE(reopened->AclFor({"default"}).Allowed("auth/token/lookup-self", Capability::kRead));
}

TEST_F(PolicyStoreTest, DeleteRemovesPolicyFromStorageAndSnapshots) {
  ASSERT_TRUE(store_->Put("dev", R"(path "a" { capabilities = ["read"] })").ok());
  ASSERT_TRUE(store_->Delete("dev").ok());
  EXPECT_FALSE(store_->AclFor({"dev"}).Allowed("a", Capability::kRead));
  EXPECT_EQ(store_->Get("dev").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(barrier_->Get("core/policy/dev").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Delete("never-existed").ok());
  std::unique_ptr<PolicyStore> reopened = Open();
  ASSERT_NE(reopened, nullptr);
  EXPECT_THAT(reopened->List(), ElementsAre("default", "root"));
}

TEST_F(PolicyStoreTest, SealedBarrierFailsCreateAndWrites) {
  barrier_->Seal();
  EXPECT_EQ(PolicyStore::Create(*barrier_).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->Put("dev", R"(path "a" { capabilities = ["read"] })").code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->Get("dev").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PolicyStoreTest, CorruptRecordIsDataLoss) {
  ASSERT_TRUE(barrier_->Put("core/policy/bad", "not json").ok());
  EXPECT_EQ(PolicyStore::Create(*barrier_).status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(barrier_->Put("core/policy/bad", R"({"name":"bad","policy":"path {"})").ok());
  EXPECT_EQ(PolicyStore::Create(*barrier_).status().code(), absl::StatusCode::kDataLoss);
}


// Readers evaluate while a writer flips a policy: every Acl sees one whole version (read-only
// or write-only), never a mix, and never blocks on the writer.
TEST_F(PolicyStoreTest, ConcurrentReadersSeeWholeSnapshots) {
  const std::string kReadOnly = R"(path "s/*" { capabilities = ["read"] })";
  const std::string kWriteOnly = R"(path "s/*" { capabilities = ["update"] })";
  ASSERT_TRUE(store_->Put("flip", kReadOnly).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        Acl acl = store_->AclFor({"flip"});
        bool read = acl.Allowed("s/x", Capability::kRead);
        bool update = acl.Allowed("s/x", Capability::kUpdate);
        if (read == update) torn.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(store_->Put("flip", i % 2 == 0 ? kWriteOnly : kReadOnly).ok());
  }
  stop.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_TRUE(store_->AclFor({"flip"}).Allowed("s/x", Capability::kRead));
}

}  // namespace
}  // namespace ward::auth
