// AppRole auth and sys/auth against a real `ward server --dev`, over HTTPS, with Ward's client and
// with curl.

#include <boost/json.hpp>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

std::string Str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : ""; }

class AppRoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<core::TempDir>();
    auto p = WardProcess::StartDev(dir_->Join("data"), {"--dev-root-token-id=approle-root"});
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = *std::move(p);
    client_ = server_->Client();
    ASSERT_NE(client_, nullptr);
  }

  Reply Root(const std::string& method, const std::string& path, const std::string& body = "") {
    return Call(*client_, method, path, server_->root_token(), body);
  }

  // Enables approle at `mount`, creates role `role` with policies dev and ops, and returns
  // {role_id, secret_id}.
  std::pair<std::string, std::string> SetUpRole(const std::string& mount, const std::string& role) {
    Reply enable = Root("POST", "sys/auth/" + mount, R"({"type":"approle","description":"apps"})");
    EXPECT_EQ(enable.status, 204) << enable.body;
    Reply create =
        Root("POST", "auth/" + mount + "/role/" + role,
             R"({"token_policies":["dev","ops"],"token_ttl":"20m","token_max_ttl":"1h"})");
    EXPECT_EQ(create.status, 204) << create.body;
    Reply role_id = Root("GET", "auth/" + mount + "/role/" + role + "/role-id");
    EXPECT_EQ(role_id.status, 200) << role_id.body;
    Reply secret = Root("POST", "auth/" + mount + "/role/" + role + "/secret-id",
                        R"({"metadata":"{\"team\":\"payments\"}"})");
    EXPECT_EQ(secret.status, 200) << secret.body;
    return {Str(Parse(role_id.body).at("data").at("role_id")),
            Str(Parse(secret.body).at("data").at("secret_id"))};
  }

  Reply Login(const std::string& mount, const std::string& role_id, const std::string& secret_id) {
    json::object body{{"role_id", role_id}, {"secret_id", secret_id}};
    return Call(*client_, "POST", "auth/" + mount + "/login", "", json::serialize(body));
  }

  std::unique_ptr<core::TempDir> dir_;
  std::unique_ptr<WardProcess> server_;
  std::unique_ptr<net::HttpClient> client_;
};

TEST_F(AppRoleTest, SysAuthListsTokenAndEnabledMounts) {
  Reply list = Root("GET", "sys/auth");
  ASSERT_EQ(list.status, 200) << list.body;
  json::object o = Parse(list.body).as_object();
  EXPECT_EQ(o.at("data").at("token/").at("type"), "token");
  EXPECT_EQ(o.at("token/").at("type"),
            "token");  // sys routes copy data to the top level
  ASSERT_EQ(Root("POST", "sys/auth/approle", R"({"type":"approle","description":"apps"})").status,
            204);
  Reply dup = Root("POST", "sys/auth/approle", R"({"type":"approle"})");
  EXPECT_EQ(dup.status, 400);
  ASSERT_FALSE(Errors(dup).empty());
  EXPECT_NE(Errors(dup)[0].find("path is already in use"), std::string::npos) << dup.body;
  EXPECT_EQ(Root("POST", "sys/auth/ldap", R"({"type":"ldap"})").status, 400);
  EXPECT_EQ(Root("POST", "sys/auth/x", R"({})").status, 400);
  list = Root("GET", "sys/auth");
  json::object data = Parse(list.body).at("data").as_object();
  ASSERT_TRUE(data.contains("approle/"));
  EXPECT_EQ(data.at("approle/").at("type"), "approle");
  EXPECT_EQ(data.at("approle/").at("description"), "apps");
  EXPECT_EQ(Str(data.at("approle/").at("accessor")).rfind("auth_approle_", 0), 0u);
  Reply one = Root("GET", "sys/auth/approle");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(Parse(one.body).at("data").at("type"), "approle");
  EXPECT_EQ(Root("DELETE", "sys/auth/token").status, 400);
  // Without a token, sys/auth is refused.
  EXPECT_EQ(Call(*client_, "GET", "sys/auth", "").status, 403);
}

TEST_F(AppRoleTest, RoleLifecycleAndShapes) {
  ASSERT_EQ(Root("POST", "sys/auth/approle", R"({"type":"approle"})").status, 204);
  ASSERT_EQ(
      Root(
          "POST", "auth/approle/role/web",
          R"({"policies":"dev,ops","secret_id_ttl":"10m","secret_id_num_uses":3,"token_num_uses":5})")
          .status,
      204);
  Reply read = Root("GET", "auth/approle/role/web");
  ASSERT_EQ(read.status, 200) << read.body;
  json::object role = Parse(read.body).at("data").as_object();
  EXPECT_EQ(role.at("bind_secret_id"), true);
  EXPECT_EQ(role.at("secret_id_ttl"), 600);
  EXPECT_EQ(role.at("secret_id_num_uses"), 3);
  EXPECT_EQ(role.at("token_num_uses"), 5);
  EXPECT_EQ(role.at("token_policies"), (json::array{"dev", "ops"}));
  EXPECT_EQ(role.at("token_type"), "default");

  Reply list = Root("LIST", "auth/approle/role");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(Parse(list.body).at("data").at("keys"), (json::array{"web"}));

  ASSERT_EQ(Root("POST", "auth/approle/role/web/role-id", R"({"role_id":"custom-role-id"})").status,
            204);
  EXPECT_EQ(Parse(Root("GET", "auth/approle/role/web/role-id").body).at("data").at("role_id"),
            "custom-role-id");

  Reply secret = Root("POST", "auth/approle/role/web/secret-id", R"({"num_uses":2,"ttl":"5m"})");
  ASSERT_EQ(secret.status, 200) << secret.body;
  json::object s = Parse(secret.body).at("data").as_object();
  EXPECT_EQ(s.at("secret_id_ttl"), 300);
  EXPECT_EQ(s.at("secret_id_num_uses"), 2);
  std::string secret_id = Str(s.at("secret_id"));
  std::string accessor = Str(s.at("secret_id_accessor"));
  EXPECT_EQ(secret_id.size(), 36u);

  Reply accessors = Root("LIST", "auth/approle/role/web/secret-id");
  ASSERT_EQ(accessors.status, 200) << accessors.body;
  EXPECT_EQ(Parse(accessors.body).at("data").at("keys"), (json::array{json::string(accessor)}));

  Reply lookup = Root("POST", "auth/approle/role/web/secret-id/lookup",
                      json::serialize(json::object{{"secret_id", secret_id}}));
  ASSERT_EQ(lookup.status, 200) << lookup.body;
  EXPECT_EQ(Parse(lookup.body).at("data").at("secret_id_accessor"), json::string(accessor));
  EXPECT_EQ(lookup.body.find(secret_id), std::string::npos);
  Reply by_accessor = Root("POST", "auth/approle/role/web/secret-id-accessor/lookup",
                           json::serialize(json::object{{"secret_id_accessor", accessor}}));
  ASSERT_EQ(by_accessor.status, 200) << by_accessor.body;
  EXPECT_EQ(Parse(by_accessor.body).at("data").at("secret_id_num_uses"), 2);

  ASSERT_EQ(Root("POST", "auth/approle/role/web/secret-id-accessor/destroy",
                 json::serialize(json::object{{"secret_id_accessor", accessor}}))
                .status,
            204);
  EXPECT_EQ(Root("POST", "auth/approle/role/web/secret-id-accessor/lookup",
                 json::serialize(json::object{{"secret_id_accessor", accessor}}))
                .status,
            404);
  EXPECT_EQ(Login("approle", "custom-role-id", secret_id).status, 400);

  EXPECT_EQ(Root("POST", "auth/approle/role/nope/secret-id", "{}").status, 400);
  ASSERT_EQ(Root("DELETE", "auth/approle/role/web").status, 204);
  EXPECT_EQ(Root("GET", "auth/approle/role/web").status, 404);
  EXPECT_EQ(Root("LIST", "auth/approle/role").status, 404);
}

TEST_F(AppRoleTest, LoginIssuesAWorkingTokenWithTheRolesPolicies) {
  auto [role_id, secret_id] = SetUpRole("approle", "web");
  ASSERT_FALSE(role_id.empty());
  ASSERT_FALSE(secret_id.empty());
  Reply login = Login("approle", role_id, secret_id);
  ASSERT_EQ(login.status, 200) << login.body;
  json::object o = Parse(login.body).as_object();
  EXPECT_TRUE(o.at("data").is_null());
  json::object auth = o.at("auth").as_object();
  for (const char* k :
       {"client_token", "accessor", "policies", "token_policies", "metadata", "lease_duration",
        "renewable", "entity_id", "token_type", "orphan", "mfa_requirement", "num_uses"}) {
    EXPECT_TRUE(auth.contains(k)) << k;
  }
  EXPECT_EQ(auth.at("policies"), (json::array{"default", "dev", "ops"}));
  EXPECT_EQ(auth.at("token_policies"), (json::array{"default", "dev", "ops"}));
  EXPECT_EQ(auth.at("metadata"), (json::object{{"role_name", "web"}, {"team", "payments"}}));
  EXPECT_EQ(auth.at("lease_duration"), 1200);
  EXPECT_EQ(auth.at("renewable"), true);
  EXPECT_EQ(auth.at("token_type"), "service");
  EXPECT_EQ(auth.at("orphan"), true);
  EXPECT_TRUE(auth.at("mfa_requirement").is_null());
  std::string token = Str(auth.at("client_token"));

  Reply self = Call(*client_, "GET", "auth/token/lookup-self", token);
  ASSERT_EQ(self.status, 200) << self.body;
  json::object data = Parse(self.body).at("data").as_object();
  EXPECT_EQ(data.at("policies"), (json::array{"default", "dev", "ops"}));
  EXPECT_EQ(data.at("path"), "auth/approle/login");
  EXPECT_EQ(data.at("display_name"), "approle");
  EXPECT_EQ(data.at("meta").at("role_name"), "web");

  // curl speaks the same protocol.
  CommandResult curl = RunCommand(
      "curl -sS --cacert " + ShellQuote(server_->ca_cert()) + " -X POST -d " +
      ShellQuote(json::serialize(json::object{{"role_id", role_id}, {"secret_id", secret_id}})) +
      " " + ShellQuote(server_->addr() + "/v1/auth/approle/login"));
  ASSERT_EQ(curl.exit_code, 0) << curl.output;
  std::string curl_token = Str(Parse(curl.output).at("auth").at("client_token"));
  EXPECT_FALSE(curl_token.empty()) << curl.output;
  EXPECT_NE(curl_token, token);
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", curl_token).status, 200);

  // Neither the secret-id nor the token reaches the log.
  std::string log = server_->Log();
  EXPECT_EQ(log.find(secret_id), std::string::npos);
  EXPECT_EQ(log.find(token), std::string::npos);
}

TEST_F(AppRoleTest, WrongCredentialsGet400WithoutSayingWhich) {
  auto [role_id, secret_id] = SetUpRole("approle", "web");
  Reply wrong_secret = Login("approle", role_id, "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(wrong_secret.status, 400);
  EXPECT_EQ(Errors(wrong_secret), (std::vector<std::string>{"invalid role or secret ID"}));
  Reply wrong_role = Login("approle", "not-a-role-id", secret_id);
  EXPECT_EQ(wrong_role.status, 400);
  EXPECT_EQ(Errors(wrong_role), (std::vector<std::string>{"invalid role or secret ID"}));
  Reply missing = Call(*client_, "POST", "auth/approle/login", "", R"({"secret_id":"x"})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(Errors(missing), (std::vector<std::string>{"missing role_id"}));
  EXPECT_EQ(Login("approle", role_id, secret_id).status, 200);
  EXPECT_EQ(Call(*client_, "GET", "auth/approle/login", "").status, 405);
}

TEST_F(AppRoleTest, RepeatedFailuresAreRateLimited) {
  auto [role_id, secret_id] = SetUpRole("approle", "web");
  int first_429 = -1;
  for (int i = 0; i < 12 && first_429 < 0; ++i) {
    Reply r = Login("approle", role_id, "wrong-secret");
    if (r.status == 429)
      first_429 = i;
    else
      EXPECT_EQ(r.status, 400) << r.body;
  }
  // A burst of 10 failures, then refused (11 only if the 10 took over 6 s and a unit refilled).
  EXPECT_GE(first_429, 10);
  ASSERT_GE(first_429, 0) << "never rate limited";
  auto r =
      client_->Send("POST", "/v1/auth/approle/login", {{"Content-Type", "application/json"}},
                    json::serialize(json::object{{"role_id", role_id}, {"secret_id", secret_id}}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status,
            429);  // even the right secret waits: the limiter answers first
  EXPECT_NE(r->body.find("too many failed login attempts"), std::string::npos) << r->body;
  std::string retry_after(r->Header("retry-after"));
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  EXPECT_LE(std::stoi(retry_after), 6);
  // Token-authenticated routes are unaffected.
  EXPECT_EQ(Root("GET", "auth/approle/role/web").status, 200);
}

TEST_F(AppRoleTest, DisablingTheMountEndsLogins) {
  auto [role_id, secret_id] = SetUpRole("apps", "web");
  ASSERT_EQ(Login("apps", role_id, secret_id).status, 200);
  ASSERT_EQ(Root("DELETE", "sys/auth/apps").status, 204);
  Reply after = Login("apps", role_id, secret_id);
  EXPECT_EQ(after.status, 404) << after.body;
  EXPECT_EQ(Root("GET", "auth/apps/role/web").status, 404);
  // Re-enabled, the mount is empty: old credentials stay dead.
  ASSERT_EQ(Root("POST", "sys/auth/apps", R"({"type":"approle"})").status, 204);
  EXPECT_EQ(Login("apps", role_id, secret_id).status, 400);
  EXPECT_EQ(Root("LIST", "auth/apps/role").status, 404);
}

TEST_F(AppRoleTest, RolesAndSecretIdsSurviveARestart) {
  auto [role_id, secret_id] = SetUpRole("approle", "web");
  std::string data_dir = dir_->Join("data");
  ASSERT_EQ(server_->Terminate(), 0);
  server_.reset();
  auto p = WardProcess::StartDev(data_dir, {"--dev-root-token-id=approle-root"});
  ASSERT_TRUE(p.ok()) << p.status();
  server_ = *std::move(p);
  client_ = server_->Client();
  Reply login = Login("approle", role_id, secret_id);
  EXPECT_EQ(login.status, 200) << login.body;
}

}  // namespace
}  // namespace ward::testing
