// Regression tests for what fuzz/api_request_fuzzer found in VaultHandler (fuzz/README.md),
// through VaultHandler::Handle on a Core over a MemoryBackend with a fake clock.

#include <string>

#include "api/testing/dev_node.h"
#include "gtest/gtest.h"

namespace ward::api {
namespace {

class HandlerTest : public testing::DevNodeTest {
 protected:
  // GET `target` (the whole request target, "/v1/..."), without a token.
  net::HttpResponse Get(const std::string& target) {
    net::HttpRequest request = Request("GET", "", "");
    request.target = target;
    return Send(request);
  }
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
  core().Seal();
  EXPECT_EQ(Get("/v1/sys/health?sealedcode=100").status, 503);
  EXPECT_EQ(Get("/v1/sys/health?sealedcode=429").status, 429);
}

}  // namespace
}  // namespace ward::api
