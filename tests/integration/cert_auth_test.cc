// TLS certificate auth (auth/cert) and direct certificate identity against the real `ward server`,
// with curl presenting client certificates over mutual TLS. The certificates and CRLs are made
// with the openssl CLI (SPIFFE URI SANs included); the listener trusts the test CA for client
// certificates through listener.tls_client_ca_file. The server listens on 127.0.0.1, so that is
// every client's address here.

#include <fstream>
#include <string>

#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

std::string Str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : ""; }

class CertAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<core::TempDir>();
    if (RunCommand("command -v curl && command -v openssl").exit_code != 0) {
      GTEST_FAIL() << "curl and openssl are required (scripts/install-deps.sh installs them)";
    }
    ASSERT_NO_FATAL_FAILURE(MakeCa("ca", "Cert Auth Test CA"));
    ASSERT_NO_FATAL_FAILURE(MakeCa("rogue", "Rogue CA"));
    ASSERT_NO_FATAL_FAILURE(
        MakeLeaf("server", "ca", "localhost",
                 "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"));
    ASSERT_NO_FATAL_FAILURE(MakeLeaf(
        "web", "ca", "web-1",
        "subjectAltName=URI:spiffe://example.org/ns/prod/sa/web\nextendedKeyUsage=clientAuth\n"));
    ASSERT_NO_FATAL_FAILURE(MakeLeaf(
        "db", "ca", "db-1",
        "subjectAltName=URI:spiffe://example.org/ns/prod/db\nextendedKeyUsage=clientAuth\n"));
    ASSERT_NO_FATAL_FAILURE(
        MakeLeaf("stranger", "rogue", "web-1",
                 "subjectAltName=URI:spiffe://example.org/ns/prod/sa/web\n"
                 "extendedKeyUsage=clientAuth\n"));

    std::ofstream(dir_->Join("ward.yaml"))
        << "listener:\n  address: 127.0.0.1:0\n  tls_cert_file: " << dir_->Join("server.pem")
        << "\n  tls_key_file: " << dir_->Join("server.key")
        << "\n  tls_client_ca_file: " << dir_->Join("ca.pem") << "\nstorage:\n  path: "
        << dir_->Join("data") << "\n";
    auto server = WardProcess::StartWithConfig(dir_->Join("ward.yaml"), dir_->Join("server.log"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = server_->Client(dir_->Join("ca.pem"));
    ASSERT_NE(client_, nullptr);
    Reply init =
        Call(*client_, "PUT", "sys/init", "", R"({"secret_shares":1,"secret_threshold":1})");
    ASSERT_EQ(init.status, 200) << init.body;
    json::value iv = Parse(init.body);
    root_ = Str(iv.at("root_token"));
    std::string unseal = R"({"key":")" + Str(iv.at("keys").at(0)) + R"("})";
    ASSERT_EQ(Call(*client_, "PUT", "sys/unseal", "", unseal).status, 200);

    ASSERT_EQ(Root("POST", "sys/auth/cert", R"({"type":"cert"})").status, 204);
    json::object role{{"certificate", ReadFile(dir_->Join("ca.pem"))},
                      {"allowed_uri_sans", "spiffe://example.org/ns/*/sa/*"},
                      {"token_policies", "web"},
                      {"token_ttl", "30m"}};
    Reply write = Root("POST", "auth/cert/certs/web", json::serialize(role));
    ASSERT_EQ(write.status, 204) << write.body;

    // The listener requests client certificates (it has a client CA), so curl's reaches the
    // handler: a login with it must not be refused for lack of one.
    Reply probe = Curl("POST", "auth/cert/login", "web");
    ASSERT_FALSE(probe.status == 400 &&
                 absl::StrContains(probe.body, "client certificate must be supplied"))
        << "the listener did not pass the client certificate on: " << probe.body;
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  void Run(const std::string& command) {
    CommandResult r = RunCommand("cd " + ShellQuote(dir_->path()) + " && " + command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.output;
  }

  void MakeCa(const std::string& name, const std::string& cn) {
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + name +
        ".key -out " + name + ".pem -days 2 -subj " + ShellQuote("/CN=" + cn) +
        " -addext 'basicConstraints=critical,CA:TRUE' "
        "-addext 'keyUsage=critical,keyCertSign,cRLSign' 2>&1");
  }

  void MakeLeaf(const std::string& name, const std::string& ca, const std::string& cn,
                const std::string& extensions) {
    std::ofstream(dir_->Join(name + ".ext")) << extensions;
    Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + name +
        ".key -out " + name + ".csr -subj " + ShellQuote("/CN=" + cn) + " 2>&1 && " +
        "openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
        ".key -CAcreateserial -days 1 -out " + name + ".pem -extfile " + name + ".ext 2>&1");
  }

  Reply Root(const std::string& method, const std::string& path, const std::string& body = "") {
    return Call(*client_, method, path, root_, body);
  }

  // One request with curl, presenting client certificate `cert` ("" = none) and `token`.
  Reply Curl(const std::string& method, const std::string& path, const std::string& cert,
             const std::string& token = "", const std::string& body = "") {
    std::string cmd = "curl -sS --max-time 20 -o " + ShellQuote(dir_->Join("body.out")) +
                      " -w '%{http_code}' --cacert " + ShellQuote(dir_->Join("ca.pem")) +
                      " -X " + method;
    if (!cert.empty()) {
      cmd += " --cert " + ShellQuote(dir_->Join(cert + ".pem")) + " --key " +
             ShellQuote(dir_->Join(cert + ".key"));
    }
    if (!token.empty()) cmd += " -H " + ShellQuote("X-Vault-Token: " + token);
    if (!body.empty()) cmd += " -H 'Content-Type: application/json' -d " + ShellQuote(body);
    cmd += " " + ShellQuote(server_->addr() + "/v1/" + path);
    std::remove(dir_->Join("body.out").c_str());
    CommandResult r = RunCommand(cmd);
    Reply reply;
    if (r.exit_code != 0) {
      reply.status = -r.exit_code;  // curl failed: the TLS handshake was refused, typically
      reply.body = r.output;
      return reply;
    }
    reply.status = std::atoi(r.output.c_str());
    reply.body = ReadFile(dir_->Join("body.out"));
    return reply;
  }

  std::unique_ptr<core::TempDir> dir_;
  std::unique_ptr<WardProcess> server_;
  std::unique_ptr<net::HttpClient> client_;
  std::string root_;
};

TEST_F(CertAuthTest, LoginWithCurlClientCertificate) {
  Reply login = Curl("POST", "auth/cert/login", "web", "", R"({"name":"web"})");
  ASSERT_EQ(login.status, 200) << login.body;
  json::value auth = Parse(login.body).at("auth");
  EXPECT_EQ(auth.at("policies"), json::parse(R"(["default","web"])"));
  EXPECT_EQ(auth.at("lease_duration"), 1800);
  EXPECT_EQ(auth.at("metadata").at("cert_name"), "web");
  EXPECT_EQ(auth.at("metadata").at("common_name"), "web-1");
  std::string token = Str(auth.at("client_token"));
  Reply self = Call(*client_, "GET", "auth/token/lookup-self", token);
  ASSERT_EQ(self.status, 200) << self.body;
  EXPECT_EQ(Parse(self.body).at("data").at("display_name"), "cert-web");

  // A certificate of the trusted CA that the role's URI constraint refuses.
  Reply db = Curl("POST", "auth/cert/login", "db");
  EXPECT_EQ(db.status, 400) << db.body;
  EXPECT_TRUE(absl::StrContains(db.body, "no chain matching all constraints")) << db.body;
  // Without a certificate: Vault's message.
  Reply none = Curl("POST", "auth/cert/login", "");
  EXPECT_EQ(none.status, 400) << none.body;
  EXPECT_TRUE(absl::StrContains(none.body, "client certificate must be supplied")) << none.body;
  // A certificate of a CA the listener does not trust never reaches the handler.
  Reply stranger = Curl("POST", "auth/cert/login", "stranger");
  EXPECT_TRUE(stranger.status < 0 || stranger.status == 400) << stranger.status << stranger.body;
}

TEST_F(CertAuthTest, DirectIdentityWithoutLogin) {
  ASSERT_EQ(Root("PUT", "sys/policies/acl/web",
                 R"({"policy":"path \"secret/data/app\" { capabilities = [\"read\"] }"})")
                .status,
            204);
  ASSERT_EQ(Root("PUT", "secret/data/app", R"({"data":{"k":"v"}})").status, 200);
  Reply read = Curl("GET", "secret/data/app", "web");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(Parse(read.body).at("data").at("data").at("k"), "v");
  EXPECT_EQ(Curl("GET", "secret/data/app", "").status, 403);
  EXPECT_EQ(Curl("GET", "secret/data/app", "db").status, 403);
  EXPECT_EQ(Curl("GET", "secret/data/other", "web").status, 403);
  // A token takes precedence over the certificate.
  EXPECT_EQ(Curl("GET", "secret/data/app", "web", "bogus-token").status, 403);
  EXPECT_EQ(Curl("GET", "sys/policies/acl/web", "web", root_).status, 200);
}

TEST_F(CertAuthTest, TokenBoundCidrsRefuseLoginAndDirectIdentityFromOutside) {
  ASSERT_EQ(Root("PUT", "sys/policies/acl/web",
                 R"({"policy":"path \"secret/data/app\" { capabilities = [\"read\"] }"})")
                .status,
            204);
  ASSERT_EQ(Root("PUT", "secret/data/app", R"({"data":{"k":"v"}})").status, 200);
  // 127.0.0.1 is outside.
  Reply bind = Root("POST", "auth/cert/certs/web", R"({"token_bound_cidrs":["10.0.0.0/8"]})");
  ASSERT_EQ(bind.status, 204) << bind.body;
  Reply login = Curl("POST", "auth/cert/login", "web", "", R"({"name":"web"})");
  EXPECT_EQ(login.status, 403) << login.body;
  EXPECT_TRUE(absl::StrContains(login.body, "permission denied")) << login.body;
  Reply direct = Curl("GET", "secret/data/app", "web");
  EXPECT_EQ(direct.status, 403) << direct.body;

  // 127.0.0.1 is inside: login works, and the token carries the binding.
  bind = Root("POST", "auth/cert/certs/web", R"({"token_bound_cidrs":"127.0.0.1/32, ::1"})");
  ASSERT_EQ(bind.status, 204) << bind.body;
  Reply read = Root("GET", "auth/cert/certs/web");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(Parse(read.body).at("data").at("token_bound_cidrs"),
            json::parse(R"(["127.0.0.1","::1"])"));
  login = Curl("POST", "auth/cert/login", "web", "", R"({"name":"web"})");
  ASSERT_EQ(login.status, 200) << login.body;
  std::string token = Str(Parse(login.body).at("auth").at("client_token"));
  EXPECT_EQ(Curl("GET", "secret/data/app", "", token).status, 200);
  EXPECT_EQ(Curl("GET", "secret/data/app", "web").status, 200);

  // Bad CIDRs and OCSP are refused with Vault's error shape.
  Reply bad = Root("POST", "auth/cert/certs/web", R"({"token_bound_cidrs":"10.0.0.0/40"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Parse(bad.body).at("errors").at(0), "invalid CIDR block \"10.0.0.0/40\"");
  Reply ocsp = Root("POST", "auth/cert/certs/web", R"({"ocsp_enabled":true})");
  EXPECT_EQ(ocsp.status, 400);
  EXPECT_EQ(Parse(ocsp.body).at("errors").at(0), "OCSP checking is not supported");
  EXPECT_EQ(Curl("GET", "secret/data/app", "web").status, 200);  // nothing changed
}

TEST_F(CertAuthTest, CrlFromOpensslCaRevokesTheCertificate) {
  ASSERT_NO_FATAL_FAILURE(MakeLeaf(
      "web2", "ca", "web-2",
      "subjectAltName=URI:spiffe://example.org/ns/prod/sa/web\nextendedKeyUsage=clientAuth\n"));
  Reply before = Curl("POST", "auth/cert/login", "web");
  ASSERT_EQ(before.status, 200) << before.body;
  std::string serial = Str(Parse(before.body).at("auth").at("metadata").at("serial_number"));
  ASSERT_FALSE(serial.empty());

  // openssl ca revokes web.pem and writes a CRL signed by the CA.
  std::ofstream(dir_->Join("crl.cnf")) << "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\n"
                                          "default_md=sha256\ndefault_crl_days=1\n";
  ASSERT_NO_FATAL_FAILURE(Run(
      "touch index.txt && openssl ca -config crl.cnf -keyfile ca.key -cert ca.pem -revoke web.pem "
      "2>&1 && openssl ca -config crl.cnf -keyfile ca.key -cert ca.pem -gencrl -out ca.crl 2>&1"));
  json::object put{{"crl", ReadFile(dir_->Join("ca.crl"))}};
  Reply written = Root("POST", "auth/cert/crls/ca", json::serialize(put));
  ASSERT_EQ(written.status, 204) << written.body;
  Reply read = Root("GET", "auth/cert/crls/ca");
  ASSERT_EQ(read.status, 200) << read.body;
  json::object serials{{serial, json::object{}}};
  EXPECT_EQ(Parse(read.body).at("data"), (json::object{{"cdp", nullptr}, {"serials", serials}}));

  Reply revoked = Curl("POST", "auth/cert/login", "web");
  EXPECT_EQ(revoked.status, 400) << revoked.body;
  EXPECT_TRUE(absl::StrContains(revoked.body, "no chain matching all constraints")) << revoked.body;
  EXPECT_EQ(Curl("POST", "auth/cert/login", "web2").status, 200);

  // The same CRL refuses direct identity; deleting it lets the certificate back in.
  ASSERT_EQ(Root("PUT", "sys/policies/acl/web",
                 R"({"policy":"path \"secret/data/app\" { capabilities = [\"read\"] }"})")
                .status,
            204);
  ASSERT_EQ(Root("PUT", "secret/data/app", R"({"data":{"k":"v"}})").status, 200);
  EXPECT_EQ(Curl("GET", "secret/data/app", "web").status, 403);
  EXPECT_EQ(Curl("GET", "secret/data/app", "web2").status, 200);
  EXPECT_EQ(Root("DELETE", "auth/cert/crls/ca").status, 204);
  EXPECT_EQ(Curl("GET", "secret/data/app", "web").status, 200);
  EXPECT_EQ(Curl("POST", "auth/cert/login", "web").status, 200);

  // A CRL that does not parse, or that claims the CA as issuer with another key, is refused.
  Reply garbage = Root("POST", "auth/cert/crls/ca", R"({"crl":"not a CRL"})");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(Parse(garbage.body).at("errors").at(0), "failed to parse CRL");
  // An impostor CA certificate with the test CA's name and the rogue key signs it.
  ASSERT_NO_FATAL_FAILURE(
      Run("openssl req -x509 -key rogue.key -out impostor.pem -days 1 "
          "-subj '/CN=Cert Auth Test CA' 2>&1 && openssl ca -config crl.cnf -keyfile rogue.key "
          "-cert impostor.pem -gencrl -out forged.crl 2>&1"));
  json::object forged{{"crl", ReadFile(dir_->Join("forged.crl"))}};
  Reply refused = Root("POST", "auth/cert/crls/ca", json::serialize(forged));
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_TRUE(absl::StrContains(refused.body, "CRL signature does not verify")) << refused.body;
  EXPECT_EQ(Root("LIST", "auth/cert/crls").status, 404);
}

}  // namespace
}  // namespace ward::testing
