// Ward's own PKI feeding the listener's client trust (docs/pki.md, "Listener trust"), spoken to
// with curl: an X509-SVID issued through the API is accepted at the TLS handshake within
// seconds, is refused within seconds of pki/revoke, and a certificate from an unknown CA is
// refused throughout; with listener.tls_trust_pki_mounts false the SVID is never trusted. The
// handshake metrics (ward_tls_*) count what happened.

#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>

#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

std::string Str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : ""; }

// Polls `condition` every 100 ms for up to `limit` (the listener polls PKI trust every 2 s).
bool Eventually(const std::function<bool()>& condition, absl::Duration limit = absl::Seconds(15)) {
  const absl::Time give_up = absl::Now() + limit;
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return true;
}

class PkiMtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunCommand("command -v curl && command -v openssl").exit_code != 0) {
      GTEST_FAIL() << "curl and openssl are required (scripts/install-deps.sh installs them)";
    }
    ASSERT_TRUE(WriteSelfSignedServerCert(Path("server.pem"), Path("server.key")).ok());
    // A static client CA (listener.tls_client_ca_file), so certificates are requested from the
    // start, and a rogue CA nobody trusts with a client certificate of its own.
    for (const char* name : {"static-ca", "rogue-ca"}) {
      Run(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                       "-keyout ", name, ".key -out ", name, ".pem -days 2 -subj /CN=", name,
                       " -addext 'basicConstraints=critical,CA:TRUE' "
                       "-addext 'keyUsage=critical,keyCertSign,cRLSign' 2>&1"));
    }
    std::ofstream(Path("rogue.ext")) << "subjectAltName=URI:spiffe://example.org/ns/prod/sa/web\n"
                                        "extendedKeyUsage=clientAuth\n";
    Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue.key "
        "-out rogue.csr -subj /CN=rogue 2>&1 && openssl x509 -req -in rogue.csr -CA rogue-ca.pem "
        "-CAkey rogue-ca.key -CAcreateserial -days 1 -out rogue.pem -extfile rogue.ext 2>&1");
  }

  void StartServer(bool trust_pki_mounts) {
    std::ofstream(Path("ward.yaml"))
        << "listener:\n  address: 127.0.0.1:0\n  tls_cert_file: " << Path("server.pem")
        << "\n  tls_key_file: " << Path("server.key")
        << "\n  tls_client_ca_file: " << Path("static-ca.pem")
        << "\n  tls_trust_pki_mounts: " << (trust_pki_mounts ? "true" : "false")
        << "\nstorage:\n  path: " << Path("data") << "\n";
    auto server = WardProcess::StartWithConfig(Path("ward.yaml"), Path("server.log"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = server_->Client(Path("server.pem"));
    ASSERT_NE(client_, nullptr);
    Reply init = Call(*client_, "PUT", "sys/init", "", R"({"secret_shares":1,"secret_threshold":1})");
    ASSERT_EQ(init.status, 200) << init.body;
    json::value iv = Parse(init.body);
    root_ = Str(iv.at("root_token"));
    unseal_key_ = Str(iv.at("keys").at(0));
    ASSERT_NO_FATAL_FAILURE(Unseal());
  }

  void Unseal() {
    Reply unseal = Call(*client_, "PUT", "sys/unseal", "", R"({"key":")" + unseal_key_ + R"("})");
    ASSERT_EQ(unseal.status, 200) << unseal.body;
  }

  // Mounts PKI at pki/, generates a root and role "web", issues an SVID for
  // spiffe://example.org/ns/prod/sa/web into svid.pem / svid.key and returns its serial.
  std::string IssueSvid() {
    EXPECT_EQ(Root("POST", "sys/mounts/pki", R"({"type":"pki"})").status, 204);
    Reply root = Root("POST", "pki/root/generate/internal",
                      R"({"common_name":"Example Root","uri_sans":"spiffe://example.org","ttl":"8760h"})");
    EXPECT_EQ(root.status, 200) << root.body;
    Reply role = Root("POST", "pki/roles/web",
                      R"({"allowed_uri_sans":"spiffe://example.org/ns/*/sa/*","ttl":"1h"})");
    EXPECT_EQ(role.status, 200) << role.body;
    Reply issued =
        Root("POST", "pki/issue/web", R"({"uri_sans":"spiffe://example.org/ns/prod/sa/web"})");
    EXPECT_EQ(issued.status, 200) << issued.body;
    json::value data = Parse(issued.body).at("data");
    std::ofstream(Path("svid.pem")) << Str(data.at("certificate"));
    std::ofstream(Path("svid.key")) << Str(data.at("private_key"));
    return Str(data.at("serial_number"));
  }

  // curl GET /v1/sys/health presenting `cert` (.pem/.key in the temp dir). Returns curl's exit
  // code: 0 when an HTTP response came back, 35/56 when the handshake or the first read failed.
  int CurlWithCert(const std::string& cert) {
    CommandResult r = RunCommand(
        "curl -sS --max-time 10 -o /dev/null --cacert " + ShellQuote(Path("server.pem")) +
        " --cert " + ShellQuote(Path(cert + ".pem")) + " --key " +
        ShellQuote(Path(cert + ".key")) + " " + ShellQuote(server_->addr() + "/v1/sys/health"));
    last_curl_output_ = r.output;
    return r.exit_code;
  }

  Reply Root(const std::string& method, const std::string& path, const std::string& body = "") {
    return Call(*client_, method, path, root_, body);
  }

  void Run(const std::string& command) {
    CommandResult r = RunCommand("cd " + ShellQuote(dir_.path()) + " && " + command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.output;
  }

  std::string Path(const std::string& name) const { return dir_.Join(name); }

  // The value of one Prometheus sample line starting with `series` (-1 if absent).
  double Sample(const std::string& series) {
    Reply r = Root("GET", "sys/metrics?format=prometheus");
    EXPECT_EQ(r.status, 200) << r.body;
    std::istringstream lines(r.body);
    for (std::string line; std::getline(lines, line);) {
      if (absl::StartsWith(line, series + " ")) return std::atof(line.c_str() + series.size() + 1);
    }
    return -1;
  }

  core::TempDir dir_;
  std::unique_ptr<WardProcess> server_;
  std::unique_ptr<net::HttpClient> client_;
  std::string root_;
  std::string unseal_key_;
  std::string last_curl_output_;
};

TEST_F(PkiMtlsTest, SvidIsAcceptedWithinSecondsAndRefusedWithinSecondsOfRevocation) {
  ASSERT_NO_FATAL_FAILURE(StartServer(/*trust_pki_mounts=*/true));
  EXPECT_NE(CurlWithCert("rogue"), 0) << "a certificate from an unknown CA must be refused";

  const std::string serial = IssueSvid();
  ASSERT_FALSE(serial.empty());
  EXPECT_TRUE(Eventually([&] { return CurlWithCert("svid") == 0; }))
      << "the SVID was not accepted: " << last_curl_output_ << "\n" << server_->Log();

  // The handler sees the verified certificate: auth/cert logs in with it against a role that
  // trusts the PKI root.
  ASSERT_EQ(Root("POST", "sys/auth/cert", R"({"type":"cert"})").status, 204);
  json::object role{{"certificate", Str(Parse(Root("GET", "pki/cert/ca").body)
                                             .at("data")
                                             .at("certificate"))},
                    {"allowed_uri_sans", "spiffe://example.org/ns/*/sa/*"}};
  ASSERT_EQ(Root("POST", "auth/cert/certs/web", json::serialize(role)).status, 204);
  CommandResult login = RunCommand(
      "curl -sS --max-time 10 -X POST --cacert " + ShellQuote(Path("server.pem")) + " --cert " +
      ShellQuote(Path("svid.pem")) + " --key " + ShellQuote(Path("svid.key")) + " " +
      ShellQuote(server_->addr() + "/v1/auth/cert/login"));
  ASSERT_EQ(login.exit_code, 0) << login.output;
  EXPECT_TRUE(absl::StrContains(login.output, "client_token")) << login.output;

  // Sealed: only the configured CA file is trusted; unsealed again: the PKI trust is back.
  ASSERT_EQ(Root("PUT", "sys/seal").status, 204);
  EXPECT_TRUE(Eventually([&] { return CurlWithCert("svid") != 0; }))
      << "the SVID is still accepted while sealed\n" << server_->Log();
  ASSERT_NO_FATAL_FAILURE(Unseal());
  EXPECT_TRUE(Eventually([&] { return CurlWithCert("svid") == 0; }))
      << "the SVID was not accepted after unsealing: " << last_curl_output_;

  Reply revoked = Root("POST", "pki/revoke", json::serialize(json::object{{"serial_number", serial}}));
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  int code = 0;
  EXPECT_TRUE(Eventually([&] {
    code = CurlWithCert("svid");
    return code != 0;
  })) << "the revoked SVID is still accepted\n" << server_->Log();
  EXPECT_TRUE(code == 35 || code == 56) << code << " " << last_curl_output_;
  EXPECT_NE(CurlWithCert("rogue"), 0);

  EXPECT_GE(Sample(R"(ward_tls_client_cert_failures_total{reason="revoked"})"), 1);
  EXPECT_GE(Sample(R"(ward_tls_client_cert_failures_total{reason="untrusted"})"), 2);
  EXPECT_GE(Sample(R"(ward_tls_handshakes_total{kind="full"})"), 3);
  EXPECT_GE(Sample(R"(ward_tls_handshakes_total{kind="resumed"})"), 0);
  // The listener's session cache (tls_session_resumption: node, the default): every full
  // handshake left a session; each curl is a new process, so none was offered back.
  EXPECT_GE(Sample("ward_tls_session_cache_sessions"), 3);
  EXPECT_EQ(Sample("ward_tls_session_cache_capacity"), 10000);
  EXPECT_EQ(Sample(R"(ward_tls_session_cache_lookups_total{result="hit"})"), 0);
  EXPECT_EQ(Sample("ward_tls_session_cache_evictions_total"), 0);
  const double expiry = Sample("ward_tls_certificate_expiry_seconds");
  EXPECT_GT(expiry, 3600);           // WriteSelfSignedServerCert: valid one day
  EXPECT_LE(expiry, 24 * 3600 + 60);
  // Unsealed: the session ticket keys came from the barrier (server/ticket_keys.h).
  EXPECT_TRUE(absl::StrContains(server_->Log(), "event=ticket_keys_installed shared=true"))
      << server_->Log();
}

TEST_F(PkiMtlsTest, OptOutKeepsPkiCertificatesUntrusted) {
  ASSERT_NO_FATAL_FAILURE(StartServer(/*trust_pki_mounts=*/false));
  ASSERT_FALSE(IssueSvid().empty());
  // Three PKI poll periods (2 s each): long enough for a listener that did trust PKI mounts.
  absl::SleepFor(absl::Seconds(6));
  EXPECT_NE(CurlWithCert("svid"), 0) << "with tls_trust_pki_mounts: false the SVID was accepted";
  EXPECT_FALSE(absl::StrContains(server_->Log(), "pki_trust_changed")) << server_->Log();
}

}  // namespace
}  // namespace ward::testing
