// ACL policies against a real `ward server --dev`: policy routes, enforcement on KV v2 routes,
// immediate effect of policy changes on existing tokens, capabilities, sudo, built-ins.

#include <boost/json.hpp>

#include "core/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/shared_dev_server.h"

namespace ward::testing {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

std::string Quote(const std::string& s) { return json::serialize(json::value(s)); }

class PolicyTest : public SharedDevServerTest {
 protected:
  static void SetUpTestSuite() { StartSuiteServer("root-for-policy-tests"); }

  Reply As(const std::string& token, const std::string& method, const std::string& path,
           const std::string& body = "") {
    return Call(*client_, method, path, token, body);
  }

  // Writes policy `name` with `text` through sys/policies/acl and expects 204.
  void WritePolicy(const std::string& name, const std::string& text) {
    Reply r = Root("PUT", "sys/policies/acl/" + name, "{\"policy\":" + Quote(text) + "}");
    ASSERT_EQ(r.status, 204) << r.body;
  }

  // Creates a token with `policies` (a JSON array) and returns it.
  std::string TokenWith(const std::string& policies) {
    Reply r = Root("PUT", "auth/token/create", R"({"ttl":"1h","policies":)" + policies + "}");
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "";
    return std::string(Parse(r.body).at("auth").at("client_token").as_string());
  }

};

TEST_F(PolicyTest, PolicyGovernsKvAccessAndChangesApplyToExistingTokens) {
  WritePolicy("app", R"(
# The app may create and read its secrets, but not overwrite them.
path "secret/data/app/*" {
  capabilities = ["create", "read"]
}
path "secret/metadata/app/*" { capabilities = ["list"] }
path "secret/data/app/locked" { capabilities = ["deny"] }
)");
  ASSERT_EQ(Root("PUT", "secret/data/app/existing", R"({"data":{"v":"1"}})").status, 200);
  ASSERT_EQ(Root("PUT", "secret/data/app/locked", R"({"data":{"v":"1"}})").status, 200);
  ASSERT_EQ(Root("PUT", "secret/data/other", R"({"data":{"v":"1"}})").status, 200);
  std::string t = TokenWith(R"(["app"])");

  EXPECT_EQ(As(t, "GET", "secret/data/app/existing").status, 200);
  // create: allowed for a new secret; update (the secret exists) is not granted.
  EXPECT_EQ(As(t, "PUT", "secret/data/app/new", R"({"data":{"v":"1"}})").status, 200);
  EXPECT_EQ(As(t, "PUT", "secret/data/app/new", R"({"data":{"v":"2"}})").status, 403);
  EXPECT_EQ(As(t, "PUT", "secret/data/app/existing", R"({"data":{"v":"2"}})").status, 403);
  Reply other = As(t, "GET", "secret/data/other");
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(Parse(other.body), Parse(R"({"errors":["permission denied"]})"));
  EXPECT_EQ(As(t, "GET", "secret/data/app/locked").status, 403);
  EXPECT_EQ(As(t, "DELETE", "secret/data/app/existing").status, 403);
  EXPECT_EQ(As(t, "GET", "secret/metadata/app/existing").status, 403);
  Reply list = As(t, "LIST", "secret/metadata/app");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(Parse(list.body).at("data").at("keys"), Parse(R"(["existing","locked","new"])"));

  // Change the policy: the same token gains update and loses read at once.
  WritePolicy("app", R"(path "secret/data/app/*" { capabilities = ["create", "update"] })");
  EXPECT_EQ(As(t, "PUT", "secret/data/app/existing", R"({"data":{"v":"3"}})").status, 200);
  EXPECT_EQ(As(t, "GET", "secret/data/app/existing").status, 403);
  EXPECT_EQ(As(t, "LIST", "secret/metadata/app").status, 403);

  // Delete it: the token keeps the name but the name grants nothing.
  EXPECT_EQ(Root("DELETE", "sys/policies/acl/app").status, 204);
  EXPECT_EQ(As(t, "PUT", "secret/data/app/existing", R"({"data":{"v":"4"}})").status, 403);
  // The default policy still lets it look itself up.
  EXPECT_EQ(As(t, "GET", "auth/token/lookup-self").status, 200);
}

TEST_F(PolicyTest, EachKvV2RouteIsItsOwnPolicyPath) {
  WritePolicy("kvroutes", R"(
path "secret/data/routes/*"     { capabilities = ["read", "create", "update", "patch"] }
path "secret/delete/routes/*"   { capabilities = ["update"] }
path "secret/undelete/routes/*" { capabilities = ["update"] }
path "secret/subkeys/routes/*"  { capabilities = ["read"] }
)");
  std::string t = TokenWith(R"(["kvroutes"])");
  ASSERT_EQ(As(t, "PUT", "secret/data/routes/a", R"({"data":{"v":{"x":"1"}}})").status, 200);
  Reply patched = Call(*client_, "PATCH", "secret/data/routes/a", t, R"({"data":{"w":"2"}})",
                       "application/merge-patch+json");
  EXPECT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(As(t, "GET", "secret/subkeys/routes/a").status, 200);
  EXPECT_EQ(As(t, "PUT", "secret/delete/routes/a", R"({"versions":[1]})").status, 204);
  EXPECT_EQ(As(t, "PUT", "secret/undelete/routes/a", R"({"versions":[1]})").status, 204);
  EXPECT_EQ(As(t, "PUT", "secret/destroy/routes/a", R"({"versions":[1]})").status, 403);
  EXPECT_EQ(As(t, "GET", "secret/metadata/routes/a").status, 403);
  EXPECT_EQ(As(t, "DELETE", "secret/metadata/routes/a").status, 403);
  EXPECT_EQ(As(t, "DELETE", "secret/data/routes/a").status, 403);
}

TEST_F(PolicyTest, PolicyRoutesReadListAndLegacyForms) {
  const std::string text = "path \"secret/data/r/*\" {\n  capabilities = [\"read\"]\n}\n";
  WritePolicy("Reader", text);  // names are lower-cased
  Reply got = Root("GET", "sys/policies/acl/reader");
  ASSERT_EQ(got.status, 200) << got.body;
  json::value g = Parse(got.body);
  EXPECT_EQ(g.at("data").at("name"), "reader");
  EXPECT_EQ(g.at("data").at("policy"), json::value(text));
  EXPECT_EQ(g.at("policy"), json::value(text));  // sys responses copy data to the top level

  Reply list = Root("LIST", "sys/policies/acl");
  ASSERT_EQ(list.status, 200) << list.body;
  json::array keys = Parse(list.body).at("data").at("keys").as_array();
  EXPECT_NE(std::find(keys.begin(), keys.end(), json::value("reader")), keys.end());
  EXPECT_NE(std::find(keys.begin(), keys.end(), json::value("default")), keys.end());
  EXPECT_EQ(keys.back(), "root");
  EXPECT_EQ(Root("GET", "sys/policies/acl?list=true").status, 200);
  EXPECT_EQ(Root("GET", "sys/policies/acl").status, 405);

  Reply legacy_list = Root("GET", "sys/policy");
  ASSERT_EQ(legacy_list.status, 200) << legacy_list.body;
  json::value l = Parse(legacy_list.body);
  EXPECT_EQ(l.at("policies"), l.at("keys"));
  Reply legacy = Root("GET", "sys/policy/reader");
  ASSERT_EQ(legacy.status, 200);
  EXPECT_EQ(Parse(legacy.body).at("rules"), json::value(text));

  // sys/policy/<name> takes "rules" (with Vault's deprecation warning) or "policy".
  Reply rules = Root("PUT", "sys/policy/legacy", R"({"rules":"path \"a\" { policy = \"read\" }"})");
  ASSERT_EQ(rules.status, 200) << rules.body;
  EXPECT_EQ(Parse(rules.body).at("warnings"),
            Parse(R"(["'rules' is deprecated, please use 'policy' instead"])"));
  EXPECT_EQ(Root("PUT", "sys/policy/legacy", R"({"policy":"path \"a\" {}"})").status, 204);
  EXPECT_EQ(Root("DELETE", "sys/policy/legacy").status, 204);
  EXPECT_EQ(Root("GET", "sys/policy/legacy").status, 404);

  // JSON policy text, and base64-encoded text (Vault accepts both).
  WritePolicy("jsonform", R"({"path":{"secret/data/j/*":{"capabilities":["read"]}}})");
  // base64 of: path "b" { capabilities = ["list"] }
  EXPECT_EQ(Root("PUT", "sys/policies/acl/b64",
                 R"({"policy":"cGF0aCAiYiIgeyBjYXBhYmlsaXRpZXMgPSBbImxpc3QiXSB9"})")
                .status,
            204);
  EXPECT_EQ(Parse(Root("GET", "sys/policies/acl/b64").body).at("data").at("policy"),
            R"(path "b" { capabilities = ["list"] })");

  // Errors.
  Reply bad = Root("PUT", "sys/policies/acl/bad",
                   R"({"policy":"path \"a\" {\n  capabilities = [\"read\"]\n}\npath \"b\" {\n  capabilities [\"read\"]\n}"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("policy parse error at line 5, column 16: expected '='"));
  Reply unknown = Root("PUT", "sys/policies/acl/bad", R"({"policy":"path \"a\" { capabilities = [\"fly\"] }"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr(R"(invalid capability \"fly\")"));
  Reply empty = Root("PUT", "sys/policies/acl/bad", R"({})");
  EXPECT_EQ(empty.status, 400);
  EXPECT_THAT(empty.body, HasSubstr("'policy' parameter not supplied or empty"));
  EXPECT_EQ(Root("GET", "sys/policies/acl/bad").status, 404);
}

TEST_F(PolicyTest, BuiltInPolicies) {
  Reply root = Root("GET", "sys/policies/acl/root");
  ASSERT_EQ(root.status, 200) << root.body;
  EXPECT_EQ(Parse(root.body).at("data").at("policy"), "");
  Reply del_root = Root("DELETE", "sys/policies/acl/root");
  EXPECT_EQ(del_root.status, 400);
  EXPECT_EQ(Parse(del_root.body), Parse(R"({"errors":["cannot delete root policy"]})"));
  Reply put_root = Root("PUT", "sys/policy/root", R"({"policy":"path \"a\" {}"})");
  EXPECT_EQ(put_root.status, 400);
  EXPECT_EQ(Parse(put_root.body), Parse(R"({"errors":["cannot update root policy"]})"));
  Reply del_default = Root("DELETE", "sys/policy/default");
  EXPECT_EQ(del_default.status, 400);
  EXPECT_EQ(Parse(del_default.body), Parse(R"({"errors":["cannot delete default policy"]})"));
  Reply def = Root("GET", "sys/policies/acl/default");
  ASSERT_EQ(def.status, 200);
  EXPECT_THAT(std::string(Parse(def.body).at("data").at("policy").as_string()),
              HasSubstr("path \"auth/token/lookup-self\""));

  // A default-only token can look itself up, renew and use capabilities-self, nothing else.
  std::string t = TokenWith(R"(["default"])");
  EXPECT_EQ(As(t, "GET", "auth/token/lookup-self").status, 200);
  EXPECT_EQ(As(t, "PUT", "auth/token/renew-self", "{}").status, 200);
  EXPECT_EQ(As(t, "GET", "sys/policies/acl/default").status, 403);
  EXPECT_EQ(As(t, "GET", "sys/mounts").status, 403);
}

TEST_F(PolicyTest, CapabilitiesSelfAndCapabilities) {
  WritePolicy("caps", R"(
path "secret/data/caps/*" { capabilities = ["update", "read", "create"] }
path "secret/data/caps/no" { capabilities = ["deny"] }
)");
  std::string t = TokenWith(R"(["caps"])");
  Reply r = As(t, "PUT", "sys/capabilities-self",
               R"({"paths":["secret/data/caps/x","secret/data/caps/no","elsewhere"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value v = Parse(r.body);
  EXPECT_EQ(v.at("data").at("secret/data/caps/x"), Parse(R"(["create","read","update"])"));
  EXPECT_EQ(v.at("data").at("secret/data/caps/no"), Parse(R"(["deny"])"));
  EXPECT_EQ(v.at("data").at("elsewhere"), Parse(R"(["deny"])"));
  EXPECT_FALSE(v.at("data").as_object().contains("capabilities"));  // only for one path
  EXPECT_EQ(v.at("secret/data/caps/x"), Parse(R"(["create","read","update"])"));

  Reply one = As(t, "PUT", "sys/capabilities-self", R"({"path":"secret/data/caps/x"})");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(Parse(one.body).at("capabilities"), Parse(R"(["create","read","update"])"));

  Reply root_self = Root("PUT", "sys/capabilities-self", R"({"paths":["anything"]})");
  ASSERT_EQ(root_self.status, 200);
  EXPECT_EQ(Parse(root_self.body).at("capabilities"), Parse(R"(["root"])"));

  Reply other = Root("PUT", "sys/capabilities",
                     "{\"token\":" + Quote(t) + R"(,"paths":["secret/data/caps/y"]})");
  ASSERT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(Parse(other.body).at("capabilities"), Parse(R"(["create","read","update"])"));
  EXPECT_EQ(Root("PUT", "sys/capabilities", R"({"token":"hvs.bogus","paths":["a"]})").status, 400);
  EXPECT_EQ(As(t, "PUT", "sys/capabilities-self", "{}").status, 400);
  // The default policy does not grant sys/capabilities (about other tokens).
  EXPECT_EQ(As(t, "PUT", "sys/capabilities", "{\"token\":" + Quote(t) + R"(,"paths":["a"]})").status,
            403);
}

TEST_F(PolicyTest, SudoGuardsRootProtectedPathsAndTokenCreateOptions) {
  WritePolicy("rotator", R"(path "sys/rotate" { capabilities = ["update"] })");
  WritePolicy("rotator-sudo", R"(path "sys/rotate" { capabilities = ["update", "sudo"] })");
  EXPECT_EQ(As(TokenWith(R"(["rotator"])"), "PUT", "sys/rotate").status, 403);
  EXPECT_EQ(As(TokenWith(R"(["rotator-sudo"])"), "PUT", "sys/rotate").status, 204);

  // auth/token/create: without sudo, child policies must be a subset of the caller's; with
  // sudo on the route, any policies (but not root).
  WritePolicy("creator", R"(path "auth/token/create" { capabilities = ["update"] })");
  WritePolicy("creator-sudo", R"(path "auth/token/create" { capabilities = ["update", "sudo"] })");
  Reply no_sudo = As(TokenWith(R"(["creator"])"), "PUT", "auth/token/create",
                     R"({"policies":["rotator"]})");
  EXPECT_EQ(no_sudo.status, 400) << no_sudo.body;
  Reply with_sudo = As(TokenWith(R"(["creator-sudo"])"), "PUT", "auth/token/create",
                       R"({"policies":["rotator"]})");
  EXPECT_EQ(with_sudo.status, 200) << with_sudo.body;
}

TEST_F(PolicyTest, UiMountsAnswersForMountsTheTokenCanReach) {
  WritePolicy("ui", R"(path "secret/data/ui/x" { capabilities = ["read"] })");
  std::string t = TokenWith(R"(["ui"])");
  Reply ok = As(t, "GET", "sys/internal/ui/mounts/secret/ui/x");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Parse(ok.body).at("data").at("path"), "secret/");
  std::string d = TokenWith(R"(["default"])");
  Reply denied = As(d, "GET", "sys/internal/ui/mounts/secret/ui/x");
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(As(t, "GET", "sys/internal/ui/mounts/nomount/x").status, 403);
}

}  // namespace
}  // namespace ward::testing
