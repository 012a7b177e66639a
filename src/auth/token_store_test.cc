#include "auth/token_store.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "barrier/barrier.h"
#include "barrier/testing/hooked_backend.h"
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
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

core::SecureBytes UnsealKey() {
  core::SecureBytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<uint8_t>(i * 7 + 1);
  return key;
}

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = barrier::testing::NewUnsealedBarrier(backend_, clock_, UnsealKey());
    ASSERT_TRUE(b.ok()) << b.status();
    barrier_ = *std::move(b);
    store_ = Open();
    ASSERT_NE(store_, nullptr);
    absl::StatusOr<IssuedToken> root = store_->CreateRootToken("");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *std::move(root);
  }

  std::unique_ptr<TokenStore> Open(TokenStore::Options options = {}) {
    absl::StatusOr<std::unique_ptr<TokenStore>> store =
        TokenStore::Create(*barrier_, clock_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Creates a token from `parent` and fails the test if that does not work.
  IssuedToken MustCreate(const TokenEntry* parent, const CreateTokenRequest& request) {
    absl::StatusOr<IssuedToken> issued = store_->CreateToken(parent, request);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? *std::move(issued) : IssuedToken{};
  }

  // A non-root token with policies {default, dev, ops} and the given ttl.
  IssuedToken DevToken(absl::Duration ttl = absl::Hours(1)) {
    CreateTokenRequest request;
    request.policies = {"dev", "ops"};
    request.ttl = ttl;
    return MustCreate(&root_.entry, request);
  }

  // Every key in storage.
  std::vector<std::string> AllKeys() {
    absl::StatusOr<storage::ListPage> page = backend_.List("", "", 0);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page->keys : std::vector<std::string>{};
  }

  std::vector<std::string> KeysUnder(const std::string& prefix) {
    std::vector<std::string> out;
    for (const std::string& key : AllKeys()) {
      if (key.rfind(prefix, 0) == 0) out.push_back(key);
    }
    return out;
  }

  core::FakeClock clock_;
  storage::MemoryBackend memory_;
  barrier::testing::HookedBackend backend_{memory_};
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<TokenStore> store_;
  IssuedToken root_;
};

TEST_F(TokenStoreTest, RootTokenHasVaultShape) {
  EXPECT_THAT(root_.token, StartsWith("hvs."));
  EXPECT_THAT(root_.token, SizeIs(4 + 24));
  const TokenEntry& e = root_.entry;
  EXPECT_THAT(e.policies, ElementsAre("root"));
  EXPECT_EQ(e.display_name, "root");
  EXPECT_EQ(e.path, "auth/token/root");
  EXPECT_TRUE(e.orphan);
  EXPECT_FALSE(e.renewable);
  EXPECT_EQ(e.parent_hash, "");
  EXPECT_EQ(e.creation_ttl, absl::ZeroDuration());
  EXPECT_EQ(e.expire_time, absl::InfiniteFuture());
  EXPECT_EQ(e.creation_time, clock_.Now());
  EXPECT_EQ(e.type, "service");
  EXPECT_THAT(e.accessor, SizeIs(24));
  EXPECT_THAT(e.id_hash, SizeIs(64));
  EXPECT_EQ(e.RemainingTtl(clock_.Now()), absl::InfiniteDuration());

  absl::StatusOr<TokenEntry> found = store_->Lookup(root_.token);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id_hash, e.id_hash);
  EXPECT_EQ(found->accessor, e.accessor);
  EXPECT_EQ(store_->Count(), 1u);
}

TEST_F(TokenStoreTest, GeneratedTokensAndAccessorsDiffer) {
  IssuedToken a = DevToken();
  IssuedToken b = DevToken();
  EXPECT_NE(a.token, b.token);
  EXPECT_NE(a.entry.accessor, b.entry.accessor);
  EXPECT_NE(a.entry.id_hash, b.entry.id_hash);
}

TEST_F(TokenStoreTest, UnknownTokenIsNotFound) {
  EXPECT_EQ(store_->Lookup("hvs.nosuchtoken").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Use("hvs.nosuchtoken").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Lookup("").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TokenStoreTest, RootTokenWithGivenId) {
  absl::StatusOr<IssuedToken> dev_root = store_->CreateRootToken("dev-root");
  ASSERT_TRUE(dev_root.ok()) << dev_root.status();
  EXPECT_EQ(dev_root->token, "dev-root");
  absl::StatusOr<TokenEntry> found = store_->Lookup("dev-root");
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->policies, ElementsAre("root"));

  EXPECT_EQ(store_->CreateRootToken("dev-root").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateRootToken("hvs.abc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateRootToken("two words").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateRootToken(std::string(257, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Count(), 2u);
}

TEST_F(TokenStoreTest, ChildOfRootGetsDefaultsAndSanitisedPolicies) {
  CreateTokenRequest request;
  request.policies = {"Dev", " ops ", "dev", ""};
  request.meta = {{"team", "payments"}};
  IssuedToken child = MustCreate(&root_.entry, request);
  const TokenEntry& e = child.entry;
  EXPECT_THAT(e.policies, ElementsAre("default", "dev", "ops"));
  EXPECT_EQ(e.parent_hash, root_.entry.id_hash);
  EXPECT_FALSE(e.orphan);
  EXPECT_TRUE(e.renewable);
  EXPECT_EQ(e.display_name, "token");
  EXPECT_EQ(e.path, "auth/token/create");
  EXPECT_EQ(e.creation_ttl, absl::Hours(768));
  EXPECT_EQ(e.expire_time, clock_.Now() + absl::Hours(768));
  EXPECT_EQ(e.meta.at("team"), "payments");
  EXPECT_THAT(child.warnings, IsEmpty());

  absl::StatusOr<TokenEntry> found = store_->Lookup(child.token);
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->policies, ElementsAre("default", "dev", "ops"));
  EXPECT_EQ(found->meta.at("team"), "payments");
}

TEST_F(TokenStoreTest, DisplayNameAndPathFollowVault) {
  CreateTokenRequest request;
  request.display_name = "my app!";
  request.path = "auth/token/create-orphan";
  IssuedToken child = MustCreate(&root_.entry, request);
  EXPECT_EQ(child.entry.display_name, "token-my-app");
  EXPECT_EQ(child.entry.path, "auth/token/create-orphan");

  // Login tokens (no parent) keep the name their auth method gave.
  CreateTokenRequest login;
  login.display_name = "approle";
  login.policies = {"svc"};
  IssuedToken logged_in = MustCreate(nullptr, login);
  EXPECT_EQ(logged_in.entry.display_name, "approle");
  EXPECT_TRUE(logged_in.entry.orphan);
  EXPECT_THAT(logged_in.entry.policies, ElementsAre("default", "svc"));
}

TEST_F(TokenStoreTest, ChildWithoutPoliciesInheritsParents) {
  IssuedToken parent = DevToken();
  IssuedToken child = MustCreate(&parent.entry, {});
  EXPECT_THAT(child.entry.policies, ElementsAre("default", "dev", "ops"));

  CreateTokenRequest no_default;
  no_default.no_default_policy = true;
  IssuedToken bare = MustCreate(&parent.entry, no_default);
  EXPECT_THAT(bare.entry.policies, ElementsAre("dev", "ops"));

  // "default" is only inherited from a parent that has it.
  IssuedToken grandchild = MustCreate(&bare.entry, {});
  EXPECT_THAT(grandchild.entry.policies, ElementsAre("dev", "ops"));
}

TEST_F(TokenStoreTest, NonRootParentCanOnlyGrantSubsetOfItsPolicies) {
  IssuedToken parent = DevToken();

  CreateTokenRequest subset;
  subset.policies = {"dev"};
  EXPECT_THAT(MustCreate(&parent.entry, subset).entry.policies, ElementsAre("default", "dev"));

  CreateTokenRequest wider;
  wider.policies = {"dev", "admin"};
  absl::StatusOr<IssuedToken> denied = store_->CreateToken(&parent.entry, wider);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(denied.status().message(), "child policies must be subset of parent");

  // With sudo on the create route the subset rule does not apply...
  wider.caller_has_sudo = true;
  EXPECT_THAT(MustCreate(&parent.entry, wider).entry.policies,
              ElementsAre("admin", "default", "dev"));

  // ...but "root" still needs a root parent.
  CreateTokenRequest root;
  root.policies = {"root"};
  root.caller_has_sudo = true;
  EXPECT_EQ(store_->CreateToken(&parent.entry, root).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateToken(nullptr, root).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, RootParentCanCreateRootChildren) {
  CreateTokenRequest request;
  request.policies = {"dev", "root"};
  IssuedToken child = MustCreate(&root_.entry, request);
  EXPECT_THAT(child.entry.policies, ElementsAre("root"));
  EXPECT_EQ(child.entry.expire_time, absl::InfiniteFuture());
  EXPECT_FALSE(child.entry.renewable);

  // With an explicit max ttl even a root token expires.
  request.explicit_max_ttl = absl::Hours(2);
  IssuedToken bounded = MustCreate(&root_.entry, request);
  EXPECT_EQ(bounded.entry.creation_ttl, absl::Hours(2));
  EXPECT_TRUE(bounded.entry.renewable);
}

TEST_F(TokenStoreTest, ExpiringRootCannotCreateNonExpiringRoot) {
  CreateTokenRequest expiring;
  expiring.policies = {"root"};
  expiring.ttl = absl::Hours(1);
  IssuedToken parent = MustCreate(&root_.entry, expiring);
  ASSERT_EQ(parent.entry.expire_time, clock_.Now() + absl::Hours(1));

  CreateTokenRequest forever;
  forever.policies = {"root"};
  EXPECT_EQ(store_->CreateToken(&parent.entry, forever).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, OrphansAndCustomIdsNeedRootOrSudo) {
  IssuedToken parent = DevToken();

  CreateTokenRequest no_parent;
  no_parent.no_parent = true;
  EXPECT_EQ(store_->CreateToken(&parent.entry, no_parent).status().code(),
            absl::StatusCode::kInvalidArgument);
  no_parent.caller_has_sudo = true;
  IssuedToken sudo_orphan = MustCreate(&parent.entry, no_parent);
  EXPECT_TRUE(sudo_orphan.entry.orphan);
  EXPECT_EQ(sudo_orphan.entry.parent_hash, "");

  // auth/token/create-orphan is authorised by its own ACL: no sudo needed.
  CreateTokenRequest create_orphan;
  create_orphan.orphan = true;
  IssuedToken orphan = MustCreate(&parent.entry, create_orphan);
  EXPECT_TRUE(orphan.entry.orphan);
  EXPECT_EQ(orphan.entry.parent_hash, "");

  CreateTokenRequest with_id;
  with_id.id = "chosen-value";
  EXPECT_EQ(store_->CreateToken(&parent.entry, with_id).status().code(),
            absl::StatusCode::kInvalidArgument);
  IssuedToken chosen = MustCreate(&root_.entry, with_id);
  EXPECT_EQ(chosen.token, "chosen-value");
  EXPECT_TRUE(store_->Lookup("chosen-value").ok());
  EXPECT_EQ(store_->CreateToken(&root_.entry, with_id).status().code(),
            absl::StatusCode::kAlreadyExists);
  with_id.id = "has.dot";
  EXPECT_EQ(store_->CreateToken(&root_.entry, with_id).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, NegativeValuesAreRejected) {
  CreateTokenRequest uses;
  uses.num_uses = -1;
  EXPECT_EQ(store_->CreateToken(&root_.entry, uses).status().code(),
            absl::StatusCode::kInvalidArgument);
  CreateTokenRequest ttl;
  ttl.ttl = absl::Seconds(-1);
  EXPECT_EQ(store_->CreateToken(&root_.entry, ttl).status().code(),
            absl::StatusCode::kInvalidArgument);
  CreateTokenRequest max;
  max.explicit_max_ttl = absl::Seconds(-1);
  EXPECT_EQ(store_->CreateToken(&root_.entry, max).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Count(), 1u);
}

TEST_F(TokenStoreTest, TtlIsCappedByMaxTtlExplicitMaxAndParent) {
  CreateTokenRequest too_long;
  too_long.ttl = absl::Hours(1000);
  IssuedToken capped = MustCreate(&root_.entry, too_long);
  EXPECT_EQ(capped.entry.creation_ttl, absl::Hours(768));
  EXPECT_THAT(capped.warnings, ElementsAre(HasSubstr("capped")));

  CreateTokenRequest explicit_max;
  explicit_max.ttl = absl::Hours(2);
  explicit_max.explicit_max_ttl = absl::Hours(1);
  IssuedToken bounded = MustCreate(&root_.entry, explicit_max);
  EXPECT_EQ(bounded.entry.creation_ttl, absl::Hours(1));
  EXPECT_EQ(bounded.entry.explicit_max_ttl, absl::Hours(1));

  IssuedToken parent = DevToken(absl::Minutes(30));
  clock_.Advance(absl::Minutes(20));
  CreateTokenRequest child_request;
  child_request.ttl = absl::Hours(1);
  IssuedToken child = MustCreate(&parent.entry, child_request);
  EXPECT_EQ(child.entry.creation_ttl, absl::Minutes(10));
  EXPECT_EQ(child.entry.expire_time, parent.entry.expire_time);
  EXPECT_THAT(child.warnings, ElementsAre(HasSubstr("parent")));

  // An orphan does not die with its parent, so it keeps its ttl.
  child_request.orphan = true;
  EXPECT_EQ(MustCreate(&parent.entry, child_request).entry.creation_ttl, absl::Hours(1));
}

TEST_F(TokenStoreTest, StoreDefaultTtlApplies) {
  TokenStore::Options options;
  options.default_ttl = absl::Hours(1);
  options.max_ttl = absl::Hours(24);
  store_ = Open(options);
  ASSERT_NE(store_, nullptr);
  CreateTokenRequest request;
  request.policies = {"dev"};
  IssuedToken child = MustCreate(&root_.entry, request);
  EXPECT_EQ(child.entry.creation_ttl, absl::Hours(1));
  EXPECT_EQ(child.entry.expire_time, clock_.Now() + absl::Hours(1));

  // Without policies a child of root inherits "root", and a root token without a ttl never
  // expires (Vault).
  IssuedToken inherited = MustCreate(&root_.entry, {});
  EXPECT_THAT(inherited.entry.policies, ElementsAre("root"));
  EXPECT_EQ(inherited.entry.expire_time, absl::InfiniteFuture());
}

TEST_F(TokenStoreTest, InvalidOptionsAreRejected) {
  TokenStore::Options options;
  options.default_ttl = absl::Hours(2);
  options.max_ttl = absl::Hours(1);
  EXPECT_EQ(TokenStore::Create(*barrier_, clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.default_ttl = absl::ZeroDuration();
  EXPECT_EQ(TokenStore::Create(*barrier_, clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, TokenExpiresAtItsExpireTime) {
  IssuedToken token = DevToken(absl::Hours(1));
  clock_.Advance(absl::Minutes(59));
  absl::StatusOr<TokenEntry> live = store_->Lookup(token.token);
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->RemainingTtl(clock_.Now()), absl::Minutes(1));

  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(store_->Lookup(token.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->LookupByAccessor(token.entry.accessor).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Count(), 2u);  // not yet revoked: Lookup does not write

  // Use revokes an expired token it meets.
  EXPECT_EQ(store_->Use(token.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Count(), 1u);
  EXPECT_THAT(KeysUnder("core/token/id/" + token.entry.id_hash), IsEmpty());
}

TEST_F(TokenStoreTest, ChildOfExpiredParentIsDeadAndTidiedWithIt) {
  CreateTokenRequest expiring_root;
  expiring_root.policies = {"root"};
  expiring_root.ttl = absl::Hours(1);
  IssuedToken parent = MustCreate(&root_.entry, expiring_root);
  CreateTokenRequest long_child;
  long_child.ttl = absl::Hours(10);  // a root parent does not cap its children
  IssuedToken child = MustCreate(&parent.entry, long_child);
  IssuedToken unrelated = DevToken(absl::Hours(10));
  ASSERT_EQ(child.entry.creation_ttl, absl::Hours(10));

  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(store_->Lookup(parent.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Lookup(child.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Lookup(unrelated.token).ok());
  EXPECT_EQ(store_->CreateToken(&parent.entry, {}).status().code(),
            absl::StatusCode::kPermissionDenied);

  absl::StatusOr<size_t> revoked = store_->RevokeExpired();
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(*revoked, 2u);
  EXPECT_EQ(store_->Count(), 2u);  // root and unrelated
  EXPECT_THAT(KeysUnder("core/token/parent/" + parent.entry.id_hash), IsEmpty());
  EXPECT_EQ(*store_->RevokeExpired(), 0u);
}

TEST_F(TokenStoreTest, NumUsesAreConsumedByUseNotLookup) {
  CreateTokenRequest request;
  request.num_uses = 3;
  IssuedToken token = MustCreate(&root_.entry, request);
  EXPECT_EQ(token.entry.num_uses, 3);

  EXPECT_EQ(store_->Lookup(token.token)->num_uses, 3);
  ASSERT_TRUE(store_->HasUnlimitedUses(token.token).ok());
  EXPECT_FALSE(*store_->HasUnlimitedUses(token.token));
  ASSERT_TRUE(store_->HasUnlimitedUses(root_.token).ok());
  EXPECT_TRUE(*store_->HasUnlimitedUses(root_.token));
  EXPECT_EQ(store_->HasUnlimitedUses("hvs.nosuchtoken").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Use(token.token)->num_uses, 2);
  EXPECT_EQ(store_->Lookup(token.token)->num_uses, 2);

  // The count survives a restart.
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->Lookup(token.token)->num_uses, 2);

  EXPECT_EQ(store_->Use(token.token)->num_uses, 1);
  absl::StatusOr<TokenEntry> last = store_->Use(token.token);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->num_uses, -1);
  EXPECT_EQ(last->id_hash, token.entry.id_hash);
  EXPECT_EQ(store_->Lookup(token.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Use(token.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Count(), 1u);
}

TEST_F(TokenStoreTest, UnlimitedTokenUseDoesNotWrite) {
  IssuedToken token = DevToken();
  // Any write would now fail.
  backend_.FailCommitsWith(absl::UnavailableError("injected commit failure"));
  absl::StatusOr<TokenEntry> used = store_->Use(token.token);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(used->num_uses, 0);
}

TEST_F(TokenStoreTest, UseLimitedParentCannotCreateChildren) {
  CreateTokenRequest request;
  request.num_uses = 5;
  IssuedToken limited = MustCreate(&root_.entry, request);
  absl::StatusOr<IssuedToken> child = store_->CreateToken(&limited.entry, {});
  EXPECT_EQ(child.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, RenewExtendsFromNowUpToExplicitMax) {
  CreateTokenRequest request;
  request.ttl = absl::Hours(1);
  request.explicit_max_ttl = absl::Hours(3);
  IssuedToken token = MustCreate(&root_.entry, request);
  const absl::Time created = clock_.Now();

  clock_.Advance(absl::Minutes(30));
  absl::StatusOr<TokenEntry> renewed = store_->Renew(token.token, absl::ZeroDuration());
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->expire_time, clock_.Now() + absl::Hours(1));  // the creation ttl
  EXPECT_EQ(renewed->last_renewal_time, clock_.Now());
  EXPECT_EQ(renewed->creation_ttl, absl::Hours(1));

  clock_.Advance(absl::Minutes(50));
  std::vector<std::string> warnings;
  renewed = store_->Renew(token.token, absl::Hours(10), &warnings);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->expire_time, created + absl::Hours(3));
  EXPECT_THAT(warnings, ElementsAre(HasSubstr("capped")));

  // Renewal is durable.
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  absl::StatusOr<TokenEntry> reloaded = store_->Lookup(token.token);
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->expire_time, created + absl::Hours(3));
  EXPECT_EQ(reloaded->last_renewal_time, created + absl::Minutes(80));

  clock_.Set(created + absl::Hours(3));
  EXPECT_EQ(store_->Renew(token.token, absl::Hours(1)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TokenStoreTest, RenewIsCappedByStoreMaxTtl) {
  IssuedToken token = DevToken(absl::Hours(1));
  const absl::Time created = clock_.Now();
  clock_.Advance(absl::Minutes(30));
  absl::StatusOr<TokenEntry> renewed = store_->Renew(token.token, absl::Hours(5000));
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->expire_time, created + absl::Hours(768));

  // A token older than a (since lowered) max ttl cannot be renewed.
  TokenStore::Options options;
  options.default_ttl = absl::Minutes(10);
  options.max_ttl = absl::Minutes(20);
  store_ = Open(options);
  ASSERT_NE(store_, nullptr);
  absl::StatusOr<TokenEntry> late = store_->Renew(token.token, absl::Hours(1));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(late.status().message(), "past the max TTL, cannot renew");
}

TEST_F(TokenStoreTest, NonRenewableTokensAreRefused) {
  CreateTokenRequest request;
  request.renewable = false;
  IssuedToken token = MustCreate(&root_.entry, request);
  absl::StatusOr<TokenEntry> renewed = store_->Renew(token.token, absl::Hours(1));
  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(renewed.status().message(), "lease is not renewable");

  // A root token never expires, so there is nothing to renew.
  EXPECT_EQ(store_->Renew(root_.token, absl::Hours(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Renew("hvs.unknown", absl::Hours(1)).status().code(),
            absl::StatusCode::kNotFound);
  IssuedToken renewable = DevToken();
  EXPECT_EQ(store_->Renew(renewable.token, absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, RevokeCascadesToChildrenButNotOrphans) {
  IssuedToken a = DevToken(absl::Hours(5));
  IssuedToken b = MustCreate(&a.entry, {});
  IssuedToken c = MustCreate(&b.entry, {});
  CreateTokenRequest orphan_request;
  orphan_request.orphan = true;
  IssuedToken orphan = MustCreate(&a.entry, orphan_request);
  IssuedToken sibling = DevToken();
  ASSERT_EQ(store_->Count(), 6u);
  ASSERT_THAT(KeysUnder("core/token/parent/" + a.entry.id_hash + "/"), SizeIs(1));

  ASSERT_TRUE(store_->Revoke(b.token).ok());
  EXPECT_EQ(store_->Lookup(b.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Lookup(c.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Lookup(a.token).ok());

  ASSERT_TRUE(store_->Revoke(a.token).ok());
  EXPECT_EQ(store_->Lookup(a.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Lookup(orphan.token).ok());
  EXPECT_TRUE(store_->Lookup(sibling.token).ok());
  EXPECT_TRUE(store_->Lookup(root_.token).ok());
  EXPECT_EQ(store_->Count(), 3u);

  // Nothing of the revoked tokens is left in storage.
  for (const IssuedToken* gone : {&a, &b, &c}) {
    EXPECT_THAT(KeysUnder("core/token/id/" + gone->entry.id_hash), IsEmpty());
    EXPECT_THAT(KeysUnder("core/token/parent/" + gone->entry.id_hash), IsEmpty());
  }
  EXPECT_THAT(KeysUnder("core/token/accessor/"), SizeIs(3));
  EXPECT_THAT(KeysUnder("core/token/parent/"), SizeIs(1));  // sibling under root

  // Revoking again, or an unknown token, is fine.
  EXPECT_TRUE(store_->Revoke(a.token).ok());
  EXPECT_TRUE(store_->Revoke("hvs.unknown").ok());
}

TEST_F(TokenStoreTest, RevokeOrphanKeepsChildrenAsOrphans) {
  IssuedToken a = DevToken(absl::Hours(5));
  IssuedToken b = MustCreate(&a.entry, {});
  IssuedToken c = MustCreate(&a.entry, {});
  IssuedToken d = MustCreate(&b.entry, {});

  ASSERT_TRUE(store_->RevokeOrphan(a.token).ok());
  EXPECT_EQ(store_->Lookup(a.token).status().code(), absl::StatusCode::kNotFound);
  for (const IssuedToken* alive : {&b, &c, &d}) EXPECT_TRUE(store_->Lookup(alive->token).ok());
  absl::StatusOr<TokenEntry> b_entry = store_->Lookup(b.token);
  EXPECT_TRUE(b_entry->orphan);
  EXPECT_EQ(b_entry->parent_hash, "");
  EXPECT_EQ(store_->Lookup(d.token)->parent_hash, b.entry.id_hash);
  EXPECT_THAT(KeysUnder("core/token/parent/" + a.entry.id_hash), IsEmpty());

  // The orphaning is durable, and b still owns d.
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE(store_->Lookup(b.token)->orphan);
  ASSERT_TRUE(store_->Revoke(b.token).ok());
  EXPECT_EQ(store_->Lookup(d.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Lookup(c.token).ok());
  EXPECT_TRUE(store_->RevokeOrphan("hvs.unknown").ok());
}

TEST_F(TokenStoreTest, LookupAndRevokeByAccessor) {
  IssuedToken a = DevToken();
  IssuedToken child = MustCreate(&a.entry, {});

  absl::StatusOr<TokenEntry> found = store_->LookupByAccessor(a.entry.accessor);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id_hash, a.entry.id_hash);
  EXPECT_THAT(found->policies, ElementsAre("default", "dev", "ops"));

  absl::StatusOr<TokenEntry> missing = store_->LookupByAccessor("nosuchaccessor");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(), "invalid accessor");
  EXPECT_EQ(store_->RevokeByAccessor("nosuchaccessor").code(), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(store_->RevokeByAccessor(a.entry.accessor).ok());
  EXPECT_EQ(store_->Lookup(a.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Lookup(child.token).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->LookupByAccessor(a.entry.accessor).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->RevokeByAccessor(a.entry.accessor).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, StorageNeverHoldsTokenOrAccessorInPlaintext) {
  IssuedToken a = DevToken();
  IssuedToken child = MustCreate(&a.entry, {});
  CreateTokenRequest custom;
  custom.id = "my-custom-token-value";
  IssuedToken chosen = MustCreate(&root_.entry, custom);
  std::vector<const IssuedToken*> tokens = {&root_, &a, &child, &chosen};

  std::vector<std::string> keys = KeysUnder("core/token/");
  ASSERT_FALSE(keys.empty());
  for (const std::string& key : keys) {
    absl::StatusOr<storage::Record> raw = backend_.Get(key);
    ASSERT_TRUE(raw.ok());
    absl::StatusOr<std::string> plain = barrier_->Get(key);
    ASSERT_TRUE(plain.ok()) << key << ": " << plain.status();
    for (const IssuedToken* t : tokens) {
      EXPECT_THAT(key, ::testing::Not(HasSubstr(t->token)));
      EXPECT_THAT(key, ::testing::Not(HasSubstr(t->entry.accessor)));
      EXPECT_THAT(raw->value, ::testing::Not(HasSubstr(t->token)));
      // Decrypted values hold hashes and the accessor, never the token.
      EXPECT_THAT(*plain, ::testing::Not(HasSubstr(t->token))) << key;
    }
  }
  // The layout: one key, then per token an entry and an accessor index, and a parent index
  // per non-orphan token.
  EXPECT_THAT(KeysUnder("core/token/hmac-key"), SizeIs(1));
  EXPECT_THAT(KeysUnder("core/token/id/"), SizeIs(4));
  EXPECT_THAT(KeysUnder("core/token/accessor/"), SizeIs(4));
  EXPECT_THAT(
      KeysUnder("core/token/parent/"),
      UnorderedElementsAre("core/token/parent/" + root_.entry.id_hash + "/" + a.entry.id_hash,
                           "core/token/parent/" + root_.entry.id_hash + "/" + chosen.entry.id_hash,
                           "core/token/parent/" + a.entry.id_hash + "/" + child.entry.id_hash));
}

TEST_F(TokenStoreTest, ReopenedStoreSeesEveryToken) {
  IssuedToken a = DevToken();
  IssuedToken child = MustCreate(&a.entry, {});
  ASSERT_TRUE(store_->Renew(a.token, absl::Hours(2)).ok());
  const TokenEntry before = *store_->Lookup(a.token);

  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->Count(), 3u);
  absl::StatusOr<TokenEntry> after = store_->Lookup(a.token);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->accessor, before.accessor);
  EXPECT_EQ(after->policies, before.policies);
  EXPECT_EQ(after->parent_hash, before.parent_hash);
  EXPECT_EQ(after->creation_time, before.creation_time);
  EXPECT_EQ(after->creation_ttl, before.creation_ttl);
  EXPECT_EQ(after->expire_time, before.expire_time);
  EXPECT_EQ(after->last_renewal_time, before.last_renewal_time);
  EXPECT_EQ(after->display_name, before.display_name);
  EXPECT_EQ(after->path, before.path);
  EXPECT_EQ(after->renewable, before.renewable);
  EXPECT_TRUE(store_->Lookup(root_.token).ok());
  EXPECT_EQ(store_->Lookup(root_.token)->expire_time, absl::InfiniteFuture());
  EXPECT_EQ(store_->LookupByAccessor(child.entry.accessor)->id_hash, child.entry.id_hash);

  // The reloaded child index still drives cascading revocation.
  ASSERT_TRUE(store_->Revoke(a.token).ok());
  EXPECT_EQ(store_->Lookup(child.token).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TokenStoreTest, BoundCidrsAreStoredAndLimitWhereTheTokenWorks) {
  CreateTokenRequest request;
  request.bound_cidrs = {"10.0.0.0/8", "::1"};
  request.path = "auth/approle/login";
  IssuedToken bound = MustCreate(nullptr, request);
  EXPECT_THAT(bound.entry.bound_cidrs, ElementsAre("10.0.0.0/8", "::1"));
  EXPECT_TRUE(bound.entry.AllowsSource("10.20.30.40"));
  EXPECT_TRUE(bound.entry.AllowsSource("::1"));
  EXPECT_TRUE(bound.entry.AllowsSource("::ffff:10.1.1.1"));  // v4-mapped peer
  EXPECT_FALSE(bound.entry.AllowsSource("192.168.1.1"));
  EXPECT_FALSE(bound.entry.AllowsSource("127.0.0.1"));
  EXPECT_FALSE(bound.entry.AllowsSource("not-an-address"));
  EXPECT_FALSE(bound.entry.AllowsSource(""));

  // Unbound tokens work from anywhere.
  IssuedToken open = DevToken();
  EXPECT_TRUE(open.entry.bound_cidrs.empty());
  EXPECT_TRUE(open.entry.AllowsSource("192.168.1.1"));

  // A stored binding that no longer parses fails closed.
  TokenEntry corrupt = bound.entry;
  corrupt.bound_cidrs = {"10.0.0.0/99"};
  EXPECT_FALSE(corrupt.AllowsSource("10.1.1.1"));

  // The binding survives a restart.
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  absl::StatusOr<TokenEntry> reloaded = store_->Lookup(bound.token);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_THAT(reloaded->bound_cidrs, ElementsAre("10.0.0.0/8", "::1"));
  EXPECT_FALSE(reloaded->AllowsSource("192.168.1.1"));
}

TEST_F(TokenStoreTest, MalformedBoundCidrIsInvalidArgumentAndStoresNothing) {
  const std::vector<std::string> keys_before = AllKeys();
  CreateTokenRequest request;
  request.bound_cidrs = {"10.0.0.0/8", "10.0.0.0/33"};
  absl::StatusOr<IssuedToken> issued = store_->CreateToken(nullptr, request);
  EXPECT_EQ(issued.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(issued.status().message(), HasSubstr("10.0.0.0/33"));
  EXPECT_EQ(AllKeys(), keys_before);
}

TEST_F(TokenStoreTest, EntriesStoredWithoutBoundCidrsStillLoad) {
  // An entry written before the field existed: drop it from a stored entry and reopen.
  IssuedToken token = DevToken();
  const std::string key = "core/token/id/" + token.entry.id_hash;
  absl::StatusOr<std::string> stored = barrier_->Get(key);
  ASSERT_TRUE(stored.ok()) << stored.status();
  const std::string field = R"(,"bound_cidrs":[])";
  size_t at = stored->find(field);
  ASSERT_NE(at, std::string::npos) << *stored;
  std::string legacy = stored->substr(0, at) + stored->substr(at + field.size());
  ASSERT_TRUE(barrier_->Put(key, legacy).ok());

  store_ = Open();
  ASSERT_NE(store_, nullptr);
  absl::StatusOr<TokenEntry> entry = store_->Lookup(token.token);
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_TRUE(entry->bound_cidrs.empty());
  EXPECT_TRUE(entry->AllowsSource("203.0.113.9"));

  ASSERT_TRUE(barrier_
                  ->Put(key, stored->substr(0, at) + R"(,"bound_cidrs":"10.0.0.0/8")" +
                                 stored->substr(at + field.size()))
                  .ok());
  EXPECT_EQ(TokenStore::Create(*barrier_, clock_, {}).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(TokenStoreTest, RevokeByPathPrefixRevokesAMountsTokensAndTheirChildren) {
  CreateTokenRequest login;
  login.path = "auth/approle/login";
  IssuedToken a = MustCreate(nullptr, login);
  IssuedToken b = MustCreate(nullptr, login);
  IssuedToken child = MustCreate(&a.entry, {});  // path auth/token/create, dies with `a`
  CreateTokenRequest orphan_request;
  orphan_request.orphan = true;
  IssuedToken orphan = MustCreate(&a.entry, orphan_request);  // survives, as in Vault
  CreateTokenRequest other;
  other.path = "auth/approle2/login";  // a different mount whose path shares a prefix
  IssuedToken neighbour = MustCreate(nullptr, other);
  IssuedToken dev = DevToken();
  EXPECT_EQ(store_->CountByPath(), (std::map<std::string, size_t>{{"auth/approle/login", 2},
                                                                  {"auth/approle2/login", 1},
                                                                  {"auth/token/create", 3},
                                                                  {"auth/token/root", 1}}));

  absl::StatusOr<size_t> revoked = store_->RevokeByPathPrefix("auth/approle/");
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(*revoked, 3u);
  for (const IssuedToken* gone : {&a, &b, &child}) {
    EXPECT_EQ(store_->Lookup(gone->token).status().code(), absl::StatusCode::kNotFound);
  }
  for (const IssuedToken* kept : {&orphan, &neighbour, &dev, &root_}) {
    EXPECT_TRUE(store_->Lookup(kept->token).ok());
  }
  EXPECT_EQ(store_->Count(), 4u);
  // Storage agrees: a fresh store sees exactly the survivors, with no stray index keys.
  EXPECT_THAT(KeysUnder("core/token/id/"), SizeIs(4));
  EXPECT_THAT(KeysUnder("core/token/accessor/"), SizeIs(4));
  EXPECT_THAT(KeysUnder("core/token/parent/"), SizeIs(1));  // root -> dev
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->Count(), 4u);
  EXPECT_EQ(store_->Lookup(a.token).status().code(), absl::StatusCode::kNotFound);

  // Nothing left to match: OK, zero.
  EXPECT_EQ(*store_->RevokeByPathPrefix("auth/approle/"), 0u);
  EXPECT_EQ(store_->RevokeByPathPrefix("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenStoreTest, RevokeByPathPrefixCommitsInBoundedBatches) {
  CreateTokenRequest login;
  login.path = "auth/cert/login";
  std::vector<IssuedToken> tokens;
  for (int i = 0; i < 300; ++i) tokens.push_back(MustCreate(nullptr, login));
  int commits = 0;
  backend_.BeforeEachCommit([&commits](int) { ++commits; });
  absl::StatusOr<size_t> revoked = store_->RevokeByPathPrefix("auth/cert/");
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(*revoked, 300u);
  EXPECT_EQ(commits, 2);  // 256 + 44
  EXPECT_EQ(store_->Count(), 1u);
  EXPECT_EQ(store_->Lookup(tokens.back().token).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TokenStoreTest, RevokeByPathPrefixFailureKeepsTokensOfTheFailedCommit) {
  CreateTokenRequest login;
  login.path = "auth/approle/login";
  IssuedToken a = MustCreate(nullptr, login);
  backend_.FailCommitsWith(absl::UnavailableError("injected commit failure"));
  EXPECT_EQ(store_->RevokeByPathPrefix("auth/approle/").status().code(),
            absl::StatusCode::kUnavailable);
  backend_.FailCommitsWith(absl::OkStatus());
  EXPECT_TRUE(store_->Lookup(a.token).ok());
  EXPECT_EQ(*store_->RevokeByPathPrefix("auth/approle/"), 1u);  // a retry finishes the job
  EXPECT_EQ(store_->Lookup(a.token).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TokenStoreTest, FailedCommitChangesNothing) {
  CreateTokenRequest limited;
  limited.num_uses = 2;
  IssuedToken token = MustCreate(&root_.entry, limited);
  IssuedToken renewable = DevToken();
  const std::vector<std::string> keys_before = AllKeys();

  backend_.FailCommitsWith(absl::UnavailableError("injected commit failure"));
  EXPECT_EQ(store_->CreateToken(&root_.entry, {}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->Use(token.token).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->Revoke(token.token).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->RevokeOrphan(token.token).code(), absl::StatusCode::kUnavailable);
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(store_->Renew(renewable.token, absl::Hours(1)).status().code(),
            absl::StatusCode::kUnavailable);
  backend_.FailCommitsWith(absl::OkStatus());

  EXPECT_EQ(AllKeys(), keys_before);
  EXPECT_EQ(store_->Count(), 3u);
  EXPECT_EQ(store_->Lookup(token.token)->num_uses, 2);
  EXPECT_EQ(store_->Lookup(renewable.token)->expire_time, renewable.entry.expire_time);
}

TEST_F(TokenStoreTest, SealedBarrierRefusesLookupsAndCreation) {
  IssuedToken token = DevToken();
  barrier_->Seal();
  EXPECT_EQ(store_->Lookup(token.token).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->Use(token.token).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->LookupByAccessor(token.entry.accessor).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->CreateToken(&root_.entry, {}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(TokenStore::Create(*barrier_, clock_, {}).status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(barrier_->Unseal(UnsealKey()).ok());
  EXPECT_TRUE(store_->Lookup(token.token).ok());
}

TEST_F(TokenStoreTest, CorruptStorageIsDataLoss) {
  ASSERT_TRUE(barrier_->Put("core/token/id/0123", "{not json").ok());
  EXPECT_EQ(TokenStore::Create(*barrier_, clock_, {}).status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(barrier_->Put("core/token/id/0123", R"({"version":1})").ok());
  EXPECT_EQ(TokenStore::Create(*barrier_, clock_, {}).status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(barrier_->Delete("core/token/id/0123").ok());
  ASSERT_TRUE(barrier_->Put("core/token/hmac-key", "short").ok());
  EXPECT_EQ(TokenStore::Create(*barrier_, clock_, {}).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(TokenStoreTest, ConcurrentLookupsDuringWrites) {
  std::vector<IssuedToken> stable;
  for (int i = 0; i < 8; ++i) stable.push_back(DevToken());

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> lookups{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; !stop.load() || i < 200; ++i) {
        const IssuedToken& token = stable[(i + t) % stable.size()];
        absl::StatusOr<TokenEntry> found = store_->Lookup(token.token);
        if (!found.ok() || found->id_hash != token.entry.id_hash) failures.fetch_add(1);
        if (!store_->Use(token.token).ok()) failures.fetch_add(1);
        lookups.fetch_add(1);
      }
    });
  }
  // Writers churn children of the stable tokens meanwhile.
  for (int i = 0; i < 50; ++i) {
    IssuedToken child = MustCreate(&stable[i % stable.size()].entry, {});
    ASSERT_TRUE(store_->Renew(child.token, absl::Minutes(5)).ok());
    ASSERT_TRUE(store_->Revoke(child.token).ok());
  }
  stop.store(true);
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(lookups.load(), 800);
  EXPECT_EQ(store_->Count(), 9u);
}

TEST_F(TokenStoreTest, TokensWithoutParentAreCommittedConcurrently) {
  // Login tokens must not wait for each other's commits, or a durable store's group commit
  // covers one login per fsync (docs/benchmarks.md, session 4). The first commit to reach the
  // backend waits there until the second arrives; serialised creations would never overlap.
  absl::Notification second_arrived;
  std::atomic<bool> overlapped{false};
  backend_.BeforeEachCommit([&](int n) {
    if (n == 1) overlapped = second_arrived.WaitForNotificationWithTimeout(absl::Seconds(30));
    if (n == 2) second_arrived.Notify();
  });
  CreateTokenRequest login;
  login.policies = {"app"};
  login.path = "auth/approle/login";
  std::vector<IssuedToken> issued(2);
  std::vector<std::thread> threads;
  for (IssuedToken& out : issued) {
    threads.emplace_back([&] { out = MustCreate(nullptr, login); });
  }
  for (std::thread& t : threads) t.join();
  backend_.BeforeEachCommit(nullptr);
  EXPECT_TRUE(overlapped.load());
  for (const IssuedToken& t : issued) {
    ASSERT_FALSE(t.token.empty());
    EXPECT_TRUE(store_->Lookup(t.token).ok());
  }
  EXPECT_NE(issued[0].entry.accessor, issued[1].entry.accessor);
  // Both are durable: a store loaded from storage knows them.
  store_ = Open();
  for (const IssuedToken& t : issued) EXPECT_TRUE(store_->Lookup(t.token).ok());
  EXPECT_EQ(store_->Count(), 3u);  // with the root token
}

}  // namespace
}  // namespace ward::auth
