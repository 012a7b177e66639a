// HttpClientPool against a real HttpServer: connections are reused across calls and threads,
// and new connections resume the TLS session another connection negotiated.

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/testing/temp_dir.h"
#include "crypto/x509.h"
#include "gtest/gtest.h"
#include "net/http_client.h"
#include "net/http_server.h"

namespace ward::net {
namespace {

class HttpClientPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const absl::Time now = absl::Now();
    auto ca = crypto::GenerateSelfSignedCa("Pool Test CA", now, absl::Hours(1));
    ASSERT_TRUE(ca.ok()) << ca.status();
    auto leaf = crypto::IssueServerCertificate(*ca, "localhost", {"localhost"}, {"127.0.0.1"},
                                               now, absl::Hours(1));
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    std::ofstream(dir_.Join("ca.pem")) << ca->cert_pem;
    std::ofstream(dir_.Join("server.pem")) << leaf->cert_pem;
    std::ofstream(dir_.Join("server.key")) << std::string(leaf->key_pem.view());
    HttpServerOptions options;
    options.port = 0;
    options.tls.cert_file = dir_.Join("server.pem");
    options.tls.key_file = dir_.Join("server.key");
    options.io_threads = 2;
    options.worker_threads = 2;
    auto server = HttpServer::Create(std::move(options), [](const HttpRequest& r) {
      HttpResponse response;
      response.body = r.target;
      return response;
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->Start();
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  std::unique_ptr<HttpClientPool> Pool(size_t max_idle) {
    HttpClientOptions options;
    options.address = absl::StrCat("https://127.0.0.1:", server_->port());
    options.ca_file = dir_.Join("ca.pem");
    auto pool = HttpClientPool::Create(options, max_idle);
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? std::move(*pool) : nullptr;
  }

  core::TempDir dir_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpClientPoolTest, SequentialCallsShareOneConnection) {
  auto pool = Pool(4);
  ASSERT_NE(pool, nullptr);
  for (int i = 0; i < 5; ++i) {
    auto r = pool->Send("GET", absl::StrCat("/n", i), {}, "");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->body, absl::StrCat("/n", i));
  }
  EXPECT_EQ(pool->connections_opened(), 1);
  EXPECT_EQ(pool->idle(), 1u);
}

TEST_F(HttpClientPoolTest, ConcurrentCallersGetTheirOwnConnectionsAndResumeTheSession) {
  auto pool = Pool(8);
  ASSERT_NE(pool, nullptr);
  // One call first, so a session exists before the others connect.
  ASSERT_TRUE(pool->Send("GET", "/warm", {}, "").ok());
  constexpr int kThreads = 4;
  constexpr int kCalls = 20;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::string target = absl::StrCat("/t", t, "/", i);
        auto r = pool->Send("GET", target, {}, "");
        if (!r.ok() || r->body != target) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  // Never more connections than callers at once; every connection after the first resumed.
  EXPECT_GE(pool->connections_opened(), 1);
  EXPECT_LE(pool->connections_opened(), kThreads + 1);
  EXPECT_EQ(pool->tls_resumptions(), pool->connections_opened() - 1);
  EXPECT_LE(pool->idle(), 8u);
}

TEST_F(HttpClientPoolTest, ClosedConnectionsAreNotKeptAndTheNextOneResumes) {
  auto pool = Pool(4);
  ASSERT_NE(pool, nullptr);
  // The client asks the server to close after answering.
  auto closed = pool->Send("GET", "/close", {{"Connection", "close"}}, "");
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(pool->idle(), 0u);
  auto next = pool->Send("GET", "/again", {}, "");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(pool->connections_opened(), 2);
  EXPECT_EQ(pool->tls_resumptions(), 1);
}

TEST_F(HttpClientPoolTest, CreateValidatesLikeTheClient) {
  HttpClientOptions options;
  options.address = "http://127.0.0.1:1";
  EXPECT_EQ(HttpClientPool::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.address = absl::StrCat("https://127.0.0.1:", server_->port());
  options.ca_file = dir_.Join("ca.pem");
  EXPECT_EQ(HttpClientPool::Create(options, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ward::net
