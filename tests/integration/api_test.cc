// Drives a real `ward server --dev` over HTTPS through the Vault-compatible API.

#include <boost/json.hpp>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/shared_dev_server.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

class ApiTest : public SharedDevServerTest {
 protected:
  static void SetUpTestSuite() { StartSuiteServer("root-token-for-tests"); }

};

TEST_F(ApiTest, RootTokenIsTheRequestedOne) {
  EXPECT_EQ(server_->root_token(), "root-token-for-tests");
}

TEST_F(ApiTest, HealthReportsActiveAndHonoursOverrides) {
  Reply r = Call(*client_, "GET", "sys/health", "");
  ASSERT_EQ(r.status, 200) << r.body;
  json::object o = Parse(r.body).as_object();
  EXPECT_EQ(o.at("initialized"), true);
  EXPECT_EQ(o.at("sealed"), false);
  EXPECT_EQ(o.at("standby"), false);
  EXPECT_TRUE(o.contains("server_time_utc"));
  EXPECT_TRUE(o.contains("version"));
  EXPECT_EQ(Call(*client_, "GET", "sys/health?activecode=299", "").status, 299);
  // Unknown parameters are tolerated (clients send misspelled ones).
  EXPECT_EQ(Call(*client_, "GET", "sys/health?standbycode=299&haunhealhty=299", "").status, 200);
  Reply head = Call(*client_, "HEAD", "sys/health", "");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
}

TEST_F(ApiTest, SealStatusShape) {
  Reply r = Call(*client_, "GET", "sys/seal-status", "");
  ASSERT_EQ(r.status, 200);
  json::object o = Parse(r.body).as_object();
  EXPECT_EQ(o.at("type"), "shamir");
  EXPECT_EQ(o.at("sealed"), false);
  EXPECT_EQ(o.at("t"), 1);
  EXPECT_EQ(o.at("n"), 1);
  EXPECT_EQ(o.at("progress"), 0);
  EXPECT_TRUE(o.contains("cluster_id"));
}

TEST_F(ApiTest, WriteThenReadReturnsVaultShapes) {
  Reply w = Root("PUT", "secret/data/app/db", R"({"data":{"password":"hunter2","user":"app"}})");
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_EQ(w.content_type, "application/json");
  json::object wd = Parse(w.body).as_object().at("data").as_object();
  EXPECT_EQ(wd.at("version"), 1);
  EXPECT_EQ(wd.at("deletion_time"), "");
  EXPECT_EQ(wd.at("destroyed"), false);

  Reply r = Root("GET", "secret/data/app/db");
  ASSERT_EQ(r.status, 200) << r.body;
  json::object o = Parse(r.body).as_object();
  for (const char* k : {"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info",
                        "warnings", "auth"}) {
    EXPECT_TRUE(o.contains(k)) << k;
  }
  EXPECT_EQ(o.at("data").at("data").at("password"), "hunter2");
  EXPECT_EQ(o.at("data").at("metadata").at("version"), 1);
  std::string created(o.at("data").at("metadata").at("created_time").as_string());
  EXPECT_EQ(created.size(), 30u) << created;  // RFC 3339 with nanoseconds
  EXPECT_EQ(created.back(), 'Z');
}

TEST_F(ApiTest, PostAndBearerAreAccepted) {
  Reply w = Call(*client_, "POST", "secret/data/bearer", "", R"({"data":{"a":"1"}})");
  EXPECT_EQ(w.status, 403);
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Authorization", "Bearer " + server_->root_token()}, {"Content-Type", "application/json"}};
  auto r = client_->Send("POST", "/v1/secret/data/bearer", headers, R"({"data":{"a":"1"}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(ApiTest, VersionsAndCas) {
  ASSERT_EQ(Root("PUT", "secret/data/cas", R"({"data":{"v":"1"},"options":{"cas":0}})").status, 200);
  Reply again = Root("PUT", "secret/data/cas", R"({"data":{"v":"x"},"options":{"cas":0}})");
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(Errors(again), std::vector<std::string>{"check-and-set parameter did not match the current version"});
  ASSERT_EQ(Root("PUT", "secret/data/cas", R"({"data":{"v":"2"},"options":{"cas":1}})").status, 200);
  Reply v1 = Root("GET", "secret/data/cas?version=1");
  ASSERT_EQ(v1.status, 200);
  EXPECT_EQ(Parse(v1.body).at("data").at("data").at("v"), "1");
  EXPECT_EQ(Root("GET", "secret/data/cas?version=9").status, 404);
  EXPECT_EQ(Root("GET", "secret/data/cas?version=abc").status, 400);

  // cas_required on the secret's metadata.
  ASSERT_EQ(Root("PUT", "secret/metadata/cas", R"({"cas_required":true})").status, 204);
  Reply missing = Root("PUT", "secret/data/cas", R"({"data":{"v":"3"}})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(Errors(missing), std::vector<std::string>{"check-and-set parameter required for this call"});
}

TEST_F(ApiTest, BadInputGetsClearErrorsAndChangesNothing) {
  Reply bad = Root("PUT", "secret/data/bad", "{not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(Errors(bad).at(0).find("failed to parse JSON input"), std::string::npos);
  Reply nodata = Root("PUT", "secret/data/bad", R"({"options":{}})");
  EXPECT_EQ(nodata.status, 400);
  EXPECT_EQ(Errors(nodata), std::vector<std::string>{"no data provided"});
  EXPECT_EQ(Root("PUT", "secret/data/bad", R"({"data":"string"})").status, 400);
  EXPECT_EQ(Root("GET", "secret/data/bad").status, 404);
  Reply missing = Root("GET", "secret/data/never-written");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Parse(missing.body), Parse(R"({"errors":[]})"));
  Reply traversal = Root("GET", "secret/data/../../sys/mounts");
  EXPECT_EQ(traversal.status, 400);
  Reply method = Root("BREW", "secret/data/x");
  EXPECT_EQ(method.status, 405);
}

TEST_F(ApiTest, PatchNeedsMergePatchContentType) {
  ASSERT_EQ(Root("PUT", "secret/data/patchme", R"({"data":{"a":"1","b":"2"}})").status, 200);
  Reply wrong = Root("PATCH", "secret/data/patchme", R"({"data":{"a":"9"}})");
  EXPECT_EQ(wrong.status, 415);
  EXPECT_EQ(Errors(wrong),
            std::vector<std::string>{"PATCH requires Content-Type of application/merge-patch+json"});
  Reply ok = Root("PATCH", "secret/data/patchme", R"({"data":{"a":"9","b":null,"c":"3"}})",
                  "application/merge-patch+json");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Parse(ok.body).at("data").at("version"), 2);
  json::value data = Parse(Root("GET", "secret/data/patchme").body).at("data").at("data");
  EXPECT_EQ(data, Parse(R"({"a":"9","c":"3"})"));
  EXPECT_EQ(Root("PATCH", "secret/data/absent", R"({"data":{"a":"1"}})", "application/merge-patch+json").status,
            404);
}

TEST_F(ApiTest, DeleteUndeleteDestroy) {
  ASSERT_EQ(Root("PUT", "secret/data/life", R"({"data":{"v":"1"}})").status, 200);
  ASSERT_EQ(Root("PUT", "secret/data/life", R"({"data":{"v":"2"}})").status, 200);
  EXPECT_EQ(Root("DELETE", "secret/data/life").status, 204);
  Reply deleted = Root("GET", "secret/data/life");
  EXPECT_EQ(deleted.status, 404);
  json::value d = Parse(deleted.body);
  EXPECT_TRUE(d.at("data").at("data").is_null());
  EXPECT_NE(d.at("data").at("metadata").at("deletion_time"), "");
  EXPECT_EQ(Root("PUT", "secret/undelete/life", R"({"versions":[2]})").status, 204);
  EXPECT_EQ(Root("GET", "secret/data/life").status, 200);
  EXPECT_EQ(Root("PUT", "secret/delete/life", R"({"versions":[1]})").status, 204);
  EXPECT_EQ(Root("GET", "secret/data/life?version=1").status, 404);
  EXPECT_EQ(Root("PUT", "secret/destroy/life", R"({"versions":[2]})").status, 204);
  Reply destroyed = Root("GET", "secret/data/life?version=2");
  EXPECT_EQ(destroyed.status, 404);
  EXPECT_EQ(Parse(destroyed.body).at("data").at("metadata").at("destroyed"), true);
  Reply empty = Root("PUT", "secret/destroy/life", R"({"versions":[]})");
  EXPECT_EQ(empty.status, 400);
  EXPECT_EQ(Errors(empty), std::vector<std::string>{"no version number provided"});
}

TEST_F(ApiTest, MetadataAndClassification) {
  ASSERT_EQ(Root("PUT", "secret/data/meta", R"({"data":{"v":"1"}})").status, 200);
  ASSERT_EQ(Root("PUT", "secret/metadata/meta",
                 R"({"max_versions":3,"custom_metadata":{"owner":"team-a","tier":"1"},)"
                 R"("classification":{"owner":"team-a","max_cache_age":"5m","outage_behavior":"serve-stale"}})")
                .status,
            204);
  Reply r = Root("GET", "secret/metadata/meta");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value m = Parse(r.body).at("data");
  EXPECT_EQ(m.at("max_versions"), 3);
  EXPECT_EQ(m.at("current_version"), 1);
  EXPECT_EQ(m.at("custom_metadata").at("tier"), "1");
  EXPECT_TRUE(m.at("versions").as_object().contains("1"));
  EXPECT_EQ(m.at("stages").at("current"), 1);
  EXPECT_EQ(m.at("classification").at("outage_behavior"), "serve-stale");
  EXPECT_EQ(m.at("classification").at("max_cache_age"), "5m");

  Reply wrong_ct = Root("PATCH", "secret/metadata/meta", R"({"custom_metadata":{"tier":null}})");
  EXPECT_EQ(wrong_ct.status, 415);
  ASSERT_EQ(Root("PATCH", "secret/metadata/meta", R"({"custom_metadata":{"tier":null}})",
                 "application/merge-patch+json")
                .status,
            204);
  m = Parse(Root("GET", "secret/metadata/meta").body).at("data");
  EXPECT_FALSE(m.at("custom_metadata").as_object().contains("tier"));
  EXPECT_EQ(m.at("custom_metadata").at("owner"), "team-a");
  Reply bad = Root("PUT", "secret/metadata/meta", R"({"classification":{"outage_behavior":"maybe"}})");
  EXPECT_EQ(bad.status, 400);

  EXPECT_EQ(Root("DELETE", "secret/metadata/meta").status, 204);
  EXPECT_EQ(Root("GET", "secret/metadata/meta").status, 404);
  EXPECT_EQ(Root("GET", "secret/data/meta").status, 404);
}

TEST_F(ApiTest, ListBothFormsWithPagination) {
  for (const char* p : {"list/a", "list/b", "list/c", "list/sub/x"}) {
    ASSERT_EQ(Root("PUT", std::string("secret/data/") + p, R"({"data":{"v":"1"}})").status, 200);
  }
  Reply l = Root("LIST", "secret/metadata/list");
  ASSERT_EQ(l.status, 200) << l.body;
  EXPECT_EQ(Parse(l.body).at("data").at("keys"), Parse(R"(["a","b","c","sub/"])"));
  Reply g = Root("GET", "secret/metadata/list/?list=true");
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(Parse(g.body).at("data").at("keys"), Parse(R"(["a","b","c","sub/"])"));
  Reply page = Root("LIST", "secret/metadata/list?after=a&limit=2");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(Parse(page.body).at("data").at("keys"), Parse(R"(["b","c"])"));
  EXPECT_EQ(Root("LIST", "secret/metadata/nothing-here").status, 404);
}

TEST_F(ApiTest, Subkeys) {
  ASSERT_EQ(Root("PUT", "secret/data/nested", R"({"data":{"a":"1","b":{"c":"2","d":{"e":"3"}}}})").status, 200);
  Reply r = Root("GET", "secret/subkeys/nested");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r.body).at("data").at("subkeys"), Parse(R"({"a":null,"b":{"c":null,"d":{"e":null}}})"));
  Reply d1 = Root("GET", "secret/subkeys/nested?depth=1");
  EXPECT_EQ(Parse(d1.body).at("data").at("subkeys"), Parse(R"({"a":null,"b":null})"));
}

TEST_F(ApiTest, KvConfig) {
  ASSERT_EQ(Root("PUT", "secret/config", R"({"max_versions":5,"delete_version_after":"1h"})").status, 204);
  Reply r = Root("GET", "secret/config");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Parse(r.body).at("data").at("max_versions"), 5);
  EXPECT_EQ(Parse(r.body).at("data").at("delete_version_after"), "1h");
  ASSERT_EQ(Root("PUT", "secret/config", R"({"max_versions":0,"delete_version_after":"0s"})").status, 204);
}

TEST_F(ApiTest, MountsAndUiMounts) {
  Reply ui = Root("GET", "sys/internal/ui/mounts/secret/app/db");
  ASSERT_EQ(ui.status, 200) << ui.body;
  json::value d = Parse(ui.body).at("data");
  EXPECT_EQ(d.at("path"), "secret/");
  EXPECT_EQ(d.at("type"), "kv");
  EXPECT_EQ(d.at("options").at("version"), "2");

  ASSERT_EQ(Root("PUT", "sys/mounts/team-kv", R"({"type":"kv-v2"})").status, 204);
  EXPECT_EQ(Root("PUT", "sys/mounts/team-kv", R"({"type":"kv-v2"})").status, 400);
  Reply v1 = Root("PUT", "sys/mounts/old-kv", R"({"type":"kv","options":{"version":"1"}})");
  EXPECT_EQ(v1.status, 400);
  Reply mounts = Root("GET", "sys/mounts");
  ASSERT_EQ(mounts.status, 200);
  json::value m = Parse(mounts.body);
  EXPECT_TRUE(m.at("data").as_object().contains("team-kv/"));
  EXPECT_TRUE(m.as_object().contains("secret/"));  // sys responses copy data to the top level
  ASSERT_EQ(Root("PUT", "team-kv/data/x", R"({"data":{"v":"1"}})").status, 200);
  EXPECT_EQ(Root("DELETE", "sys/mounts/team-kv").status, 204);
  EXPECT_EQ(Root("GET", "team-kv/data/x").status, 404);
  // A fresh mount at the same path starts empty.
  ASSERT_EQ(Root("PUT", "sys/mounts/team-kv", R"({"type":"kv","options":{"version":"2"}})").status, 204);
  EXPECT_EQ(Root("GET", "team-kv/data/x").status, 404);
}

TEST_F(ApiTest, MissingAndUnknownTokensAreDenied) {
  Reply none = Call(*client_, "GET", "secret/data/app/db", "");
  EXPECT_EQ(none.status, 403);
  EXPECT_EQ(Errors(none), std::vector<std::string>{"permission denied"});
  EXPECT_EQ(Call(*client_, "GET", "secret/data/app/db", "hvs.not-a-token").status, 403);
}

TEST_F(ApiTest, TokenLifecycle) {
  Reply created = Root("PUT", "auth/token/create",
                       R"({"policies":["default"],"ttl":"1h","display_name":"app","meta":{"team":"a"}})");
  ASSERT_EQ(created.status, 200) << created.body;
  json::value a = Parse(created.body).at("auth");
  std::string token(a.at("client_token").as_string());
  std::string accessor(a.at("accessor").as_string());
  EXPECT_EQ(a.at("lease_duration"), 3600);
  EXPECT_EQ(a.at("renewable"), true);
  EXPECT_EQ(a.at("policies"), Parse(R"(["default"])"));

  Reply self = Call(*client_, "GET", "auth/token/lookup-self", token);
  ASSERT_EQ(self.status, 200) << self.body;
  json::value d = Parse(self.body).at("data");
  EXPECT_EQ(std::string(d.at("id").as_string()), token);
  EXPECT_EQ(std::string(d.at("accessor").as_string()), accessor);
  EXPECT_EQ(d.at("display_name"), "token-app");
  EXPECT_EQ(d.at("meta").at("team"), "a");
  EXPECT_EQ(d.at("path"), "auth/token/create");
  // The default policy does not reach secrets.
  Reply denied = Call(*client_, "GET", "secret/data/app/db", token);
  EXPECT_EQ(denied.status, 403);

  Reply by_accessor = Root("PUT", "auth/token/lookup-accessor", R"({"accessor":")" + accessor + R"("})");
  ASSERT_EQ(by_accessor.status, 200);
  EXPECT_EQ(Parse(by_accessor.body).at("data").at("id"), "");
  Reply lookup = Root("PUT", "auth/token/lookup", R"({"token":")" + token + R"("})");
  ASSERT_EQ(lookup.status, 200);

  Reply renewed = Call(*client_, "PUT", "auth/token/renew-self", token, R"({"increment":"2h"})");
  ASSERT_EQ(renewed.status, 200) << renewed.body;
  EXPECT_GT(Parse(renewed.body).at("auth").at("lease_duration").as_int64(), 3600);

  EXPECT_EQ(Call(*client_, "PUT", "auth/token/revoke-self", token).status, 204);
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", token).status, 403);
}

TEST_F(ApiTest, RevokeCascadesAndAccessorRevocation) {
  Reply parent = Root("PUT", "auth/token/create", R"({"policies":["root"]})");
  ASSERT_EQ(parent.status, 200) << parent.body;
  std::string p(Parse(parent.body).at("auth").at("client_token").as_string());
  Reply child = Call(*client_, "PUT", "auth/token/create", p, R"({"policies":["default"]})");
  ASSERT_EQ(child.status, 200) << child.body;
  std::string c(Parse(child.body).at("auth").at("client_token").as_string());
  EXPECT_EQ(Root("PUT", "auth/token/revoke", R"({"token":")" + p + R"("})").status, 204);
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", c).status, 403);

  Reply other = Root("PUT", "auth/token/create", R"({})");
  std::string t(Parse(other.body).at("auth").at("client_token").as_string());
  std::string acc(Parse(other.body).at("auth").at("accessor").as_string());
  EXPECT_EQ(Root("PUT", "auth/token/revoke-accessor", R"({"accessor":")" + acc + R"("})").status, 204);
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", t).status, 403);
}

TEST_F(ApiTest, UseLimitedToken) {
  Reply created = Root("PUT", "auth/token/create", R"({"policies":["root"],"num_uses":2})");
  ASSERT_EQ(created.status, 200);
  std::string t(Parse(created.body).at("auth").at("client_token").as_string());
  EXPECT_EQ(Call(*client_, "GET", "sys/mounts", t).status, 200);
  EXPECT_EQ(Call(*client_, "GET", "sys/mounts", t).status, 200);
  EXPECT_EQ(Call(*client_, "GET", "sys/mounts", t).status, 403);
}

TEST_F(ApiTest, NonRootCannotSealOrRotate) {
  Reply created = Root("PUT", "auth/token/create", R"({"policies":["default"]})");
  std::string t(Parse(created.body).at("auth").at("client_token").as_string());
  EXPECT_EQ(Call(*client_, "PUT", "sys/seal", t).status, 403);
  EXPECT_EQ(Call(*client_, "PUT", "sys/rotate", t).status, 403);
}

TEST_F(ApiTest, RotateKeepsOldDataReadable) {
  ASSERT_EQ(Root("PUT", "secret/data/before-rotate", R"({"data":{"v":"old"}})").status, 200);
  Reply before = Root("GET", "sys/key-status");
  ASSERT_EQ(before.status, 200) << before.body;
  int64_t term = Parse(before.body).at("data").at("term").as_int64();
  ASSERT_EQ(Root("PUT", "sys/rotate").status, 204);
  EXPECT_EQ(Parse(Root("GET", "sys/key-status").body).at("data").at("term").as_int64(), term + 1);
  Reply old = Root("GET", "secret/data/before-rotate");
  ASSERT_EQ(old.status, 200);
  EXPECT_EQ(Parse(old.body).at("data").at("data").at("v"), "old");
}

TEST_F(ApiTest, OversizedBodyGets413) {
  std::string big(33 * 1024 * 1024, 'x');
  Reply r = Root("PUT", "secret/data/huge", R"({"data":{"v":")" + big + R"("}})");
  EXPECT_EQ(r.status, 413) << r.body.substr(0, 200);
  auto fresh = server_->Client();
  EXPECT_EQ(Call(*fresh, "GET", "sys/health", "").status, 200);
}

TEST_F(ApiTest, CurlSpeaksToWard) {
  std::string base = "curl -sS --cacert " + ShellQuote(server_->ca_cert()) + " -H " +
                     ShellQuote("X-Vault-Token: " + server_->root_token()) + " ";
  CommandResult put = RunCommand(base + "-X POST -d '{\"data\":{\"k\":\"from-curl\"}}' " +
                                 ShellQuote(server_->addr() + "/v1/secret/data/curl"));
  ASSERT_EQ(put.exit_code, 0) << put.output;
  CommandResult get = RunCommand(base + ShellQuote(server_->addr() + "/v1/secret/data/curl"));
  ASSERT_EQ(get.exit_code, 0) << get.output;
  EXPECT_EQ(Parse(get.output).at("data").at("data").at("k"), "from-curl");
  CommandResult list = RunCommand(base + "-X LIST " + ShellQuote(server_->addr() + "/v1/secret/metadata/"));
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("\"curl\""), std::string::npos) << list.output;
  CommandResult status = RunCommand("curl -s -o /dev/null -w '%{http_code}' --cacert " +
                                    ShellQuote(server_->ca_cert()) + " " +
                                    ShellQuote(server_->addr() + "/v1/secret/data/curl"));
  EXPECT_EQ(status.output, "403");
  // TLS 1.1 is refused.
  CommandResult old_tls = RunCommand("curl -sS --tlsv1.1 --tls-max 1.1 --cacert " +
                                     ShellQuote(server_->ca_cert()) + " " +
                                     ShellQuote(server_->addr() + "/v1/sys/health"));
  EXPECT_NE(old_tls.exit_code, 0) << old_tls.output;
}

TEST_F(ApiTest, NoSecretOrTokenInTheLog) {
  ASSERT_EQ(Root("PUT", "secret/data/logcheck", R"({"data":{"v":"log-canary-5f2a9c"}})").status, 200);
  ASSERT_EQ(Root("GET", "secret/data/logcheck").status, 200);
  std::string log = server_->Log();
  EXPECT_FALSE(log.empty());
  EXPECT_EQ(log.find("log-canary-5f2a9c"), std::string::npos);
  EXPECT_EQ(log.find(server_->root_token()), std::string::npos);
}

}  // namespace
}  // namespace ward::testing
