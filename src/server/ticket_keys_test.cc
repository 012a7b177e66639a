// SharedTicketKeys: nodes over one barrier agree on the keys, rotate them once per period
// without losing a key to a concurrent rotation, and two listeners given the stored keys
// resume each other's sessions.

#include "server/ticket_keys.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "barrier/testing/hooked_backend.h"
#include "barrier/testing/unsealed_barrier.h"
#include "core/testing/fake_clock.h"
#include "core/testing/temp_dir.h"
#include "crypto/testing/test_pki.h"
#include "gtest/gtest.h"
#include "net/http_server.h"
#include "net/testing/loopback.h"
#include "storage/memory_backend.h"

namespace ward::server {
namespace {

std::string Names(const TicketKeySet& set) {
  std::string names;
  for (const net::TicketKey& k : set.keys) names += k.name();
  return names;
}

class TicketKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = barrier::testing::NewUnsealedBarrier(hooked_, clock_, unseal_key_);
    ASSERT_TRUE(a.ok()) << a.status();
    barrier_a_ = std::move(*a);
    auto b = barrier::Barrier::Create(memory_, clock_);
    ASSERT_TRUE(b.ok()) << b.status();
    barrier_b_ = std::move(*b);
    ASSERT_TRUE(barrier_b_->Unseal(unseal_key_).ok());
  }

  core::FakeClock clock_;
  core::SecureBytes unseal_key_{std::string(32, 'u')};
  storage::MemoryBackend memory_;
  // Node A reaches storage through hooked_ (to stage races); node B directly.
  barrier::testing::HookedBackend hooked_{memory_};
  std::unique_ptr<barrier::Barrier> barrier_a_;
  std::unique_ptr<barrier::Barrier> barrier_b_;
};

TEST_F(TicketKeysTest, TwoNodesOverOneBarrierAgree) {
  SharedTicketKeys a(*barrier_a_, clock_, absl::Hours(12));
  SharedTicketKeys b(*barrier_b_, clock_, absl::Hours(12));
  auto first = a.Sync();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->rotated);  // nothing stored: A created the first key
  EXPECT_TRUE(first->changed);
  ASSERT_EQ(first->keys.size(), 1u);
  EXPECT_EQ(first->keys[0].bytes.size(), net::TicketKey::kSize);

  auto seen = b.Sync();
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_FALSE(seen->rotated);
  EXPECT_TRUE(seen->changed);
  ASSERT_EQ(seen->keys.size(), 1u);
  EXPECT_EQ(seen->keys[0].bytes, first->keys[0].bytes);
  EXPECT_EQ(seen->created[0], clock_.Now());

  auto again = b.Sync();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_FALSE(again->rotated);
}

TEST_F(TicketKeysTest, RotatesOncePerPeriodKeepingThePreviousKey) {
  SharedTicketKeys a(*barrier_a_, clock_, absl::Hours(12));
  SharedTicketKeys b(*barrier_b_, clock_, absl::Hours(12));
  auto first = a.Sync();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(b.Sync().ok());

  clock_.Advance(absl::Hours(12) - absl::Seconds(1));
  auto early = b.Sync();
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->rotated);
  EXPECT_EQ(early->keys.size(), 1u);

  clock_.Advance(absl::Seconds(1));
  auto rotated = b.Sync();
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_TRUE(rotated->rotated);
  EXPECT_TRUE(rotated->changed);
  ASSERT_EQ(rotated->keys.size(), 2u);
  EXPECT_EQ(rotated->keys[1].bytes, first->keys[0].bytes);  // still decrypts old tickets
  EXPECT_NE(rotated->keys[0].bytes, first->keys[0].bytes);

  // The other node adopts the rotation instead of rotating again.
  auto adopted = a.Sync();
  ASSERT_TRUE(adopted.ok());
  EXPECT_FALSE(adopted->rotated);
  EXPECT_TRUE(adopted->changed);
  EXPECT_EQ(Names(*adopted), Names(*rotated));

  // Next period: the first key is dropped, the second becomes the previous one.
  clock_.Advance(absl::Hours(12));
  auto third = a.Sync();
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->rotated);
  ASSERT_EQ(third->keys.size(), 2u);
  EXPECT_EQ(third->keys[1].bytes, rotated->keys[0].bytes);
}

TEST_F(TicketKeysTest, ConcurrentRotationLosesNoKey) {
  SharedTicketKeys a(*barrier_a_, clock_, absl::Hours(12));
  SharedTicketKeys b(*barrier_b_, clock_, absl::Hours(12));
  auto first = b.Sync();
  ASSERT_TRUE(first.ok());
  clock_.Advance(absl::Hours(13));

  // B rotates between A's read and A's conditional write.
  std::string b_names;
  hooked_.BeforeNextCommit([&] {
    auto r = b.Sync();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->rotated);
    b_names = Names(*r);
  });
  auto a_result = a.Sync();
  ASSERT_TRUE(a_result.ok()) << a_result.status();
  EXPECT_FALSE(a_result->rotated);  // lost the race, adopted B's keys
  EXPECT_EQ(Names(*a_result), b_names);
  ASSERT_EQ(a_result->keys.size(), 2u);
  EXPECT_EQ(a_result->keys[1].bytes, first->keys[0].bytes);

  auto b_again = b.Sync();
  ASSERT_TRUE(b_again.ok());
  EXPECT_EQ(Names(*b_again), b_names);
}

TEST_F(TicketKeysTest, MalformedStoredValueIsDataLoss) {
  ASSERT_TRUE(barrier_b_->Put(std::string(kTicketKeysPath), "{\"keys\":[{\"bytes\":\"AAAA\"}]}").ok());
  SharedTicketKeys a(*barrier_a_, clock_, absl::Hours(12));
  EXPECT_EQ(a.Sync().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(TicketKeysTest, SealedBarrierIsUnavailable) {
  barrier_a_->Seal();
  SharedTicketKeys a(*barrier_a_, clock_, absl::Hours(12));
  EXPECT_EQ(a.Sync().status().code(), absl::StatusCode::kUnavailable);
}

struct Exchange {
  bool served = false;
  bool reused = false;
  net::SslSessionPtr session;
};

// One GET over a fresh connection to 127.0.0.1:port, offering `session` if not null.
Exchange Get(uint16_t port, SSL_CTX* ctx, SSL_SESSION* session) {
  Exchange result;
  const int fd = net::testing::ConnectLoopback(port);
  if (fd < 0) {
    ADD_FAILURE() << "connect failed";
    return result;
  }
  net::SslPtr ssl(SSL_new(ctx));
  SSL_set_fd(ssl.get(), fd);
  if (session != nullptr) SSL_set_session(ssl.get(), session);
  std::string response;
  if (SSL_connect(ssl.get()) == 1) {
    result.reused = SSL_session_reused(ssl.get()) == 1;
    const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) > 0) {
      char buf[4096];
      for (;;) {
        const int n = SSL_read(ssl.get(), buf, sizeof(buf));
        if (n <= 0) break;
        response.append(buf, static_cast<size_t>(n));
      }
    }
    result.session.reset(SSL_get1_session(ssl.get()));
    SSL_shutdown(ssl.get());
  }
  ERR_clear_error();
  result.served = response.rfind("HTTP/1.1 200", 0) == 0;
  ssl.reset();
  ::close(fd);
  return result;
}

TEST_F(TicketKeysTest, SessionResumesOnASecondListenerWithKeysFromTheSameBarrier) {
  core::TempDir dir;
  auto tls = crypto::testing::WriteLocalhostTls(dir.path(), absl::Now());
  ASSERT_TRUE(tls.ok()) << tls.status();

  std::vector<std::unique_ptr<net::HttpServer>> servers;
  for (barrier::Barrier* barrier : {barrier_a_.get(), barrier_b_.get()}) {
    net::HttpServerOptions options;
    options.port = 0;
    options.io_threads = 1;
    options.worker_threads = 1;
    options.tls.cert_file = dir.Join("server.pem");
    options.tls.key_file = dir.Join("server.key");
    auto server = net::HttpServer::Create(options, [](const net::HttpRequest&) {
      net::HttpResponse r;
      r.status = 200;
      r.body = "ok";
      return r;
    });
    ASSERT_TRUE(server.ok()) << server.status();
    SharedTicketKeys keys(*barrier, clock_, absl::Hours(12));
    auto set = keys.Sync();
    ASSERT_TRUE(set.ok()) << set.status();
    ASSERT_TRUE((*server)->SetTicketKeys(std::move(set->keys)).ok());
    (*server)->Start();
    servers.push_back(std::move(*server));
  }

  net::SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  Exchange first = Get(servers[0]->port(), ctx.get(), nullptr);
  ASSERT_TRUE(first.served);
  ASSERT_NE(first.session, nullptr);
  Exchange other = Get(servers[1]->port(), ctx.get(), first.session.get());
  EXPECT_TRUE(other.served);
  EXPECT_TRUE(other.reused);
  EXPECT_EQ(servers[1]->Stats().handshakes_resumed, 1u);
  for (auto& s : servers) s->Shutdown(absl::Seconds(5));
}

}  // namespace
}  // namespace ward::server
