// auth/cert (roles, login) and direct certificate identity through VaultHandler::Handle, with
// requests carrying a client certificate chain as the listener hands it over
// (net::HttpRequest::peer_certificates_der). Core runs over a MemoryBackend with a fake clock.

#include <openssl/bn.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "api/testing/dev_node.h"
#include "core/testing/temp_dir.h"
#include "crypto/openssl_handles.h"
#include "crypto/testing/test_pki.h"
#include "crypto/x509.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ward::api {
namespace {

namespace json = boost::json;
using testing::Body;
using testing::FirstError;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string DerOfPem(const std::string& pem) {
  absl::StatusOr<std::string> der = crypto::testing::CertificateDer(pem);
  EXPECT_TRUE(der.ok()) << der.status();
  return der.ok() ? *der : "";
}

std::vector<std::string> Strings(const json::value& v) {
  std::vector<std::string> out;
  for (const json::value& s : v.as_array()) out.emplace_back(s.as_string());
  return out;
}

// The decimal serial of a DER certificate.
std::string SerialOf(const std::string& der) {
  absl::StatusOr<crypto::X509Ptr> cert = crypto::testing::ParseCertificate(der);
  EXPECT_TRUE(cert.ok()) << cert.status();
  if (!cert.ok()) return "";
  crypto::BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert->get()), nullptr));
  char* dec = BN_bn2dec(bn.get());
  std::string out(dec);
  OPENSSL_free(dec);
  return out;
}

// A PEM CRL of `ca` revoking the leaves of `revoked` (DER chains, leaf first).
std::string MakeCrl(const crypto::PemKeyPair& ca,
                    const std::vector<std::vector<std::string>>& revoked, absl::Time now) {
  std::vector<std::string> leaves;
  for (const std::vector<std::string>& chain : revoked) leaves.push_back(chain.front());
  absl::StatusOr<std::string> crl = crypto::testing::MakeCrlPem(ca, leaves, now);
  EXPECT_TRUE(crl.ok()) << crl.status();
  return crl.ok() ? *crl : "";
}

class CertRoutesTest : public testing::DevNodeTest {
 protected:
  void SetUp() override {
    DevNodeTest::SetUp();
    if (HasFatalFailure()) return;
    auto ca = crypto::GenerateSelfSignedCa("Client CA", clock_.Now(), absl::Hours(240));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
    auto other = crypto::GenerateSelfSignedCa("Other CA", clock_.Now(), absl::Hours(240));
    ASSERT_TRUE(other.ok()) << other.status();
    other_ca_ = *std::move(other);
  }

  // A client chain (leaf only) issued by `ca` for `cn`.
  std::vector<std::string> Chain(const crypto::PemKeyPair& ca, const std::string& cn) {
    auto leaf = crypto::IssueServerCertificate(ca, cn, {cn + ".internal"}, {}, clock_.Now(),
                                               absl::Hours(24));
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    return leaf.ok() ? std::vector<std::string>{DerOfPem(leaf->cert_pem)}
                     : std::vector<std::string>{};
  }

  // DevNodeTest::Call presenting the client certificate chain `chain` (DER, leaf first, as the
  // listener hands it over) from the peer address `remote_address`.
  net::HttpResponse Call(const std::string& method, const std::string& path,
                         const std::string& token, const std::string& body = "",
                         std::vector<std::string> chain = {},
                         const std::string& remote_address = "127.0.0.1") {
    net::HttpRequest request = Request(method, path, token, body);
    request.remote_address = remote_address;
    request.peer_certificates_der = std::move(chain);
    return Send(request);
  }

  // Enables cert at `mount` and creates role `role` trusting `ca` with policy "web".
  void SetUpRole(const std::string& mount, const std::string& role, const crypto::PemKeyPair& ca,
                 json::object extra = {}) {
    net::HttpResponse enable = Root("POST", "sys/auth/" + mount, R"({"type":"cert"})");
    ASSERT_TRUE(enable.status == 204 || FirstError(enable).find("already in use") !=
                                            std::string::npos)
        << enable.body;
    extra["certificate"] = ca.cert_pem;
    if (!extra.contains("token_policies")) extra["token_policies"] = "web";
    net::HttpResponse write =
        Root("POST", "auth/" + mount + "/certs/" + role, json::serialize(extra));
    ASSERT_EQ(write.status, 204) << write.body;
  }

  void WritePolicy(const std::string& name, const std::string& hcl) {
    json::object body{{"policy", hcl}};
    ASSERT_EQ(Root("PUT", "sys/policies/acl/" + name, json::serialize(body)).status, 204);
  }

  crypto::PemKeyPair ca_, other_ca_;
};

TEST_F(CertRoutesTest, RoleWriteReadListDeleteWithVaultNames) {
  ASSERT_EQ(Root("POST", "sys/auth/cert", R"({"type":"cert","description":"mtls"})").status, 204);
  net::HttpResponse listed = Root("GET", "sys/auth");
  EXPECT_EQ(Body(listed).at("data").at("cert/").at("type"), "cert");
  EXPECT_EQ(Root("LIST", "auth/cert/certs").status, 404);

  json::object body{{"certificate", ca_.cert_pem},
                    {"allowed_common_names", "web-*, api-*"},
                    {"allowed_uri_sans", json::array{"spiffe://example.org/ns/*/sa/*"}},
                    {"policies", "legacy"},
                    {"token_policies", json::array{"web", "ops"}},
                    {"token_ttl", "20m"},
                    {"token_max_ttl", 3600}};
  net::HttpResponse write = Root("POST", "auth/cert/certs/web", json::serialize(body));
  ASSERT_EQ(write.status, 204) << write.body;
  net::HttpResponse read = Root("GET", "auth/cert/certs/web");
  ASSERT_EQ(read.status, 200) << read.body;
  const json::value data = Body(read).at("data");
  EXPECT_EQ(data.at("certificate"), ca_.cert_pem.c_str());
  EXPECT_THAT(Strings(data.at("allowed_common_names")), ElementsAre("web-*", "api-*"));
  EXPECT_THAT(Strings(data.at("allowed_uri_sans")), ElementsAre("spiffe://example.org/ns/*/sa/*"));
  EXPECT_THAT(Strings(data.at("allowed_dns_sans")), ElementsAre());
  EXPECT_THAT(Strings(data.at("token_policies")), ElementsAre("web", "ops"));
  EXPECT_THAT(Strings(data.at("policies")), ElementsAre("web", "ops"));
  EXPECT_EQ(data.at("token_ttl"), 1200);
  EXPECT_EQ(data.at("token_max_ttl"), 3600);
  EXPECT_EQ(data.at("token_type"), "default");
  EXPECT_EQ(data.at("display_name"), "web");
  EXPECT_EQ(Body(read).at("mount_type"), "cert");

  net::HttpResponse list = Root("LIST", "auth/cert/certs");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_THAT(Strings(Body(list).at("data").at("keys")), ElementsAre("web"));

  net::HttpResponse missing = Root("POST", "auth/cert/certs/other", R"({"display_name":"x"})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(FirstError(missing), "missing certificate");
  net::HttpResponse garbage = Root("POST", "auth/cert/certs/other", R"({"certificate":"nope"})");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(FirstError(garbage), "failed to parse certificate");
  EXPECT_EQ(Root("POST", "auth/cert/certs/other", R"({"certificate":["x"]})").status, 400);

  EXPECT_EQ(Root("DELETE", "auth/cert/certs/web").status, 204);
  EXPECT_EQ(Root("GET", "auth/cert/certs/web").status, 404);
  // Role routes need a token with a policy allowing them.
  EXPECT_EQ(Call("GET", "auth/cert/certs/web", "").status, 403);
}

TEST_F(CertRoutesTest, LoginIssuesATokenWithTheRolePoliciesAndVaultMetadata) {
  SetUpRole("cert", "web", ca_, json::object{{"token_ttl", "20m"}});
  std::vector<std::string> chain = Chain(ca_, "web-1");
  net::HttpResponse login = Call("POST", "auth/cert/login", "", "", chain);
  ASSERT_EQ(login.status, 200) << login.body;
  const json::value auth = Body(login).at("auth");
  EXPECT_THAT(Strings(auth.at("policies")), ElementsAre("default", "web"));
  EXPECT_EQ(auth.at("lease_duration"), 1200);
  EXPECT_EQ(auth.at("renewable"), true);
  EXPECT_EQ(auth.at("metadata").at("cert_name"), "web");
  EXPECT_EQ(auth.at("metadata").at("common_name"), "web-1");
  EXPECT_FALSE(auth.at("metadata").at("serial_number").as_string().empty());
  EXPECT_FALSE(auth.at("metadata").at("subject_key_id").as_string().empty());
  EXPECT_FALSE(auth.at("metadata").at("authority_key_id").as_string().empty());
  std::string token(auth.at("client_token").as_string());

  net::HttpResponse self = Call("GET", "auth/token/lookup-self", token);
  ASSERT_EQ(self.status, 200) << self.body;
  EXPECT_EQ(Body(self).at("data").at("display_name"), "cert-web");
  EXPECT_EQ(Body(self).at("data").at("path"), "auth/cert/login");

  // The name selects the role; a role that does not accept the chain refuses it.
  SetUpRole("cert", "other", other_ca_);
  EXPECT_EQ(Call("POST", "auth/cert/login", "", R"({"name":"web"})", chain).status, 200);
  net::HttpResponse wrong = Call("POST", "auth/cert/login", "", R"({"name":"other"})", chain);
  EXPECT_EQ(wrong.status, 400);
  EXPECT_EQ(FirstError(wrong), "invalid certificate or no client certificate supplied");
  EXPECT_EQ(Call("GET", "auth/cert/login", "", "", chain).status, 405);
}

TEST_F(CertRoutesTest, LoginFailuresUseVaultMessagesAndTheFailedLoginLimiter) {
  SetUpRole("cert", "web", ca_, json::object{{"allowed_common_names", "web-*"}});
  net::HttpResponse none = Call("POST", "auth/cert/login", "");
  EXPECT_EQ(none.status, 400);
  EXPECT_EQ(FirstError(none), "client certificate must be supplied");
  net::HttpResponse stranger = Call("POST", "auth/cert/login", "", "", Chain(other_ca_, "web-1"));
  EXPECT_EQ(stranger.status, 400);
  EXPECT_EQ(FirstError(stranger), "invalid certificate or no client certificate supplied");
  net::HttpResponse constrained = Call("POST", "auth/cert/login", "", "", Chain(ca_, "db-1"));
  EXPECT_EQ(constrained.status, 400);
  EXPECT_EQ(FirstError(constrained),
            "no chain matching all constraints could be found for this login certificate");
  // Ten failures in a row (the limiter's burst) block the address, valid certificates too.
  for (int i = 3; i < 10; ++i) Call("POST", "auth/cert/login", "", "", Chain(other_ca_, "x"));
  std::vector<std::string> good = Chain(ca_, "web-1");
  net::HttpResponse limited = Call("POST", "auth/cert/login", "", "", good);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_FALSE(limited.headers.empty());
  // Another address is not affected.
  EXPECT_EQ(Call("POST", "auth/cert/login", "", "", good, "10.0.0.9").status, 200);
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Call("POST", "auth/cert/login", "", "", good).status, 200);
}

TEST_F(CertRoutesTest, DirectIdentityAuthorisesWithTheRolePoliciesWithoutAToken) {
  WritePolicy("web", R"(path "secret/data/app" { capabilities = ["read"] })");
  ASSERT_EQ(Root("PUT", "secret/data/app", R"({"data":{"k":"v"}})").status, 200);
  ASSERT_EQ(Root("PUT", "secret/data/other", R"({"data":{"k":"v"}})").status, 200);
  SetUpRole("cert", "web", ca_);
  std::vector<std::string> chain = Chain(ca_, "web-1");

  net::HttpResponse read = Call("GET", "secret/data/app", "", "", chain);
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(Body(read).at("data").at("data").at("k"), "v");
  EXPECT_EQ(Call("GET", "secret/data/other", "", "", chain).status, 403);
  EXPECT_EQ(Call("PUT", "secret/data/app", "", R"({"data":{}})", chain).status, 403);
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", Chain(other_ca_, "web-1")).status, 403);
  EXPECT_EQ(Call("GET", "secret/data/app", "").status, 403);

  // lookup-self shows the identity; nothing is stored, so other token routes stay closed.
  net::HttpResponse self = Call("GET", "auth/token/lookup-self", "", "", chain);
  ASSERT_EQ(self.status, 200) << self.body;
  const json::value data = Body(self).at("data");
  EXPECT_EQ(data.at("display_name"), "cert-web");
  EXPECT_THAT(Strings(data.at("policies")), ElementsAre("default", "web"));
  EXPECT_EQ(data.at("meta").at("cert_name"), "web");
  EXPECT_EQ(data.at("id"), "");
  EXPECT_EQ(Call("POST", "auth/token/create", "", "{}", chain).status, 403);
  EXPECT_EQ(Call("POST", "auth/token/renew-self", "", "{}", chain).status, 403);
  EXPECT_EQ(core().State()->tokens->Count(), 1u);  // only the root token exists

  // A token wins over the certificate, even a bad token.
  EXPECT_EQ(Call("GET", "secret/data/other", root_, "", chain).status, 200);
  EXPECT_EQ(Call("GET", "secret/data/app", "not-a-token", "", chain).status, 403);

  // A role change takes effect at once (the match cache is emptied).
  ASSERT_EQ(Root("POST", "auth/cert/certs/web", R"({"allowed_common_names":"api-*"})").status,
            204);
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", chain).status, 403);
}

TEST_F(CertRoutesTest, DirectIdentityUsesTheFirstMatchingRoleAcrossMounts) {
  WritePolicy("first", R"(path "secret/data/a" { capabilities = ["read"] })");
  WritePolicy("second", R"(path "secret/data/b" { capabilities = ["read"] })");
  ASSERT_EQ(Root("PUT", "secret/data/a", R"({"data":{"k":"a"}})").status, 200);
  ASSERT_EQ(Root("PUT", "secret/data/b", R"({"data":{"k":"b"}})").status, 200);
  // Mount "b-cert/" sorts after "a-cert/"; within a mount, roles go by name.
  SetUpRole("b-cert", "aaa", ca_, json::object{{"token_policies", "second"}});
  SetUpRole("a-cert", "zzz", ca_, json::object{{"token_policies", "first"}});
  SetUpRole("a-cert", "yyy", ca_,
            json::object{{"token_policies", "second"}, {"allowed_common_names", "nobody"}});
  std::vector<std::string> chain = Chain(ca_, "svc");
  EXPECT_EQ(Call("GET", "secret/data/a", "", "", chain).status, 200);
  EXPECT_EQ(Call("GET", "secret/data/b", "", "", chain).status, 403);
  net::HttpResponse self = Call("GET", "auth/token/lookup-self", "", "", chain);
  EXPECT_EQ(Body(self).at("data").at("display_name"), "a-cert-zzz");

  // Disabling a cert mount deletes its roles: the next mount answers.
  ASSERT_EQ(Root("DELETE", "sys/auth/a-cert").status, 204);
  EXPECT_EQ(Call("GET", "secret/data/b", "", "", chain).status, 200);
  ASSERT_EQ(Root("POST", "sys/auth/a-cert", R"({"type":"cert"})").status, 204);
  EXPECT_EQ(Root("LIST", "auth/a-cert/certs").status, 404);
  EXPECT_EQ(Call("POST", "auth/a-cert/login", "", "", chain).status, 400);
}

TEST_F(CertRoutesTest, AuditRecordsShowTheDirectIdentityAndFailedLogins) {
  core::TempDir dir;
  std::string log = dir.Join("audit.log");
  json::object enable{{"type", "file"}, {"options", json::object{{"file_path", log}}}};
  ASSERT_EQ(Root("PUT", "sys/audit/file", json::serialize(enable)).status, 204);
  WritePolicy("web", R"(path "secret/data/app" { capabilities = ["read"] })");
  SetUpRole("cert", "web", ca_);
  std::vector<std::string> chain = Chain(ca_, "web-1");
  ASSERT_EQ(Call("GET", "secret/data/app", "", "", chain).status, 404);  // allowed, no secret
  ASSERT_EQ(Call("POST", "auth/cert/login", "", "", Chain(other_ca_, "x")).status, 400);

  std::ifstream in(log);
  std::string line;
  bool saw_identity = false, saw_failed_login = false;
  while (std::getline(in, line)) {
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    const json::object& o = v.as_object();
    const json::value* request = o.if_contains("request");
    if (request == nullptr) continue;
    std::string path(request->at("path").as_string());
    if (path == "secret/data/app" && o.contains("auth")) {
      const json::value& auth = o.at("auth");
      if (auth.as_object().contains("display_name") && auth.at("display_name") == "cert-web") {
        saw_identity = true;
        EXPECT_THAT(Strings(auth.at("policies")), ElementsAre("default", "web"));
      }
    }
    if (path == "auth/cert/login" && o.at("type") == "response") {
      saw_failed_login = o.contains("error") &&
                         std::string(o.at("error").as_string()).find("invalid certificate") !=
                             std::string::npos;
    }
  }
  EXPECT_TRUE(saw_identity) << "no audit record with the cert identity in " << log;
  EXPECT_TRUE(saw_failed_login) << "no audit record of the failed login in " << log;
}

TEST_F(CertRoutesTest, TokenBoundCidrsBindLoginTokensAndDirectIdentity) {
  WritePolicy("web", R"(path "secret/data/app" { capabilities = ["read"] })");
  ASSERT_EQ(Root("PUT", "secret/data/app", R"({"data":{"k":"v"}})").status, 200);
  SetUpRole("cert", "web", ca_,
            json::object{{"token_bound_cidrs", json::array{"10.0.0.0/8", "127.0.0.1/32"}}});
  net::HttpResponse read = Root("GET", "auth/cert/certs/web");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_THAT(Strings(Body(read).at("data").at("token_bound_cidrs")),
              ElementsAre("10.0.0.0/8", "127.0.0.1"));
  EXPECT_FALSE(Body(read).at("data").as_object().contains("bound_cidrs"));
  std::vector<std::string> chain = Chain(ca_, "web-1");

  // Login from inside: the token is bound to the role's networks on every request.
  net::HttpResponse login = Call("POST", "auth/cert/login", "", "", chain, "10.1.2.3");
  ASSERT_EQ(login.status, 200) << login.body;
  std::string token(Body(login).at("auth").at("client_token").as_string());
  EXPECT_EQ(Call("GET", "secret/data/app", token, "", {}, "127.0.0.1").status, 200);
  EXPECT_EQ(Call("GET", "secret/data/app", token, "", {}, "10.9.9.9").status, 200);
  net::HttpResponse moved = Call("GET", "secret/data/app", token, "", {}, "192.0.2.7");
  EXPECT_EQ(moved.status, 403);
  EXPECT_EQ(FirstError(moved), "permission denied");
  EXPECT_EQ(Call("GET", "auth/token/lookup-self", token, "", {}, "127.0.0.2").status, 403);

  // Login from outside: Vault's "permission denied", and no token is made.
  const size_t tokens = core().State()->tokens->Count();
  net::HttpResponse outside = Call("POST", "auth/cert/login", "", "", chain, "192.0.2.7");
  EXPECT_EQ(outside.status, 403) << outside.body;
  EXPECT_EQ(FirstError(outside), "permission denied");
  EXPECT_EQ(core().State()->tokens->Count(), tokens);

  // Direct identity holds the same networks.
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", chain, "127.0.0.1").status, 200);
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", chain, "::ffff:10.0.0.1").status, 200);
  net::HttpResponse direct = Call("GET", "secret/data/app", "", "", chain, "192.0.2.7");
  EXPECT_EQ(direct.status, 403);
  EXPECT_EQ(FirstError(direct), "permission denied");
  EXPECT_EQ(Call("GET", "auth/token/lookup-self", "", "", chain, "192.0.2.7").status, 403);
  // The first accepting role decides: an unbound role of a later mount does not step in.
  SetUpRole("z-cert", "any", ca_);
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", chain, "192.0.2.7").status, 403);

  // Refusals for the source address do not drain the failed-login bucket (the certificate was
  // good): after more than a burst of them, widening the role lets the address in.
  for (int i = 0; i < 12; ++i) Call("POST", "auth/cert/login", "", "", chain, "192.0.2.7");
  ASSERT_EQ(Root("POST", "auth/cert/certs/web", R"({"token_bound_cidrs":"192.0.2.0/24"})").status,
            204);
  EXPECT_EQ(Call("POST", "auth/cert/login", "", "", chain, "192.0.2.7").status, 200);
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", chain, "192.0.2.7").status, 200);
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", chain, "127.0.0.1").status, 403);
  // Emptying the list unbinds.
  ASSERT_EQ(Root("POST", "auth/cert/certs/web", R"({"token_bound_cidrs":[]})").status, 204);
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", chain, "198.51.100.1").status, 200);
}

TEST_F(CertRoutesTest, LegacyBoundCidrsAreShownAsVaultDoes) {
  SetUpRole("cert", "web", ca_, json::object{{"bound_cidrs", "10.0.0.0/8, 2001:DB8::1/128"}});
  json::value data = Body(Root("GET", "auth/cert/certs/web")).at("data");
  EXPECT_THAT(Strings(data.at("bound_cidrs")), ElementsAre("10.0.0.0/8", "2001:db8::1"));
  EXPECT_THAT(Strings(data.at("token_bound_cidrs")), ElementsAre("10.0.0.0/8", "2001:db8::1"));
  ASSERT_EQ(Root("POST", "auth/cert/certs/web", R"({"token_bound_cidrs":["10.0.0.0/16"]})").status,
            204);
  data = Body(Root("GET", "auth/cert/certs/web")).at("data");
  EXPECT_FALSE(data.as_object().contains("bound_cidrs"));
  EXPECT_THAT(Strings(data.at("token_bound_cidrs")), ElementsAre("10.0.0.0/16"));
}

TEST_F(CertRoutesTest, BadCidrsAndOcspSettingsAreRefusedAndChangeNothing) {
  SetUpRole("cert", "web", ca_, json::object{{"token_bound_cidrs", "10.0.0.0/8"}});
  const std::string before = Root("GET", "auth/cert/certs/web").body;
  struct Case {
    std::string body;
    std::string error;  // "" = only the status is checked
  };
  const std::vector<Case> cases = {
      {R"({"token_bound_cidrs":["10.0.0.0/33"]})", "invalid CIDR block \"10.0.0.0/33\""},
      {R"({"bound_cidrs":"example.com"})", "invalid CIDR block \"example.com\""},
      {R"({"token_bound_cidrs":7})", ""},
      {R"({"ocsp_enabled":true})", "OCSP checking is not supported"},
      {R"({"ocsp_enabled":"true","display_name":"x"})", "OCSP checking is not supported"},
      {R"({"ocsp_enabled":"maybe"})", ""},
      {R"({"ocsp_servers_override":["http://ocsp.example.com"]})",
       "OCSP checking is not supported: ocsp_servers_override cannot be set"},
      {R"({"ocsp_ca_certificates":"x"})",
       "OCSP checking is not supported: ocsp_ca_certificates cannot be set"},
      {R"({"ocsp_fail_open":true})",
       "OCSP checking is not supported: ocsp_fail_open cannot be set"},
      {R"({"ocsp_query_all_servers":true})",
       "OCSP checking is not supported: ocsp_query_all_servers cannot be set"},
  };
  for (const Case& c : cases) {
    net::HttpResponse r = Root("POST", "auth/cert/certs/web", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " " << r.body;
    if (!c.error.empty()) {
      EXPECT_EQ(FirstError(r), c.error) << c.body;
    }
    // A new role is not created either.
    json::value fresh = json::parse(c.body);
    fresh.as_object()["certificate"] = ca_.cert_pem;
    EXPECT_EQ(Root("POST", "auth/cert/certs/fresh", json::serialize(fresh)).status, 400) << c.body;
  }
  EXPECT_EQ(Root("GET", "auth/cert/certs/web").body, before);
  EXPECT_EQ(Root("GET", "auth/cert/certs/fresh").status, 404);
  // OCSP fields at their empty values (as a role read shows them) are accepted.
  json::object echo = Body(Root("GET", "auth/cert/certs/web")).at("data").as_object();
  net::HttpResponse rewrite = Root("POST", "auth/cert/certs/web", json::serialize(echo));
  EXPECT_EQ(rewrite.status, 204) << rewrite.body;
  EXPECT_EQ(Root("GET", "auth/cert/certs/web").body, before);
}

TEST_F(CertRoutesTest, CrlRoutesRevokeCertificatesForLoginAndDirectIdentity) {
  WritePolicy("web", R"(path "secret/data/app" { capabilities = ["read"] })");
  ASSERT_EQ(Root("PUT", "secret/data/app", R"({"data":{"k":"v"}})").status, 200);
  SetUpRole("cert", "web", ca_);
  std::vector<std::string> revoked = Chain(ca_, "web-1");
  std::vector<std::string> kept = Chain(ca_, "web-2");
  ASSERT_EQ(Call("GET", "secret/data/app", "", "", revoked).status, 200);  // cached match
  EXPECT_EQ(Root("LIST", "auth/cert/crls").status, 404);

  json::object put{{"crl", MakeCrl(ca_, {revoked}, clock_.Now())}};
  net::HttpResponse written = Root("POST", "auth/cert/crls/Main", json::serialize(put));
  ASSERT_EQ(written.status, 204) << written.body;
  net::HttpResponse read = Root("GET", "auth/cert/crls/main");
  ASSERT_EQ(read.status, 200) << read.body;
  json::object expected_serials{{SerialOf(revoked.front()), json::object{}}};
  EXPECT_EQ(Body(read).at("data"),
            json::value(json::object{{"cdp", nullptr}, {"serials", expected_serials}}));
  net::HttpResponse list = Root("LIST", "auth/cert/crls");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_THAT(Strings(Body(list).at("data").at("keys")), ElementsAre("main"));

  net::HttpResponse login = Call("POST", "auth/cert/login", "", "", revoked);
  EXPECT_EQ(login.status, 400);
  EXPECT_EQ(FirstError(login),
            "no chain matching all constraints could be found for this login certificate");
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", revoked).status, 403);
  EXPECT_EQ(Call("POST", "auth/cert/login", "", "", kept).status, 200);
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", kept).status, 200);

  // CRL routes need a token allowed on them.
  EXPECT_EQ(Call("GET", "auth/cert/crls/main", "").status, 403);
  EXPECT_EQ(Call("DELETE", "auth/cert/crls/main", "", "", kept).status, 403);

  EXPECT_EQ(Root("DELETE", "auth/cert/crls/main").status, 204);
  EXPECT_EQ(Call("GET", "secret/data/app", "", "", revoked).status, 200);
  EXPECT_EQ(Call("POST", "auth/cert/login", "", "", revoked).status, 200);
  net::HttpResponse gone = Root("GET", "auth/cert/crls/main");
  EXPECT_EQ(gone.status, 400);
  EXPECT_EQ(FirstError(gone), "no such CRL main");
  net::HttpResponse gone_delete = Root("DELETE", "auth/cert/crls/main");
  EXPECT_EQ(gone_delete.status, 400);
  EXPECT_EQ(FirstError(gone_delete), "no such CRL main");
}

TEST_F(CertRoutesTest, BadCrlWritesAreRefusedAndStoreNothing) {
  SetUpRole("cert", "web", ca_);
  std::vector<std::string> leaf = Chain(ca_, "web-1");
  struct Case {
    std::string body;
    std::string error;
  };
  // An impostor CA with the trusted CA's name ("Client CA") and its own key.
  auto impostor = crypto::GenerateSelfSignedCa("Client CA", clock_.Now(), absl::Hours(24));
  ASSERT_TRUE(impostor.ok()) << impostor.status();
  std::string forged = MakeCrl(*impostor, {leaf}, clock_.Now());
  const std::vector<Case> cases = {
      {R"({})", "one of 'crl' or 'url' must be provided"},
      {R"({"url":"http://crl.example.com/ca.crl"})",
       "fetching CRLs from a URL is not supported; give the CRL in 'crl'"},
      {R"({"crl":"garbage"})", "failed to parse CRL"},
      {R"({"crl":12})", ""},
      {"not json", ""},
      {json::serialize(json::object{{"crl", forged}}),
       "CRL signature does not verify with the certificate of its issuer"},
  };
  for (const Case& c : cases) {
    net::HttpResponse r = Root("POST", "auth/cert/crls/main", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " " << r.body;
    if (!c.error.empty()) {
      EXPECT_EQ(FirstError(r), c.error) << c.body;
    }
  }
  json::object good{{"crl", MakeCrl(ca_, {leaf}, clock_.Now())}};
  EXPECT_EQ(Root("POST", "auth/cert/crls/bad%20name", json::serialize(good)).status, 400);
  EXPECT_EQ(Root("LIST", "auth/cert/crls").status, 404);
  EXPECT_EQ(Call("POST", "auth/cert/login", "", "", leaf).status, 200);
}

}  // namespace
}  // namespace ward::api
