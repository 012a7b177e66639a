// Regression tests for what fuzz/api_request_fuzzer found in VaultHandler (fuzz/README.md),
// through VaultHandler::Handle on a Core over a MemoryBackend with a fake clock.

#include <memory>
#include <string>

#include "api/core.h"
#include "api/handler.h"
#include "core/testing/fake_clock.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"

namespace ward::api {
namespace {

class HandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = Core::Create(backend_, clock_, Core::Options{});
    ASSERT_TRUE(created.ok()) << created.status();
    core_ = *std::move(created);
    auto key = core_->InitializeSingleKey();
    ASSERT_TRUE(key.ok()) << key.status();
    ASSERT_TRUE(core_->UnsealWithKey(*key).ok());
    handler_ = std::make_unique<VaultHandler>(*core_, clock_, HandlerOptions{});
  }

  net::HttpResponse Get(const std::string& target) {
    net::HttpRequest request;
    request.method = "GET";
    request.target = target;
    request.remote_address = "127.0.0.1";
    request.remote_port = 50000;
    request.request_id = "00000000-0000-4000-8000-000000000001";
    return net::AwaitHeld(handler_->Handle(request));
  }

  core::FakeClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<Core> core_;
  std::unique_ptr<VaultHandler> handler_;
};

// Found by the fuzzer: ?activecode=140 made sys/health answer with status 140, an interim
// response after which an HTTP client keeps waiting for the real one.
TEST_F(HandlerTest, HealthIgnoresInformationalStatusCodes) {
  EXPECT_EQ(Get("/v1/sys/health?activecode=140").status, 200);
  EXPECT_EQ(Get("/v1/sys/health?activecode=101").status, 200);
  EXPECT_EQ(Get("/v1/sys/health?activecode=199").status, 200);
  EXPECT_EQ(Get("/v1/sys/health?activecode=600").status, 200);
  // Final codes are still honoured, as Vault does.
  EXPECT_EQ(Get("/v1/sys/health?activecode=299").status, 299);
  EXPECT_EQ(Get("/v1/sys/health?activecode=200").status, 200);
  EXPECT_EQ(Get("/v1/sys/health?activecode=599").status, 599);
  core_->Seal();
  EXPECT_EQ(Get("/v1/sys/health?sealedcode=100").status, 503);
  EXPECT_EQ(Get("/v1/sys/health?sealedcode=429").status, 429);
}

}  // namespace
}  // namespace ward::api
