// Where and how long tokens from auth methods stay usable, on a real `ward server --dev`:
// token_bound_cidrs hold on every use (not only at login), and disabling an auth mount revokes
// every token it issued (docs/approle.md, docs/token-format.md).

#include <boost/json.hpp>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

std::string Str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : ""; }

class TokenBindingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<core::TempDir>();
    Start();
  }

  void Start() {
    auto p = WardProcess::StartDev(dir_->Join("data"), {"--dev-root-token-id=binding-root"});
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = *std::move(p);
    client_ = server_->Client();
    ASSERT_NE(client_, nullptr);
  }

  Reply Root(const std::string& method, const std::string& path, const std::string& body = "") {
    return Call(*client_, method, path, server_->root_token(), body);
  }

  // Enables AppRole at `mount` with role "web" (extra role parameters in `role_json`, an object
  // body without braces), logs in and returns the token.
  std::string LoginToken(const std::string& mount, const std::string& role_json = "") {
    Reply enable = Root("POST", "sys/auth/" + mount, R"({"type":"approle"})");
    EXPECT_EQ(enable.status, 204) << enable.body;
    std::string body = R"({"token_policies":["dev"])";
    if (!role_json.empty()) body += "," + role_json;
    body += "}";
    Reply role = Root("POST", "auth/" + mount + "/role/web", body);
    EXPECT_EQ(role.status, 204) << role.body;
    Reply role_id = Root("GET", "auth/" + mount + "/role/web/role-id");
    Reply secret = Root("POST", "auth/" + mount + "/role/web/secret-id");
    EXPECT_EQ(secret.status, 200) << secret.body;
    json::object login{{"role_id", Parse(role_id.body).at("data").at("role_id")},
                       {"secret_id", Parse(secret.body).at("data").at("secret_id")}};
    Reply r = Call(*client_, "POST", "auth/" + mount + "/login", "", json::serialize(login));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? Str(Parse(r.body).at("auth").at("client_token")) : "";
  }

  // GET auth/token/lookup-self with `token` through curl, from source address `source` (any
  // 127/8 address works on Linux loopback). Returns the HTTP status, or -1 if curl failed.
  int LookupSelfFrom(const std::string& source, const std::string& token) {
    CommandResult r = RunCommand(
        "curl -sS -o /dev/null -w '%{http_code}' --interface " + ShellQuote(source) + " --cacert " +
        ShellQuote(server_->ca_cert()) + " -H " + ShellQuote("X-Vault-Token: " + token) + " " +
        ShellQuote(server_->addr() + "/v1/auth/token/lookup-self"));
    if (r.exit_code != 0) {
      ADD_FAILURE() << r.output;
      return -1;
    }
    return std::stoi(r.output);
  }

  std::unique_ptr<core::TempDir> dir_;
  std::unique_ptr<WardProcess> server_;
  std::unique_ptr<net::HttpClient> client_;
};

TEST_F(TokenBindingTest, TokenBoundCidrsHoldOnEveryUseNotOnlyAtLogin) {
  std::string bound = LoginToken("approle", R"("token_bound_cidrs":["127.0.0.1/32"])");
  ASSERT_FALSE(bound.empty());
  Reply self = Call(*client_, "GET", "auth/token/lookup-self", bound);
  ASSERT_EQ(self.status, 200) << self.body;

  // The same token from another address of this host: refused as Vault refuses it.
  EXPECT_EQ(LookupSelfFrom("127.0.0.1", bound), 200);
  EXPECT_EQ(LookupSelfFrom("127.0.0.2", bound), 403);
  Reply via_client = Call(*client_, "GET", "auth/token/lookup-self", bound);
  EXPECT_EQ(via_client.status, 200) << via_client.body;

  // An unbound token works from anywhere.
  Reply created = Root("POST", "auth/token/create", R"({"policies":["dev"]})");
  ASSERT_EQ(created.status, 200) << created.body;
  std::string open = Str(Parse(created.body).at("auth").at("client_token"));
  EXPECT_EQ(LookupSelfFrom("127.0.0.2", open), 200);

  // The refusal does not drain the invalid-token limiter: the address can still use good tokens
  // after many refused requests.
  for (int i = 0; i < 15; ++i) ASSERT_EQ(LookupSelfFrom("127.0.0.3", bound), 403);
  EXPECT_EQ(LookupSelfFrom("127.0.0.3", open), 200);

  // Neither token reaches the log.
  std::string log = server_->Log();
  EXPECT_EQ(log.find(bound), std::string::npos);
  EXPECT_EQ(log.find(open), std::string::npos);
}

TEST_F(TokenBindingTest, DisablingAnAuthMountRevokesItsTokensForGood) {
  std::string apps = LoginToken("apps");
  std::string other = LoginToken("other");  // another AppRole mount: unaffected
  ASSERT_FALSE(apps.empty());
  ASSERT_FALSE(other.empty());
  Reply created = Root("POST", "auth/token/create", R"({"policies":["dev"]})");
  ASSERT_EQ(created.status, 200) << created.body;
  std::string plain = Str(Parse(created.body).at("auth").at("client_token"));
  ASSERT_EQ(Call(*client_, "GET", "auth/token/lookup-self", apps).status, 200);

  ASSERT_EQ(Root("DELETE", "sys/auth/apps").status, 204);
  Reply after = Call(*client_, "GET", "auth/token/lookup-self", apps);
  EXPECT_EQ(after.status, 403) << after.body;
  EXPECT_EQ(Errors(after), (std::vector<std::string>{"permission denied"}));
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", other).status, 200);
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", plain).status, 200);

  // Disabling a path where nothing is mounted is a no-op that revokes nothing.
  EXPECT_EQ(Root("DELETE", "sys/auth/oth").status, 204);
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", other).status, 200);

  // The revocation was committed: after a restart the token is still dead, the others live.
  ASSERT_EQ(server_->Terminate(), 0);
  server_.reset();
  Start();
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", apps).status, 403);
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", other).status, 200);
  EXPECT_EQ(Call(*client_, "GET", "auth/token/lookup-self", plain).status, 200);
}

}  // namespace
}  // namespace ward::testing
