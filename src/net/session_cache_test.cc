#include "net/session_cache.h"

#include <openssl/ssl.h>

#include <string>
#include <thread>
#include <vector>

#include "core/testing/fake_clock.h"
#include "gtest/gtest.h"

namespace ward::net {
namespace {

// A session with id `id` that lives `lifetime_seconds`, negotiated with `version`.
SslSessionPtr MakeSession(const std::string& id, long lifetime_seconds = 7200,
                          int version = TLS1_3_VERSION) {
  SslSessionPtr session(SSL_SESSION_new());
  EXPECT_NE(session, nullptr);
  EXPECT_EQ(SSL_SESSION_set1_id(session.get(), reinterpret_cast<const unsigned char*>(id.data()),
                                static_cast<unsigned int>(id.size())),
            1);
  SSL_SESSION_set_timeout(session.get(), lifetime_seconds);
  EXPECT_EQ(SSL_SESSION_set_protocol_version(session.get(), version), 1);
  return session;
}

class SessionCacheTest : public ::testing::Test {
 protected:
  std::shared_ptr<SessionCache> Cache(size_t capacity) {
    auto cache = SessionCache::Create(capacity, &clock_);
    EXPECT_TRUE(cache.ok()) << cache.status();
    return cache.ok() ? *cache : nullptr;
  }

  core::FakeClock clock_;
};

TEST_F(SessionCacheTest, FindReturnsTheStoredSessionItself) {
  auto cache = Cache(10);
  SslSessionPtr session = MakeSession("a");
  cache->Insert(session.get());
  SslSessionPtr found = cache->Find("a");
  EXPECT_EQ(found.get(), session.get());
  EXPECT_EQ(cache->Find("b"), nullptr);
  SessionCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.size, 1u);
  EXPECT_EQ(stats.inserted, 1u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
}

TEST_F(SessionCacheTest, SessionsWithoutIdOrLifetimeAreNotStored) {
  auto cache = Cache(10);
  SslSessionPtr no_id(SSL_SESSION_new());
  SSL_SESSION_set_timeout(no_id.get(), 60);
  cache->Insert(no_id.get());
  cache->Insert(MakeSession("a", /*lifetime_seconds=*/0).get());
  EXPECT_EQ(cache->Stats().size, 0u);
  EXPECT_EQ(cache->Find("a"), nullptr);
}

TEST_F(SessionCacheTest, SessionExpiresWithItsLifetime) {
  auto cache = Cache(10);
  cache->Insert(MakeSession("a", 60, TLS1_2_VERSION).get());
  clock_.Advance(absl::Seconds(59));
  EXPECT_NE(cache->Find("a"), nullptr);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(cache->Find("a"), nullptr);
  SessionCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.size, 0u);
  EXPECT_EQ(stats.expired, 1u);
}

TEST_F(SessionCacheTest, ExpiredSessionsAreDroppedWhenOthersAreStored) {
  auto cache = Cache(10);
  cache->Insert(MakeSession("a", 60).get());
  cache->Insert(MakeSession("b", 60).get());
  clock_.Advance(absl::Seconds(61));
  cache->Insert(MakeSession("c", 60).get());
  SessionCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.size, 1u);
  EXPECT_EQ(stats.expired, 2u);
  EXPECT_EQ(stats.evicted, 0u);
}

TEST_F(SessionCacheTest, ResumedTls13SessionStaysOnlyForTheReuseWindow) {
  auto cache = Cache(10);
  cache->Insert(MakeSession("a").get());
  ASSERT_NE(cache->Find("a"), nullptr);
  // Clients opening several connections at once with the same ticket still resume.
  clock_.Advance(SessionCache::kReuseWindow - absl::Seconds(1));
  EXPECT_NE(cache->Find("a"), nullptr);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(cache->Find("a"), nullptr);
  EXPECT_EQ(cache->Stats().size, 0u);
}

TEST_F(SessionCacheTest, ResumedTls12SessionKeepsItsLifetime) {
  auto cache = Cache(10);
  cache->Insert(MakeSession("a", 3600, TLS1_2_VERSION).get());
  ASSERT_NE(cache->Find("a"), nullptr);
  clock_.Advance(absl::Minutes(59));
  EXPECT_NE(cache->Find("a"), nullptr);
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(cache->Find("a"), nullptr);
}

TEST_F(SessionCacheTest, FullCacheEvictsResumedSessionsFirstThenTheOldest) {
  auto cache = Cache(3);
  for (const char* id : {"a", "b", "c"}) cache->Insert(MakeSession(id).get());
  ASSERT_NE(cache->Find("b"), nullptr);  // superseded: evicted first
  cache->Insert(MakeSession("d").get());
  EXPECT_EQ(cache->Find("b"), nullptr);
  cache->Insert(MakeSession("e").get());  // now the oldest stored goes: a
  EXPECT_EQ(cache->Find("a"), nullptr);
  SessionCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.size, 3u);
  EXPECT_EQ(stats.evicted, 2u);
  for (const char* id : {"c", "d", "e"}) EXPECT_NE(cache->Find(id), nullptr) << id;
}

TEST_F(SessionCacheTest, InsertReplacesTheSessionWithTheSameId) {
  auto cache = Cache(3);
  SslSessionPtr first = MakeSession("a");
  SslSessionPtr second = MakeSession("a");
  cache->Insert(first.get());
  cache->Insert(second.get());
  EXPECT_EQ(cache->Find("a").get(), second.get());
  EXPECT_EQ(cache->Stats().size, 1u);
}

TEST_F(SessionCacheTest, RemoveDropsTheSession) {
  auto cache = Cache(3);
  cache->Insert(MakeSession("a").get());
  cache->Remove("a");
  cache->Remove("never");
  EXPECT_EQ(cache->Find("a"), nullptr);
  EXPECT_EQ(cache->Stats().removed, 1u);
}

TEST_F(SessionCacheTest, CacheKeepsSessionsAliveAfterTheirCreatorFreesThem) {
  auto cache = Cache(3);
  SSL_SESSION* raw = nullptr;
  {
    SslSessionPtr session = MakeSession("a");
    raw = session.get();
    cache->Insert(raw);
  }
  SslSessionPtr found = cache->Find("a");
  ASSERT_EQ(found.get(), raw);
  unsigned int length = 0;
  const unsigned char* id = SSL_SESSION_get_id(found.get(), &length);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(id), length), "a");
}

TEST_F(SessionCacheTest, ZeroCapacityIsRejected) {
  EXPECT_EQ(SessionCache::Create(0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionCacheTest, ConcurrentUseKeepsTheBound) {
  auto cache = Cache(100);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string id = std::to_string(t) + ":" + std::to_string(i);
        cache->Insert(MakeSession(id).get());
        cache->Find(id);
        if (i % 7 == 0) cache->Remove(id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  SessionCacheStats stats = cache->Stats();
  EXPECT_LE(stats.size, 100u);
  EXPECT_EQ(stats.inserted, 8000u);
  EXPECT_EQ(stats.size + stats.evicted + stats.removed + stats.expired, stats.inserted);
}

}  // namespace
}  // namespace ward::net
