// TLS certificate auth (auth/cert) and direct certificate identity against the real `ward server`,
// with curl presenting client certificates over mutual TLS. The certificates are made with the
// openssl CLI (SPIFFE URI SANs included); the listener trusts the test CA for client
// certificates through listener.tls_client_ca_file.

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

}  // namespace
}  // namespace ward::testing
