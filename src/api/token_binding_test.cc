// Token bound CIDRs on every request, and the revocation of an auth mount's tokens when it is
// disabled (including the login that races the disable), through VaultHandler::Handle. Core runs
// over a MemoryBackend with a fake clock.

#include <boost/json.hpp>
#include <memory>
#include <string>

#include "api/internal/login_guard.h"
#include "api/testing/dev_node.h"
#include "gtest/gtest.h"

namespace ward::api {
namespace {

namespace json = boost::json;
using testing::Body;

class TokenBindingTest : public testing::DevNodeTest {
 protected:
  // DevNodeTest::Call from the peer address `remote_address`.
  net::HttpResponse Call(const std::string& method, const std::string& path,
                         const std::string& token, const std::string& body = "",
                         const std::string& remote_address = "127.0.0.1") {
    net::HttpRequest request = Request(method, path, token, body);
    request.remote_address = remote_address;
    return Send(request);
  }

  // Enables AppRole at `mount` with role "web" (role JSON `role`), logs in from `from` and
  // returns the token ("" on failure).
  std::string Login(const std::string& mount, const std::string& role = R"({})",
                    const std::string& from = "127.0.0.1") {
    if (!core().State()->auth_mounts->Get(mount)) {
      EXPECT_EQ(Root("POST", "sys/auth/" + mount, R"({"type":"approle"})").status, 204);
    }
    EXPECT_EQ(Root("POST", "auth/" + mount + "/role/web", role).status, 204);
    json::value role_id = Body(Root("GET", "auth/" + mount + "/role/web/role-id"));
    json::value secret = Body(Root("POST", "auth/" + mount + "/role/web/secret-id"));
    json::object login{{"role_id", role_id.at("data").at("role_id")},
                       {"secret_id", secret.at("data").at("secret_id")}};
    net::HttpResponse r =
        Call("POST", "auth/" + mount + "/login", "", json::serialize(login), from);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "";
    return std::string(Body(r).at("auth").at("client_token").as_string());
  }

  int LookupSelf(const std::string& token, const std::string& from = "127.0.0.1") {
    return Call("GET", "auth/token/lookup-self", token, "", from).status;
  }
};

TEST_F(TokenBindingTest, BoundCidrsOfTheRoleHoldOnEveryRequest) {
  std::string token = Login("approle", R"({"token_bound_cidrs":["10.0.0.0/8","127.0.0.1"]})");
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(LookupSelf(token, "127.0.0.1"), 200);
  EXPECT_EQ(LookupSelf(token, "10.2.3.4"), 200);
  EXPECT_EQ(LookupSelf(token, "::ffff:10.2.3.4"), 200);
  net::HttpResponse refused = Call("GET", "auth/token/lookup-self", token, "", "192.0.2.7");
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(Body(refused).at("errors").at(0), "permission denied");
  // Every route, not just lookup-self.
  EXPECT_EQ(Call("GET", "secret/data/x", token, "", "192.0.2.7").status, 403);

  json::value self = Body(Call("GET", "auth/token/lookup-self", token));
  EXPECT_EQ(self.at("data").at("path"), "auth/approle/login");
}

TEST_F(TokenBindingTest, SecretIdTokenBoundCidrsNarrowTheRoles) {
  ASSERT_EQ(Root("POST", "sys/auth/approle", R"({"type":"approle"})").status, 204);
  ASSERT_EQ(
      Root("POST", "auth/approle/role/web", R"({"token_bound_cidrs":["127.0.0.0/8"]})").status,
      204);
  json::value role_id = Body(Root("GET", "auth/approle/role/web/role-id"));
  json::value secret = Body(
      Root("POST", "auth/approle/role/web/secret-id", R"({"token_bound_cidrs":["127.0.0.1/32"]})"));
  json::object login{{"role_id", role_id.at("data").at("role_id")},
                     {"secret_id", secret.at("data").at("secret_id")}};
  net::HttpResponse r = Call("POST", "auth/approle/login", "", json::serialize(login));
  ASSERT_EQ(r.status, 200) << r.body;
  std::string token(Body(r).at("auth").at("client_token").as_string());
  EXPECT_EQ(LookupSelf(token, "127.0.0.1"), 200);
  EXPECT_EQ(LookupSelf(token, "127.0.0.2"), 403);  // inside the role's, outside the secret-id's
}

TEST_F(TokenBindingTest, DisablingTheMountRevokesItsTokensAndTheirChildren) {
  ASSERT_EQ(
      Root("PUT", "sys/policies/acl/maker",
           R"({"policy":"path \"auth/token/create\" { capabilities = [\"create\", \"update\"] }"})")
          .status,
      204);
  std::string apps = Login("apps", R"({"token_policies":["maker"]})");
  std::string other = Login("other");
  ASSERT_FALSE(apps.empty());
  net::HttpResponse child = Call("POST", "auth/token/create", apps, R"({"policies":["maker"]})");
  ASSERT_EQ(child.status, 200) << child.body;
  std::string child_token(Body(child).at("auth").at("client_token").as_string());
  const size_t tokens_before = core().State()->tokens->Count();

  ASSERT_EQ(Root("DELETE", "sys/auth/apps").status, 204);
  EXPECT_EQ(LookupSelf(apps), 403);
  EXPECT_EQ(LookupSelf(child_token), 403);
  EXPECT_EQ(LookupSelf(other), 200);
  EXPECT_EQ(LookupSelf(root_), 200);
  EXPECT_EQ(core().State()->tokens->Count(), tokens_before - 2);
  // Nothing mounted there any more: a second disable revokes nothing and succeeds.
  EXPECT_EQ(Root("DELETE", "sys/auth/apps").status, 204);
  // The token store cannot be disabled.
  EXPECT_EQ(Root("DELETE", "sys/auth/token").status, 400);
  EXPECT_EQ(LookupSelf(root_), 200);
}

TEST_F(TokenBindingTest, LoginFinishingAfterItsMountWasDisabledRevokesItsToken) {
  ASSERT_EQ(Root("POST", "sys/auth/apps", R"({"type":"approle"})").status, 204);
  const UnsealedState& state = *core().State();
  std::optional<auth::AuthMountEntry> mount = state.auth_mounts->Get("apps");
  ASSERT_TRUE(mount.has_value());
  auto mint = [&]() {
    auth::CreateTokenRequest create;
    create.path = "auth/apps/login";
    absl::StatusOr<auth::IssuedToken> issued = state.tokens->CreateToken(nullptr, create);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return *std::move(issued);
  };

  // Still mounted: the token stands.
  auth::IssuedToken kept = mint();
  std::string kept_token = kept.token;
  EXPECT_FALSE(internal::RevokeIfUnmounted(state, *mount, kept, "auth/apps/login").has_value());
  EXPECT_EQ(LookupSelf(kept_token), 200);

  // Disabled between the credential check and the token: revoked, zeroed, 404.
  ASSERT_TRUE(state.auth_mounts->Disable("apps").ok());
  auth::IssuedToken late = mint();
  std::string late_token = late.token;
  std::optional<net::HttpResponse> gone =
      internal::RevokeIfUnmounted(state, *mount, late, "auth/apps/login");
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->status, 404);
  EXPECT_NE(late.token, late_token);
  EXPECT_EQ(LookupSelf(late_token), 403);

  // Re-enabled at the same path: another mount (new accessor), so still revoked.
  ASSERT_EQ(Root("POST", "sys/auth/apps", R"({"type":"approle"})").status, 204);
  auth::IssuedToken again = mint();
  std::string again_token = again.token;
  EXPECT_TRUE(internal::RevokeIfUnmounted(state, *mount, again, "auth/apps/login").has_value());
  EXPECT_EQ(LookupSelf(again_token), 403);
}

}  // namespace
}  // namespace ward::api
