#include "auth/approle.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "auth/approle_cidr.h"
#include "auth/approle_login_limiter.h"
#include "auth/auth_mounts.h"
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
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

core::SecureBytes UnsealKey() {
  core::SecureBytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<uint8_t>(i * 3 + 5);
  return key;
}

constexpr char kPrefix[] = "auth/test-mount/";
constexpr char kLocal[] = "127.0.0.1";

class AppRoleStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = barrier::testing::NewUnsealedBarrier(backend_, clock_, UnsealKey());
    ASSERT_TRUE(b.ok()) << b.status();
    barrier_ = *std::move(b);
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<AppRoleStore> Open() {
    auto store = AppRoleStore::Create(*barrier_, clock_, kPrefix);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  AppRole MustWriteRole(const std::string& name, const AppRoleUpdate& update = {}) {
    auto role = store_->WriteRole(name, update);
    EXPECT_TRUE(role.ok()) << role.status();
    return role.ok() ? *role : AppRole{};
  }

  IssuedSecretId MustSecretId(const std::string& role, const SecretIdRequest& request = {}) {
    auto issued = store_->GenerateSecretId(role, request);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? *issued : IssuedSecretId{};
  }

  // Every key in storage.
  std::vector<std::string> AllKeys() {
    auto page = backend_.List("", "", 0);
    return page.ok() ? page->keys : std::vector<std::string>{};
  }

  void ExpectInvalidCredentials(const absl::StatusOr<AppRoleGrant>& login) {
    ASSERT_FALSE(login.ok());
    EXPECT_EQ(login.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(login.status().message(), "invalid role or secret ID");
  }

  core::FakeClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<AppRoleStore> store_;
};

TEST_F(AppRoleStoreTest, NewRoleHasVaultDefaultsAndAUuidRoleId) {
  AppRole role = MustWriteRole("web");
  EXPECT_EQ(role.name, "web");
  EXPECT_EQ(role.role_id.size(), 36u);
  EXPECT_TRUE(role.bind_secret_id);
  EXPECT_EQ(role.token_type, "default");
  EXPECT_EQ(role.secret_id_ttl, absl::ZeroDuration());
  auto read = store_->ReadRole("web");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->role_id, role.role_id);
  EXPECT_THAT(store_->ListRoles(), ElementsAre("web"));
}

TEST_F(AppRoleStoreTest, UpdateKeepsUnsetFieldsAndRoleId) {
  AppRoleUpdate first;
  first.token_policies = std::vector<std::string>{"dev"};
  first.token_ttl = absl::Minutes(20);
  AppRole created = MustWriteRole("web", first);
  AppRoleUpdate second;
  second.secret_id_num_uses = 3;
  AppRole updated = MustWriteRole("web", second);
  EXPECT_EQ(updated.role_id, created.role_id);
  EXPECT_THAT(updated.token_policies, ElementsAre("dev"));
  EXPECT_EQ(updated.token_ttl, absl::Minutes(20));
  EXPECT_EQ(updated.secret_id_num_uses, 3);
}

TEST_F(AppRoleStoreTest, InvalidRoleParametersAreRejected) {
  auto code = [this](const std::string& name, const AppRoleUpdate& u) {
    return store_->WriteRole(name, u).status().code();
  };
  EXPECT_EQ(code("bad name", {}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("-web", {}), absl::StatusCode::kInvalidArgument);
  AppRoleUpdate u;
  u.secret_id_bound_cidrs = std::vector<std::string>{"10.0.0.0/33"};
  EXPECT_EQ(code("web", u), absl::StatusCode::kInvalidArgument);
  u = {};
  u.token_num_uses = -1;
  EXPECT_EQ(code("web", u), absl::StatusCode::kInvalidArgument);
  u = {};
  u.token_ttl = absl::Hours(2);
  u.token_max_ttl = absl::Hours(1);
  EXPECT_EQ(code("web", u), absl::StatusCode::kInvalidArgument);
  u = {};
  u.token_type = "batch";
  EXPECT_EQ(code("web", u), absl::StatusCode::kInvalidArgument);
  u = {};
  u.bind_secret_id = false;  // and no CIDR binding: nothing would protect the role
  auto s = store_->WriteRole("web", u);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("at least one constraint"));
  EXPECT_THAT(store_->ListRoles(), IsEmpty());
}

TEST_F(AppRoleStoreTest, CustomRoleIdMustBeUnique) {
  AppRoleUpdate u;
  u.role_id = "my-role-id";
  MustWriteRole("a", u);
  auto clash = store_->WriteRole("b", u);
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kInvalidArgument);
  // Changing a's role_id frees the old one.
  AppRoleUpdate change;
  change.role_id = "other-id";
  MustWriteRole("a", change);
  EXPECT_TRUE(store_->WriteRole("b", u).ok());
  EXPECT_EQ(store_->ReadRole("a")->role_id, "other-id");
  // The old role_id now names b, whose secret-ids are not a's.
  IssuedSecretId a_secret = MustSecretId("a");
  ExpectInvalidCredentials(store_->Login("my-role-id", a_secret.secret_id, kLocal));
  EXPECT_TRUE(store_->Login("other-id", a_secret.secret_id, kLocal).ok());
}

TEST_F(AppRoleStoreTest, LoginSucceedsWithRoleIdAndSecretId) {
  AppRoleUpdate u;
  u.token_policies = std::vector<std::string>{"dev", "ops"};
  u.token_ttl = absl::Minutes(20);
  u.token_max_ttl = absl::Hours(1);
  u.token_num_uses = 5;
  AppRole role = MustWriteRole("web", u);
  SecretIdRequest request;
  request.metadata = {{"team", "payments"}};
  IssuedSecretId secret = MustSecretId("web", request);
  EXPECT_EQ(secret.secret_id.size(), 36u);
  EXPECT_NE(secret.accessor, secret.secret_id);

  auto grant = store_->Login(role.role_id, secret.secret_id, kLocal);
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->role_name, "web");
  EXPECT_THAT(grant->token_policies, ElementsAre("dev", "ops"));
  EXPECT_EQ(grant->token_ttl, absl::Minutes(20));
  EXPECT_EQ(grant->token_max_ttl, absl::Hours(1));
  EXPECT_EQ(grant->token_num_uses, 5);
  EXPECT_EQ(grant->metadata,
            (std::map<std::string, std::string>{{"role_name", "web"}, {"team", "payments"}}));
  // Unlimited secret-ids can be used again.
  EXPECT_TRUE(store_->Login(role.role_id, secret.secret_id, kLocal).ok());
}

TEST_F(AppRoleStoreTest, ExplicitMaxTtlCapsTheGrantWhenSmaller) {
  AppRoleUpdate u;
  u.token_max_ttl = absl::Hours(2);
  u.token_explicit_max_ttl = absl::Hours(1);
  AppRole role = MustWriteRole("web", u);
  IssuedSecretId secret = MustSecretId("web");
  auto grant = store_->Login(role.role_id, secret.secret_id, kLocal);
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->token_max_ttl, absl::Hours(1));
}

TEST_F(AppRoleStoreTest, WrongOrMissingCredentialsFailWithoutSayingWhich) {
  AppRole web = MustWriteRole("web");
  AppRole other = MustWriteRole("other");
  IssuedSecretId secret = MustSecretId("web");
  IssuedSecretId other_secret = MustSecretId("other");
  ExpectInvalidCredentials(store_->Login(web.role_id, "not-the-secret", kLocal));
  ExpectInvalidCredentials(store_->Login("unknown-role-id", secret.secret_id, kLocal));
  // A secret-id of another role does not open this one.
  ExpectInvalidCredentials(store_->Login(web.role_id, other_secret.secret_id, kLocal));
  auto missing_role = store_->Login("", secret.secret_id, kLocal);
  EXPECT_EQ(missing_role.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing_role.status().message(), "missing role_id");
  auto missing_secret = store_->Login(web.role_id, "", kLocal);
  EXPECT_EQ(missing_secret.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing_secret.status().message(), "missing secret_id");
  EXPECT_TRUE(store_->Login(other.role_id, other_secret.secret_id, kLocal).ok());
}

TEST_F(AppRoleStoreTest, ExpiredSecretIdFailsAndIsDeleted) {
  AppRoleUpdate u;
  u.secret_id_ttl = absl::Minutes(10);
  AppRole role = MustWriteRole("web", u);
  IssuedSecretId secret = MustSecretId("web");
  EXPECT_EQ(secret.ttl, absl::Minutes(10));
  clock_.Advance(absl::Minutes(9));
  EXPECT_TRUE(store_->Login(role.role_id, secret.secret_id, kLocal).ok());
  EXPECT_TRUE(store_->LookupSecretId("web", secret.secret_id).ok());
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(store_->LookupSecretId("web", secret.secret_id).status().code(),
            absl::StatusCode::kNotFound);
  auto accessors = store_->ListSecretIdAccessors("web");
  ASSERT_TRUE(accessors.ok());
  EXPECT_THAT(*accessors, IsEmpty());
  ExpectInvalidCredentials(store_->Login(role.role_id, secret.secret_id, kLocal));
  EXPECT_EQ(store_->SecretIdCount(), 0u);  // the failed login removed it
  store_ = Open();
  EXPECT_EQ(store_->SecretIdCount(), 0u);  // from storage too
}

TEST_F(AppRoleStoreTest, SecretIdTtlAndUsesCannotExceedTheRoles) {
  AppRoleUpdate u;
  u.secret_id_ttl = absl::Minutes(10);
  u.secret_id_num_uses = 2;
  MustWriteRole("web", u);
  SecretIdRequest longer;
  longer.ttl = absl::Minutes(11);
  EXPECT_EQ(store_->GenerateSecretId("web", longer).status().code(),
            absl::StatusCode::kInvalidArgument);
  SecretIdRequest more;
  more.num_uses = 3;
  EXPECT_EQ(store_->GenerateSecretId("web", more).status().code(),
            absl::StatusCode::kInvalidArgument);
  SecretIdRequest shorter;
  shorter.ttl = absl::Minutes(5);
  shorter.num_uses = 1;
  IssuedSecretId s = MustSecretId("web", shorter);
  EXPECT_EQ(s.ttl, absl::Minutes(5));
  EXPECT_EQ(s.num_uses, 1);
  EXPECT_EQ(store_->GenerateSecretId("nope", {}).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AppRoleStoreTest, NumUsesAreConsumedAndTheLastUseDeletes) {
  AppRole role = MustWriteRole("web");
  SecretIdRequest request;
  request.num_uses = 2;
  IssuedSecretId secret = MustSecretId("web", request);
  ASSERT_TRUE(store_->Login(role.role_id, secret.secret_id, kLocal).ok());
  auto info = store_->LookupSecretId("web", secret.secret_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->num_uses, 1);
  // The decrement is durable: a store reopened from storage sees it.
  store_ = Open();
  info = store_->LookupSecretId("web", secret.secret_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->num_uses, 1);
  ASSERT_TRUE(store_->Login(role.role_id, secret.secret_id, kLocal).ok());
  EXPECT_EQ(store_->LookupSecretId("web", secret.secret_id).status().code(),
            absl::StatusCode::kNotFound);
  ExpectInvalidCredentials(store_->Login(role.role_id, secret.secret_id, kLocal));
  EXPECT_EQ(store_->SecretIdCount(), 0u);
}

TEST_F(AppRoleStoreTest, CidrBindingsAreEnforced) {
  AppRoleUpdate u;
  u.secret_id_bound_cidrs = std::vector<std::string>{"10.0.0.0/8", "127.0.0.1/32"};
  AppRole role = MustWriteRole("web", u);
  IssuedSecretId any = MustSecretId("web");
  EXPECT_TRUE(store_->Login(role.role_id, any.secret_id, "10.1.2.3").ok());
  EXPECT_TRUE(store_->Login(role.role_id, any.secret_id, "::ffff:127.0.0.1").ok());
  ExpectInvalidCredentials(store_->Login(role.role_id, any.secret_id, "192.168.1.1"));
  ExpectInvalidCredentials(store_->Login(role.role_id, any.secret_id, ""));

  SecretIdRequest narrow;
  narrow.cidr_list = {"10.9.0.0/16"};
  IssuedSecretId narrowed = MustSecretId("web", narrow);
  EXPECT_TRUE(store_->Login(role.role_id, narrowed.secret_id, "10.9.1.1").ok());
  ExpectInvalidCredentials(store_->Login(role.role_id, narrowed.secret_id, "10.1.2.3"));

  SecretIdRequest outside;
  outside.cidr_list = {"192.168.0.0/16"};
  EXPECT_EQ(store_->GenerateSecretId("web", outside).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AppRoleStoreTest, RoleWithoutSecretIdLogsInFromBoundCidrOnly) {
  AppRoleUpdate u;
  u.bind_secret_id = false;
  u.token_bound_cidrs = std::vector<std::string>{"127.0.0.0/8"};
  AppRole role = MustWriteRole("agent", u);
  EXPECT_TRUE(store_->Login(role.role_id, "", "127.0.0.5").ok());
  ExpectInvalidCredentials(store_->Login(role.role_id, "", "10.0.0.1"));
}

TEST_F(AppRoleStoreTest, GrantCarriesTheTokenBoundCidrsOfSecretIdOrElseRole) {
  AppRoleUpdate u;
  u.token_bound_cidrs = std::vector<std::string>{"127.0.0.0/8", "10.0.0.0/8"};
  AppRole role = MustWriteRole("web", u);
  IssuedSecretId plain = MustSecretId("web");
  absl::StatusOr<AppRoleGrant> grant = store_->Login(role.role_id, plain.secret_id, "127.0.0.1");
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_THAT(grant->token_bound_cidrs, ElementsAre("127.0.0.0/8", "10.0.0.0/8"));

  SecretIdRequest narrow;
  narrow.token_bound_cidrs = {"127.0.0.1/32"};
  IssuedSecretId narrowed = MustSecretId("web", narrow);
  grant = store_->Login(role.role_id, narrowed.secret_id, "127.0.0.1");
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_THAT(grant->token_bound_cidrs, ElementsAre("127.0.0.1/32"));

  AppRole open = MustWriteRole("open");
  IssuedSecretId any = MustSecretId("open");
  grant = store_->Login(open.role_id, any.secret_id, "192.0.2.1");
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_TRUE(grant->token_bound_cidrs.empty());
}

TEST_F(AppRoleStoreTest, DestroyByValueAndByAccessor) {
  AppRole role = MustWriteRole("web");
  IssuedSecretId a = MustSecretId("web");
  IssuedSecretId b = MustSecretId("web");
  auto accessors = store_->ListSecretIdAccessors("web");
  ASSERT_TRUE(accessors.ok());
  EXPECT_THAT(*accessors, UnorderedElementsAre(a.accessor, b.accessor));
  auto by_accessor = store_->LookupSecretIdByAccessor("web", b.accessor);
  ASSERT_TRUE(by_accessor.ok());
  EXPECT_EQ(by_accessor->accessor, b.accessor);

  ASSERT_TRUE(store_->DestroySecretId("web", a.secret_id).ok());
  EXPECT_TRUE(store_->DestroySecretId("web", a.secret_id).ok());  // idempotent
  ExpectInvalidCredentials(store_->Login(role.role_id, a.secret_id, kLocal));
  ASSERT_TRUE(store_->DestroySecretIdByAccessor("web", b.accessor).ok());
  EXPECT_EQ(store_->DestroySecretIdByAccessor("web", b.accessor).code(),
            absl::StatusCode::kNotFound);
  ExpectInvalidCredentials(store_->Login(role.role_id, b.secret_id, kLocal));
  EXPECT_EQ(store_->DestroySecretId("nope", a.secret_id).code(), absl::StatusCode::kNotFound);
  // Nothing of either secret-id is left in storage.
  store_ = Open();
  EXPECT_EQ(store_->SecretIdCount(), 0u);
}

TEST_F(AppRoleStoreTest, AccessorOfAnotherRoleIsNotFound) {
  MustWriteRole("web");
  MustWriteRole("db");
  IssuedSecretId s = MustSecretId("web");
  EXPECT_EQ(store_->LookupSecretIdByAccessor("db", s.accessor).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DestroySecretIdByAccessor("db", s.accessor).code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->LookupSecretIdByAccessor("web", s.accessor).ok());
}

TEST_F(AppRoleStoreTest, DeletingTheRoleRemovesItsSecretIds) {
  AppRole role = MustWriteRole("web");
  MustWriteRole("db");
  IssuedSecretId s1 = MustSecretId("web");
  MustSecretId("web");
  MustSecretId("db");
  ASSERT_TRUE(store_->DeleteRole("web").ok());
  EXPECT_TRUE(store_->DeleteRole("web").ok());
  EXPECT_EQ(store_->ReadRole("web").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->SecretIdCount(), 1u);
  ExpectInvalidCredentials(store_->Login(role.role_id, s1.secret_id, kLocal));
  // Re-creating the role does not revive old secret-ids, and the reload agrees.
  AppRole again = MustWriteRole("web");
  ExpectInvalidCredentials(store_->Login(again.role_id, s1.secret_id, kLocal));
  store_ = Open();
  EXPECT_EQ(store_->SecretIdCount(), 1u);
  EXPECT_THAT(store_->ListRoles(), ElementsAre("db", "web"));
}

TEST_F(AppRoleStoreTest, SecretIdsAreNeverStoredInPlaintext) {
  AppRole role = MustWriteRole("web");
  IssuedSecretId s = MustSecretId("web");
  for (const std::string& key : AllKeys()) {
    EXPECT_THAT(key, ::testing::Not(HasSubstr(s.secret_id)));
    // Decrypted values hold only the HMAC, never the secret-id.
    auto value = barrier_->Get(key);
    if (value.ok()) {
      EXPECT_THAT(*value, ::testing::Not(HasSubstr(s.secret_id))) << key;
    }
  }
  // The secret-id survives a reload (found by its HMAC under the stored key).
  store_ = Open();
  EXPECT_TRUE(store_->Login(role.role_id, s.secret_id, kLocal).ok());
}

TEST_F(AppRoleStoreTest, ConcurrentLoginsConsumeEachUseExactlyOnce) {
  // Logins with unlimited secret-ids take no writer lock; use-limited ones re-check the entry
  // under it, so racing logins can never spend more uses than the secret-id has.
  AppRole role = MustWriteRole("web");
  SecretIdRequest limited;
  limited.num_uses = 5;
  IssuedSecretId s = MustSecretId("web", limited);
  IssuedSecretId unlimited = MustSecretId("web");
  std::atomic<int> granted{0};
  std::atomic<int> refused{0};
  std::atomic<int> unlimited_granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      absl::StatusOr<AppRoleGrant> login = store_->Login(role.role_id, s.secret_id, kLocal);
      if (login.ok()) {
        ++granted;
      } else if (login.status().code() == absl::StatusCode::kInvalidArgument) {
        ++refused;
      }
      if (store_->Login(role.role_id, unlimited.secret_id, kLocal).ok()) ++unlimited_granted;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(granted.load(), 5);
  EXPECT_EQ(refused.load(), 11);
  EXPECT_EQ(unlimited_granted.load(), 16);
  EXPECT_EQ(store_->LookupSecretId("web", s.secret_id).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(AppRoleStoreTest, ClosedStoreRefusesWrites) {
  AppRole role = MustWriteRole("web");
  IssuedSecretId s = MustSecretId("web");
  store_->Close();
  EXPECT_EQ(store_->WriteRole("db", {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->GenerateSecretId("web", {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Login(role.role_id, s.secret_id, kLocal).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// ---- CIDR ----

TEST(CidrTest, ParsesAndMatchesBothFamilies) {
  auto v4 = Cidr::Parse("10.1.0.0/16");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->Contains("10.1.255.3"));
  EXPECT_FALSE(v4->Contains("10.2.0.1"));
  EXPECT_TRUE(v4->Contains("::ffff:10.1.0.9"));
  EXPECT_FALSE(v4->Contains("not an ip"));
  auto host = Cidr::Parse("192.168.1.7");
  ASSERT_TRUE(host.ok());
  EXPECT_TRUE(host->Contains("192.168.1.7"));
  EXPECT_FALSE(host->Contains("192.168.1.8"));
  auto v6 = Cidr::Parse("2001:db8::/32");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->Contains("2001:db8:1::1"));
  EXPECT_FALSE(v6->Contains("2001:db9::1"));
  EXPECT_FALSE(v6->Contains("10.1.0.1"));
  EXPECT_TRUE(v4->Covers(*Cidr::Parse("10.1.2.0/24")));
  EXPECT_FALSE(v4->Covers(*Cidr::Parse("10.0.0.0/8")));
  for (const char* bad :
       {"", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0/8", "::/129", "x/8", "1.2.3.4/"}) {
    EXPECT_EQ(Cidr::Parse(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(AddressAllowed({}, "1.2.3.4"));
}

// ---- failed-login limiter ----

TEST(FailedLoginLimiterTest, AllowsBurstThenRefusesUntilRefilled) {
  core::FakeClock clock;
  FailedLoginLimiter limiter(clock, {/*burst=*/3, /*failures_per_minute=*/6, 1000});
  EXPECT_FALSE(limiter.RetryAfter("10.0.0.1").has_value());
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(limiter.RetryAfter("10.0.0.1").has_value()) << i;
    limiter.RecordFailure("10.0.0.1");
  }
  auto wait = limiter.RetryAfter("10.0.0.1");
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, absl::Seconds(10));                       // one failure refills every 10 s
  EXPECT_FALSE(limiter.RetryAfter("10.0.0.2").has_value());  // other clients are unaffected
  clock.Advance(absl::Seconds(5));
  ASSERT_TRUE(limiter.RetryAfter("10.0.0.1").has_value());
  EXPECT_EQ(*limiter.RetryAfter("10.0.0.1"), absl::Seconds(5));
  clock.Advance(absl::Seconds(5));
  EXPECT_FALSE(limiter.RetryAfter("10.0.0.1").has_value());
  limiter.RecordFailure("10.0.0.1");
  EXPECT_TRUE(limiter.RetryAfter("10.0.0.1").has_value());
  // A long quiet period refills to the burst, not beyond.
  clock.Advance(absl::Hours(1));
  for (int i = 0; i < 3; ++i) limiter.RecordFailure("10.0.0.1");
  EXPECT_TRUE(limiter.RetryAfter("10.0.0.1").has_value());
}

TEST(FailedLoginLimiterTest, FullTableDropsRefilledBucketsBeforeEvicting) {
  core::FakeClock clock;
  FailedLoginLimiter limiter(clock, {/*burst=*/2, /*failures_per_minute=*/1, 2});
  limiter.RecordFailure("a");
  limiter.RecordFailure("b");
  clock.Advance(absl::Minutes(2));  // a and b have refilled
  limiter.RecordFailure("c");
  EXPECT_EQ(limiter.tracked(), 1u);
  EXPECT_EQ(limiter.evictions(), 0u);
  limiter.RecordFailure("d");
  limiter.RecordFailure("e");  // c and d are still draining: one is evicted
  EXPECT_EQ(limiter.tracked(), 2u);
  EXPECT_EQ(limiter.evictions(), 1u);
}

// ---- auth mount table ----

class AuthMountTableTest : public AppRoleStoreTest {};

TEST_F(AuthMountTableTest, TokenMountIsAlwaysPresentAndCannotBeDisabled) {
  auto table = AuthMountTable::Create(*barrier_, clock_);
  ASSERT_TRUE(table.ok()) << table.status();
  std::vector<AuthMountEntry> list = (*table)->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].path, "token/");
  EXPECT_EQ(list[0].type, "token");
  EXPECT_EQ((*table)->Disable("token").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*table)->Enable("tok", "token", "").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AuthMountTableTest, EnablePersistsAndRejectsUnknownTypesAndOverlaps) {
  auto table = AuthMountTable::Create(*barrier_, clock_);
  ASSERT_TRUE(table.ok());
  ASSERT_TRUE((*table)->Enable("approle", "approle", "apps").ok());
  EXPECT_EQ((*table)->Enable("ldap", "ldap", "").code(), absl::StatusCode::kInvalidArgument);
  absl::Status dup = (*table)->Enable("approle/", "approle", "");
  EXPECT_EQ(dup.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dup.message(), HasSubstr("path is already in use"));
  EXPECT_EQ((*table)->Enable("approle/nested", "approle", "").code(),
            absl::StatusCode::kInvalidArgument);
  auto match = (*table)->FindAppRole("approle/role/web");
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->rest, "role/web");
  EXPECT_EQ(match->entry.description, "apps");
  EXPECT_THAT(match->entry.accessor, ::testing::StartsWith("auth_approle_"));
  AppRole role = *match->store->WriteRole("web", {});

  auto reopened = AuthMountTable::Create(*barrier_, clock_);
  ASSERT_TRUE(reopened.ok());
  ASSERT_EQ((*reopened)->List().size(), 2u);
  auto again = (*reopened)->FindAppRole("approle/login");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->store->ReadRole("web")->role_id, role.role_id);
  EXPECT_FALSE((*reopened)->FindAppRole("token/lookup-self").has_value());
  EXPECT_FALSE((*reopened)->FindAppRole("approlex/login").has_value());
}

TEST_F(AuthMountTableTest, DisableDeletesRolesAndSecretIds) {
  auto table = AuthMountTable::Create(*barrier_, clock_);
  ASSERT_TRUE(table.ok());
  ASSERT_TRUE((*table)->Enable("approle", "approle", "").ok());
  auto match = (*table)->FindAppRole("approle/");
  ASSERT_TRUE(match.has_value());
  ASSERT_TRUE(match->store->WriteRole("web", {}).ok());
  ASSERT_TRUE(match->store->GenerateSecretId("web", {}).ok());
  std::string prefix = "auth/" + match->entry.uuid + "/";
  auto before = backend_.List(prefix, "", 0);
  ASSERT_TRUE(before.ok());
  EXPECT_GE(before->keys.size(), 3u);  // key, role, secret-id

  ASSERT_TRUE((*table)->Disable("approle").ok());
  EXPECT_TRUE((*table)->Disable("approle").ok());  // nothing there: OK, as Vault
  EXPECT_FALSE((*table)->FindAppRole("approle/login").has_value());
  auto after = backend_.List(prefix, "", 0);
  ASSERT_TRUE(after.ok());
  EXPECT_THAT(after->keys, IsEmpty());
  // A request still holding the old store cannot write behind the deletion.
  EXPECT_EQ(match->store->WriteRole("db", {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Re-enabling gives an empty mount.
  ASSERT_TRUE((*table)->Enable("approle", "approle", "").ok());
  EXPECT_THAT((*table)->FindAppRole("approle/")->store->ListRoles(), IsEmpty());
}

}  // namespace
}  // namespace ward::auth
