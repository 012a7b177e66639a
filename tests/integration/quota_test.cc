// Rate-limit quotas on a real server: the sys/quotas API, 429 with Retry-After, recovery.

#include <boost/json.hpp>
#include <chrono>
#include <thread>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "metrics/testing/prometheus_parser.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

double Rejections(net::HttpClient& client, const std::string& token) {
  Reply r = Call(client, "GET", "sys/metrics?format=prometheus", token);
  EXPECT_EQ(r.status, 200) << r.body;
  auto parsed = metrics::testing::ParsePrometheusText(r.body);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? parsed->Value("ward_quota_rejections_total").value_or(-1) : -1;
}

TEST(QuotaTest, RateLimitRejectsWith429AndRecovers) {
  core::TempDir dir;
  auto server = WardProcess::StartDev(dir.Join("data"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client();
  ASSERT_NE(client, nullptr);
  const std::string root = (*server)->root_token();

  ASSERT_EQ(Call(*client, "PUT", "secret/data/q", root, R"({"data":{"a":"b"}})").status, 200);

  // The API: create, read back, list, config.
  EXPECT_EQ(Call(*client, "PUT", "sys/quotas/rate-limit/bad", root, R"({"rate":0})").status, 400);
  EXPECT_EQ(Call(*client, "GET", "sys/quotas/rate-limit/bad", root).status, 404);
  EXPECT_EQ(Call(*client, "LIST", "sys/quotas/rate-limit", root).status, 404);
  ASSERT_EQ(Call(*client, "PUT", "sys/quotas/rate-limit/kv", root,
                 R"({"rate":2,"path":"secret/","interval":"1s"})")
                .status,
            204);
  Reply got = Call(*client, "GET", "sys/quotas/rate-limit/kv", root);
  ASSERT_EQ(got.status, 200) << got.body;
  json::value data = Parse(got.body).at("data");
  EXPECT_EQ(data.at("name"), "kv");
  EXPECT_EQ(data.at("type"), "rate-limit");
  EXPECT_EQ(data.at("path"), "secret/");
  EXPECT_EQ(data.at("rate").to_number<double>(), 2);
  EXPECT_EQ(data.at("interval").to_number<double>(), 1);
  EXPECT_EQ(data.at("block_interval").to_number<double>(), 0);
  Reply list = Call(*client, "LIST", "sys/quotas/rate-limit", root);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(Parse(list.body).at("data").at("keys").at(0), "kv");
  ASSERT_EQ(Call(*client, "PUT", "sys/quotas/config", root,
                 R"({"enable_rate_limit_response_headers":true})")
                .status,
            204);
  Reply config = Call(*client, "GET", "sys/quotas/config", root);
  ASSERT_EQ(config.status, 200) << config.body;
  EXPECT_EQ(Parse(config.body).at("data").at("enable_rate_limit_response_headers"), true);

  double rejections_before = Rejections(*client, root);
  EXPECT_EQ(rejections_before, 0);

  // Fire quickly: the bucket holds 2, so a burst must hit 429.
  std::vector<std::pair<std::string, std::string>> headers{{"X-Vault-Token", root}};
  int limited = 0;
  std::string retry_after, body;
  bool saw_ratelimit_headers = false;
  for (int i = 0; i < 8; ++i) {
    auto r = client->Send("GET", "/v1/secret/data/q", headers, "");
    ASSERT_TRUE(r.ok()) << r.status();
    if (!r->Header("x-ratelimit-limit").empty()) {
      saw_ratelimit_headers = true;
      EXPECT_EQ(r->Header("x-ratelimit-limit"), "2");
    }
    if (r->status == 429) {
      ++limited;
      retry_after = std::string(r->Header("retry-after"));
      body = r->body;
    } else {
      EXPECT_EQ(r->status, 200) << r->body;
    }
  }
  EXPECT_GE(limited, 1);
  EXPECT_TRUE(saw_ratelimit_headers);
  EXPECT_EQ(retry_after, "1");
  EXPECT_EQ(Parse(body).at("errors").at(0),
            "request path \"secret/data/q\": rate limit quota exceeded");
  // Paths outside the quota and exempt paths are unaffected.
  EXPECT_EQ(Call(*client, "GET", "sys/health", "").status, 200);
  EXPECT_EQ(Call(*client, "GET", "sys/mounts", root).status, 200);
  EXPECT_EQ(Rejections(*client, root), rejections_before + limited);

  // Real time: after a second the bucket has refilled.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(Call(*client, "GET", "secret/data/q", root).status, 200);

  // Deleting the quota lifts the limit.
  ASSERT_EQ(Call(*client, "DELETE", "sys/quotas/rate-limit/kv", root).status, 204);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Call(*client, "GET", "secret/data/q", root).status, 200);
  EXPECT_EQ(Call(*client, "GET", "sys/quotas/rate-limit/kv", root).status, 404);
}

}  // namespace
}  // namespace ward::testing
