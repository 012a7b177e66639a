#include "quota/rate_limiter.h"

#include "barrier/barrier.h"
#include "barrier/testing/unsealed_barrier.h"
#include "core/secure_bytes.h"
#include "core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"

namespace ward::quota {
namespace {

using ::testing::ElementsAre;

core::SecureBytes UnsealKey() {
  core::SecureBytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<uint8_t>(i * 7 + 1);
  return key;
}

// A caller known by its address only.
Caller From(std::string_view address) { return Caller{address, "", nullptr}; }

RateLimitQuota Quota(std::string name, std::string path, double rate,
                     absl::Duration interval = absl::Seconds(1),
                     absl::Duration block = absl::ZeroDuration()) {
  RateLimitQuota q;
  q.name = std::move(name);
  q.path = std::move(path);
  q.rate = rate;
  q.interval = interval;
  q.block_interval = block;
  return q;
}

class RateLimiterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = barrier::testing::NewUnsealedBarrier(backend_, clock_, UnsealKey());
    ASSERT_TRUE(b.ok()) << b.status();
    barrier_ = *std::move(b);
    limiter_ = Open();
    ASSERT_NE(limiter_, nullptr);
  }
  std::unique_ptr<RateLimiter> Open() {
    auto r = RateLimiter::Create(*barrier_, clock_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }
  // Number of requests allowed out of `n` sent back to back.
  int Allowed(int n, std::string_view path, std::string_view ip) {
    int ok = 0;
    for (int i = 0; i < n; ++i) ok += limiter_->Check(path, From(ip)).allowed ? 1 : 0;
    return ok;
  }

  storage::MemoryBackend backend_;
  core::FakeClock clock_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<RateLimiter> limiter_;
};

TEST_F(RateLimiterTest, NoQuotaAllowsEverything) {
  Decision d = limiter_->Check("secret/data/a", From("10.0.0.1"));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.quota, "");
  // The first quota applies from the next request; deleting the last lets everything through.
  ASSERT_TRUE(limiter_->Set(Quota("q", "secret/", 1)).ok());
  EXPECT_TRUE(limiter_->Check("secret/data/a", From("10.0.0.1")).allowed);
  EXPECT_FALSE(limiter_->Check("secret/data/a", From("10.0.0.1")).allowed);
  ASSERT_TRUE(limiter_->Delete("q").ok());
  d = limiter_->Check("secret/data/a", From("10.0.0.1"));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.quota, "");
}

TEST_F(RateLimiterTest, BucketAllowsRateThenRefusesThenRefills) {
  ASSERT_TRUE(limiter_->Set(Quota("q", "secret/", 2)).ok());
  Decision first = limiter_->Check("secret/data/a", From("10.0.0.1"));
  EXPECT_TRUE(first.allowed);
  EXPECT_EQ(first.quota, "q");
  EXPECT_EQ(first.limit, 2);
  EXPECT_EQ(first.remaining, 1u);
  EXPECT_TRUE(limiter_->Check("secret/data/a", From("10.0.0.1")).allowed);
  Decision refused = limiter_->Check("secret/data/a", From("10.0.0.1"));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, absl::Milliseconds(500));  // one request refills in 1/2 s
  clock_.Advance(absl::Milliseconds(499));
  EXPECT_FALSE(limiter_->Check("secret/data/a", From("10.0.0.1")).allowed);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(limiter_->Check("secret/data/a", From("10.0.0.1")).allowed);
  EXPECT_FALSE(limiter_->Check("secret/data/a", From("10.0.0.1")).allowed);
  // A long pause refills to capacity, not beyond.
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Allowed(5, "secret/data/a", "10.0.0.1"), 2);
}

TEST_F(RateLimiterTest, IntervalScalesTheRefill) {
  ASSERT_TRUE(limiter_->Set(Quota("q", "", 3, absl::Minutes(1))).ok());
  EXPECT_EQ(Allowed(10, "secret/data/a", "ip"), 3);
  clock_.Advance(absl::Seconds(19));
  EXPECT_EQ(Allowed(10, "secret/data/a", "ip"), 0);
  clock_.Advance(absl::Seconds(1));  // 20 s = one request's worth
  EXPECT_EQ(Allowed(10, "secret/data/a", "ip"), 1);
}

TEST_F(RateLimiterTest, BlockIntervalRefusesUntilItEnds) {
  ASSERT_TRUE(limiter_->Set(Quota("q", "secret/", 1, absl::Seconds(1), absl::Seconds(10))).ok());
  EXPECT_TRUE(limiter_->Check("secret/x", From("ip")).allowed);
  Decision refused = limiter_->Check("secret/x", From("ip"));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, absl::Seconds(10));
  clock_.Advance(absl::Seconds(5));  // the bucket has refilled, but the block holds
  Decision blocked = limiter_->Check("secret/x", From("ip"));
  EXPECT_FALSE(blocked.allowed);
  EXPECT_EQ(blocked.retry_after, absl::Seconds(5));
  clock_.Advance(absl::Seconds(5));
  EXPECT_TRUE(limiter_->Check("secret/x", From("ip")).allowed);
}

TEST_F(RateLimiterTest, MostSpecificQuotaWins) {
  ASSERT_TRUE(limiter_->Set(Quota("global", "", 100)).ok());
  ASSERT_TRUE(limiter_->Set(Quota("mount", "secret/", 5)).ok());
  ASSERT_TRUE(limiter_->Set(Quota("hot", "secret/data/hot", 1)).ok());
  EXPECT_EQ(limiter_->Check("secret/data/hot", From("ip")).quota, "hot");
  EXPECT_EQ(limiter_->Check("secret/data/cold", From("ip")).quota, "mount");
  EXPECT_EQ(limiter_->Check("auth/token/lookup-self", From("ip")).quota, "global");
  EXPECT_EQ(Allowed(3, "secret/data/hot", "ip"), 0);  // its one request went above
  EXPECT_EQ(Allowed(10, "secret/data/cold", "ip"), 4);
}

TEST_F(RateLimiterTest, ClientsHaveSeparateBuckets) {
  ASSERT_TRUE(limiter_->Set(Quota("q", "secret/", 2)).ok());
  EXPECT_EQ(Allowed(5, "secret/a", "10.0.0.1"), 2);
  EXPECT_EQ(Allowed(5, "secret/a", "10.0.0.2"), 2);
  EXPECT_EQ(Allowed(5, "secret/a", "::1"), 2);
}

TEST_F(RateLimiterTest, GroupByNoneSharesOneBucketBetweenAllClients) {
  RateLimitQuota q = Quota("collective", "secret/", 3);
  q.group_by = "none";
  ASSERT_TRUE(limiter_->Set(q).ok());
  EXPECT_EQ(Allowed(2, "secret/a", "10.0.0.1"), 2);
  EXPECT_EQ(Allowed(5, "secret/a", "10.0.0.2"), 1);
  EXPECT_EQ(Allowed(5, "secret/a", "10.0.0.3"), 0);
}

TEST_F(RateLimiterTest, GroupByEntityGivesEachTokenItsOwnBucket) {
  RateLimitQuota q = Quota("per-token", "secret/", 2);
  q.group_by = "entity_then_ip";
  ASSERT_TRUE(limiter_->Set(q).ok());
  auto allowed = [this](int n, std::string_view address, std::string_view token) {
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      ok += limiter_->Check("secret/a", Caller{address, token, nullptr}).allowed ? 1 : 0;
    }
    return ok;
  };
  // Two tokens from one address each get the full rate; without a token, the address decides.
  EXPECT_EQ(allowed(5, "10.0.0.1", "hvs.token-one"), 2);
  EXPECT_EQ(allowed(5, "10.0.0.1", "hvs.token-two"), 2);
  EXPECT_EQ(allowed(5, "10.0.0.2", "hvs.token-one"), 0);  // the same token from elsewhere
  EXPECT_EQ(allowed(5, "10.0.0.1", ""), 2);
  EXPECT_EQ(allowed(5, "10.0.0.2", ""), 2);

  q.group_by = "entity_then_none";
  ASSERT_TRUE(limiter_->Set(q).ok());
  EXPECT_EQ(allowed(5, "10.0.0.1", ""), 2);
  EXPECT_EQ(allowed(5, "10.0.0.2", ""), 0);  // requests without a token share one bucket
  EXPECT_EQ(allowed(5, "10.0.0.2", "hvs.token-one"), 2);
}

TEST_F(RateLimiterTest, RoleQuotaCoversOnlyLoginsWithThatRole) {
  RateLimitQuota mount = Quota("approle", "auth/approle/", 10);
  RateLimitQuota role = Quota("web-logins", "auth/approle/", 1);
  role.role = "web";
  ASSERT_TRUE(limiter_->Set(mount).ok());
  ASSERT_TRUE(limiter_->Set(role).ok());
  int resolved = 0;
  auto login = [&](std::string role_name) {
    return limiter_->Check("auth/approle/login", Caller{"10.0.0.1", "", [&resolved, role_name] {
                                                          ++resolved;
                                                          return role_name;
                                                        }});
  };
  Decision web = login("web");
  EXPECT_EQ(web.quota, "web-logins");
  EXPECT_TRUE(web.allowed);
  EXPECT_FALSE(login("web").allowed);
  Decision api = login("api");
  EXPECT_EQ(api.quota, "approle");
  EXPECT_TRUE(api.allowed);
  EXPECT_EQ(resolved, 3);
  // Paths no role quota covers never resolve the role.
  EXPECT_EQ(limiter_->Check("secret/a", Caller{"10.0.0.1", "", [&resolved] {
                                           ++resolved;
                                           return std::string("web");
                                         }})
                .quota,
            "");
  EXPECT_EQ(resolved, 3);
}

TEST_F(RateLimiterTest, GroupByAndRoleAreValidatedAndPersisted) {
  RateLimitQuota bad = Quota("q", "secret/", 1);
  bad.group_by = "entity";
  absl::Status s = limiter_->Set(bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("invalid group_by \"entity\""));
  bad.group_by = "ip";
  bad.role = "web";
  EXPECT_EQ(limiter_->Set(bad).code(), absl::StatusCode::kInvalidArgument);

  RateLimitQuota q = Quota("q", "auth/approle/", 1);
  q.group_by = "entity_then_none";
  q.role = "web";
  ASSERT_TRUE(limiter_->Set(q).ok());
  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  auto got = reopened->Get("q");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->group_by, "entity_then_none");
  EXPECT_EQ(got->role, "web");
}

TEST_F(RateLimiterTest, QuotaStoredBeforeGroupByLoadsAsPerAddress) {
  ASSERT_TRUE(barrier_
                  ->Put("core/quotas/rate-limit/old",
                        R"({"name":"old","path":"","rate":1,"interval":1,"block_interval":0})")
                  .ok());
  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  auto got = reopened->Get("old");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->group_by, "ip");
  EXPECT_EQ(got->role, "");
}

TEST_F(RateLimiterTest, ExemptPathsAreNeverLimited) {
  ASSERT_TRUE(limiter_->Set(Quota("q", "", 1)).ok());
  EXPECT_EQ(Allowed(5, "sys/health", "ip"), 5);
  EXPECT_EQ(Allowed(5, "sys/seal-status", "ip"), 5);
  EXPECT_EQ(Allowed(5, "sys/metrics", "ip"), 5);
  EXPECT_EQ(Allowed(5, "sys/quotas/rate-limit/q", "ip"), 5);
  EXPECT_EQ(Allowed(5, "sys/healthy", "ip"), 1);  // a prefix of a name is not the route
  QuotaConfig c;
  c.rate_limit_exempt_paths = {"secret/data/ci/"};
  ASSERT_TRUE(limiter_->SetConfig(c).ok());
  EXPECT_EQ(Allowed(5, "secret/data/ci/x", "ip"), 5);
}

TEST_F(RateLimiterTest, ReplacingAQuotaResetsItsBuckets) {
  ASSERT_TRUE(limiter_->Set(Quota("q", "secret/", 1)).ok());
  EXPECT_EQ(Allowed(3, "secret/a", "ip"), 1);
  ASSERT_TRUE(limiter_->Set(Quota("q", "secret/", 2)).ok());
  EXPECT_EQ(Allowed(3, "secret/a", "ip"), 2);
}

TEST_F(RateLimiterTest, InvalidQuotasAreRejected) {
  EXPECT_EQ(limiter_->Set(Quota("", "", 1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(limiter_->Set(Quota("a/b", "", 1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(limiter_->Set(Quota("q", "", 0)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(limiter_->Set(Quota("q", "", -1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(limiter_->Set(Quota("q", "", 1, absl::ZeroDuration())).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(limiter_->Set(Quota("q", "", 1, absl::Seconds(1), absl::Seconds(-1))).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(limiter_->List().empty());
}

TEST_F(RateLimiterTest, QuotasAndConfigPersistThroughTheBarrier) {
  ASSERT_TRUE(limiter_->Set(Quota("b", "secret/", 2.5, absl::Seconds(2), absl::Seconds(30))).ok());
  ASSERT_TRUE(limiter_->Set(Quota("a", "", 10)).ok());
  QuotaConfig c;
  c.enable_rate_limit_response_headers = true;
  c.rate_limit_exempt_paths = {"x/"};
  ASSERT_TRUE(limiter_->SetConfig(c).ok());
  ASSERT_TRUE(limiter_->Delete("a").ok());
  ASSERT_TRUE(limiter_->Delete("never-existed").ok());
  EXPECT_EQ(limiter_->Get("a").status().code(), absl::StatusCode::kNotFound);

  auto stored = barrier_->Get("core/quotas/rate-limit/b");
  ASSERT_TRUE(stored.ok()) << stored.status();

  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  EXPECT_THAT(reopened->List(), ElementsAre("b"));
  auto b = reopened->Get("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->path, "secret/");
  EXPECT_EQ(b->rate, 2.5);
  EXPECT_EQ(b->interval, absl::Seconds(2));
  EXPECT_EQ(b->block_interval, absl::Seconds(30));
  EXPECT_TRUE(reopened->config().enable_rate_limit_response_headers);
  EXPECT_FALSE(reopened->config().enable_rate_limit_audit_logging);
  EXPECT_THAT(reopened->config().rate_limit_exempt_paths, ElementsAre("x/"));
}

TEST_F(RateLimiterTest, CorruptStoredQuotaIsDataLoss) {
  ASSERT_TRUE(barrier_->Put("core/quotas/rate-limit/bad", R"({"name":"bad"})").ok());
  EXPECT_EQ(RateLimiter::Create(*barrier_, clock_).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(RateLimiterTest, PruningManyClientsRefusesNoneWrongly) {
  ASSERT_TRUE(limiter_->Set(Quota("q", "", 1)).ok());
  // Many distinct clients, each one request: buckets are pruned, and a client pruned while
  // its bucket was full is allowed again (nothing wrongly refused).
  for (size_t i = 0; i < RateLimiter::kMaxBucketsPerQuota + 10; ++i) {
    ASSERT_TRUE(limiter_->Check("a", From(std::to_string(i))).allowed);
  }
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(limiter_->Check("a", From("fresh")).allowed);
  EXPECT_FALSE(limiter_->Check("a", From("fresh")).allowed);
}

}  // namespace
}  // namespace ward::quota
