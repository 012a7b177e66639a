// Rate-limit quotas on a real server: the sys/quotas API, 429 with Retry-After, recovery.

#include <boost/json.hpp>
#include <chrono>
#include <map>
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

// group_by gives each token its own allowance; role binds a quota to one AppRole role's logins.
TEST(QuotaTest, PerTokenAndPerRoleQuotas) {
  core::TempDir dir;
  auto server = WardProcess::StartDev(dir.Join("data"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client();
  ASSERT_NE(client, nullptr);
  const std::string root = (*server)->root_token();

  Reply bad =
      Call(*client, "PUT", "sys/quotas/rate-limit/x", root, R"({"rate":1,"group_by":"user"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(Errors(bad).at(0).find("invalid group_by"), std::string::npos) << bad.body;
  Reply role_off_auth = Call(*client, "PUT", "sys/quotas/rate-limit/x", root,
                             R"({"rate":1,"path":"secret/","role":"web"})");
  EXPECT_EQ(role_off_auth.status, 400) << role_off_auth.body;

  // Two requests per minute per token on secret/: a second token is not held back by the first.
  ASSERT_EQ(Call(*client, "PUT", "sys/quotas/rate-limit/per-token", root,
                 R"({"rate":2,"interval":"1m","path":"secret/","group_by":"entity_then_ip"})")
                .status,
            204);
  Reply got = Call(*client, "GET", "sys/quotas/rate-limit/per-token", root);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Parse(got.body).at("data").at("group_by"), "entity_then_ip");
  Reply created = Call(*client, "PUT", "auth/token/create", root, R"({"policies":["root"]})");
  ASSERT_EQ(created.status, 200) << created.body;
  std::string other(Parse(created.body).at("auth").at("client_token").as_string());
  EXPECT_EQ(Call(*client, "GET", "secret/data/none", root).status, 404);
  EXPECT_EQ(Call(*client, "GET", "secret/data/none", root).status, 404);
  EXPECT_EQ(Call(*client, "GET", "secret/data/none", root).status, 429);
  EXPECT_EQ(Call(*client, "GET", "secret/data/none", other).status, 404);
  EXPECT_EQ(Call(*client, "GET", "secret/data/none", other).status, 404);
  EXPECT_EQ(Call(*client, "GET", "secret/data/none", other).status, 429);

  // One login per minute for role "web"; role "api" on the same mount is not limited by it.
  ASSERT_EQ(Call(*client, "POST", "sys/auth/approle", root, R"({"type":"approle"})").status, 204);
  auto role_ids = std::map<std::string, std::string>{};
  for (std::string role : {"web", "api"}) {
    ASSERT_EQ(Call(*client, "POST", "auth/approle/role/" + role, root,
                   R"({"bind_secret_id":false,"secret_id_bound_cidrs":["127.0.0.0/8"]})")
                  .status,
              204);
    Reply id = Call(*client, "GET", "auth/approle/role/" + role + "/role-id", root);
    ASSERT_EQ(id.status, 200) << id.body;
    role_ids[role] = std::string(Parse(id.body).at("data").at("role_id").as_string());
  }
  ASSERT_EQ(Call(*client, "PUT", "sys/quotas/rate-limit/web-logins", root,
                 R"({"rate":1,"interval":"1m","path":"auth/approle/","role":"web"})")
                .status,
            204);
  auto login = [&](const std::string& role) {
    return Call(*client, "POST", "auth/approle/login", "",
                R"({"role_id":")" + role_ids[role] + R"("})")
        .status;
  };
  EXPECT_EQ(login("web"), 200);
  EXPECT_EQ(login("web"), 429);
  EXPECT_EQ(login("api"), 200);
  EXPECT_EQ(login("api"), 200);
}

}  // namespace
}  // namespace ward::testing
