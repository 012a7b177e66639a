// The CA rotation runbook of docs/pki.md seen from a client of Ward's own listener: the listener
// REQUIRES client certificates and trusts the PKI mount's bundle (listener.tls_trust_pki_mounts),
// and the workloads are real `curl` and `openssl s_client` processes presenting X509-SVIDs.
//
// While the old root (A) and the next one (B) overlap in the bundle, a leaf of each is accepted
// at the handshake and authorised by direct identity (a cert role per root). Retiring A is
// refused while its leaf is valid; forced, it leaves the listener's trust within the listener's
// PKI poll period, after which A's leaf is refused at the handshake (also when it offers a
// session ticket from before) and B's is still accepted.

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/testing/temp_dir.h"
#include "crypto/x509.h"
#include "gtest/gtest.h"
#include "net/http_client.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

constexpr char kWorkloads[] = "spiffe://example.org/ns/*/sa/*";

// The listener polls the PKI trust every 2 s (docs/configuration.md); an ASan build on a shared
// machine gets generous slack. The test only waits as long as the server actually takes.
constexpr absl::Duration kTrustDeadline = absl::Seconds(20);

std::string Str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : ""; }

void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class PkiRotationMtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunCommand("command -v curl && command -v openssl").exit_code != 0) {
      GTEST_FAIL() << "curl and openssl are required (scripts/install-deps.sh installs them)";
    }
    // The server's certificate, and the operator's client certificate from a static client CA:
    // tls_require_client_cert needs tls_client_ca_file, and while sealed (init, unseal) only
    // that file is trusted.
    const absl::Time now = absl::Now();
    auto server_ca = crypto::GenerateSelfSignedCa("Server CA", now, absl::Hours(2));
    ASSERT_TRUE(server_ca.ok()) << server_ca.status();
    auto server = crypto::IssueServerCertificate(*server_ca, "localhost", {"localhost"},
                                                 {"127.0.0.1"}, now, absl::Hours(1));
    ASSERT_TRUE(server.ok()) << server.status();
    auto operator_ca = crypto::GenerateSelfSignedCa("Operator CA", now, absl::Hours(2));
    ASSERT_TRUE(operator_ca.ok()) << operator_ca.status();
    auto op = crypto::IssueServerCertificate(*operator_ca, "operator", {"operator.client"}, {}, now,
                                             absl::Hours(1));
    ASSERT_TRUE(op.ok()) << op.status();
    WriteFile(Path("server-ca.pem"), server_ca->cert_pem);
    WriteFile(Path("server.pem"), server->cert_pem);
    WriteFile(Path("server.key"), server->key_pem.view());
    WriteFile(Path("operator-ca.pem"), operator_ca->cert_pem);
    WriteFile(Path("operator.pem"), op->cert_pem);
    WriteFile(Path("operator.key"), op->key_pem.view());

    WriteFile(Path("ward.yaml"),
              absl::StrCat("listener:\n  address: 127.0.0.1:0\n  tls_cert_file: ",
                           Path("server.pem"), "\n  tls_key_file: ", Path("server.key"),
                           "\n  tls_client_ca_file: ", Path("operator-ca.pem"),
                           "\n  tls_require_client_cert: true\n  tls_trust_pki_mounts: true\n"
                           "storage:\n  path: ",
                           Path("data"), "\nlog_level: debug\n"));
    auto started = WardProcess::StartWithConfig(Path("ward.yaml"), Path("server.log"));
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    port_ = server_->addr().substr(server_->addr().rfind(':') + 1);

    net::HttpClientOptions options;
    options.address = server_->addr();
    options.ca_file = Path("server-ca.pem");
    options.client_cert_file = Path("operator.pem");
    options.client_key_file = Path("operator.key");
    auto client = net::HttpClient::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);

    Reply init =
        Call(*client_, "PUT", "sys/init", "", R"({"secret_shares":1,"secret_threshold":1})");
    ASSERT_EQ(init.status, 200) << init.body << "\n" << server_->Log();
    json::value iv = Parse(init.body);
    root_ = Str(iv.at("root_token"));
    Reply unseal = Call(*client_, "PUT", "sys/unseal", "",
                        json::serialize(json::object{{"key", iv.at("keys").at(0)}}));
    ASSERT_EQ(unseal.status, 200) << unseal.body;
  }

  Reply Root(const std::string& method, const std::string& path, const std::string& body = "{}") {
    return Call(*client_, method, path, root_, body);
  }

  // Issues an SVID for `spiffe_id` from role "web" into <name>.pem / <name>.key; returns the
  // issue response's data.
  json::object IssueLeaf(const std::string& name, const std::string& spiffe_id,
                         const std::string& ttl) {
    Reply issued = Root("POST", "pki/issue/web",
                        json::serialize(json::object{{"uri_sans", spiffe_id}, {"ttl", ttl}}));
    EXPECT_EQ(issued.status, 200) << issued.body;
    json::value v = Parse(issued.body);
    if (!v.is_object() || !v.as_object().contains("data")) return {};
    json::object data = v.at("data").as_object();
    WriteFile(Path(name + ".pem"), Str(data.at("certificate")));
    WriteFile(Path(name + ".key"), Str(data.at("private_key")));
    return data;
  }

  // GET /v1/<path> with curl presenting certificate `cert` ("" = none) and no token. status is
  // the HTTP status, or minus curl's exit code when no response came back (35 or 56: the
  // handshake was refused, which TLS 1.3 clients see at the handshake or at the first read).
  Reply CurlAs(const std::string& cert, const std::string& path = "sys/health") {
    std::string cmd = "curl -sS --max-time 10 -o " + ShellQuote(Path("body.out")) +
                      " -w '%{http_code}' --cacert " + ShellQuote(Path("server-ca.pem"));
    if (!cert.empty()) {
      cmd += " --cert " + ShellQuote(Path(cert + ".pem")) + " --key " +
             ShellQuote(Path(cert + ".key"));
    }
    std::remove(Path("body.out").c_str());
    CommandResult r = RunCommand(cmd + " " + ShellQuote(server_->addr() + "/v1/" + path));
    if (r.exit_code != 0) return Reply{-r.exit_code, r.output, ""};
    return Reply{std::atoi(r.output.c_str()), ReadFile(Path("body.out")), ""};
  }

  // openssl s_client (TLS 1.3) presenting certificate `cert`, sending GET /v1/sys/health and
  // reading the answer; `extra` adds options such as -sess_out / -sess_in.
  CommandResult SClient(const std::string& cert, const std::string& extra = "") {
    return RunCommand(
        "printf 'GET /v1/sys/health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: "
        "close\\r\\n\\r\\n' | timeout 20 openssl s_client -tls1_3 -ign_eof -connect 127.0.0.1:" +
        port_ + " -CAfile " + ShellQuote(Path("server-ca.pem")) + " -cert " +
        ShellQuote(Path(cert + ".pem")) + " -key " + ShellQuote(Path(cert + ".key")) + " " + extra +
        " 2>&1");
  }

  // The direct identity the listener's verified chain for `cert` maps to: the cert role name
  // from auth/token/lookup-self ("" and a test failure if the call is refused).
  std::string CertRoleOf(const std::string& cert) {
    Reply self = CurlAs(cert, "auth/token/lookup-self");
    EXPECT_EQ(self.status, 200) << cert << ": " << self.body;
    if (self.status != 200) return "";
    json::value v = Parse(self.body);
    EXPECT_EQ(Str(v.at("data").at("display_name")),
              "cert-" + Str(v.at("data").at("meta").at("cert_name")));
    return Str(v.at("data").at("meta").at("cert_name"));
  }

  // A cert role on auth/cert/ trusting `ca_pem` for the workload SPIFFE IDs.
  void WriteCertRole(const std::string& name, const std::string& ca_pem) {
    Reply r = Root("POST", "auth/cert/certs/" + name,
                   json::serialize(json::object{{"certificate", ca_pem},
                                                {"allowed_uri_sans", kWorkloads},
                                                {"token_policies", "workload"}}));
    ASSERT_EQ(r.status, 204) << r.body;
  }

  std::string Path(const std::string& name) const { return dir_.Join(name); }

  core::TempDir dir_;
  std::unique_ptr<WardProcess> server_;
  std::unique_ptr<net::HttpClient> client_;
  std::string port_;
  std::string root_;
};

TEST_F(PkiRotationMtlsTest, OverlappingRootsBothAcceptedThenRetiredRootsLeafRefusedAtHandshake) {
  // The listener requires a certificate: none is refused, the operator's is accepted.
  EXPECT_LT(CurlAs("").status, 0) << "a client without a certificate was served";
  EXPECT_EQ(CurlAs("operator").status, 200);

  // Root A, role "web", leaf LA.
  ASSERT_EQ(Root("POST", "sys/mounts/pki", R"({"type":"pki"})").status, 204);
  Reply root_a = Root("POST", "pki/root/generate/internal",
                      json::serialize(json::object{{"common_name", "Example Root A"},
                                                   {"uri_sans", "spiffe://example.org"},
                                                   {"issuer_name", "root-a"},
                                                   {"ttl", "8760h"}}));
  ASSERT_EQ(root_a.status, 200) << root_a.body;
  const std::string id_a = Str(Parse(root_a.body).at("data").at("issuer_id"));
  const std::string ca_a = Str(Parse(root_a.body).at("data").at("certificate"));
  ASSERT_EQ(Root("POST", "pki/roles/web",
                 json::serialize(json::object{
                     {"allowed_uri_sans", kWorkloads}, {"ttl", "1h"}, {"max_ttl", "24h"}}))
                .status,
            200);
  json::object la = IssueLeaf("la", "spiffe://example.org/ns/prod/sa/old", "10m");
  ASSERT_FALSE(la.empty());
  EXPECT_EQ(Str(la.at("issuing_ca")), ca_a);
  const int64_t la_not_after = la.at("expiration").as_int64();

  // A cert role per root, so the identity a request gets shows which root verified it.
  ASSERT_EQ(Root("POST", "sys/auth/cert", R"({"type":"cert"})").status, 204);
  ASSERT_NO_FATAL_FAILURE(WriteCertRole("gen-a", ca_a));

  Reply last;
  ASSERT_TRUE(PollUntil([&] { return (last = CurlAs("la")).status == 200; }, kTrustDeadline))
      << "LA was never accepted: " << last.status << " " << last.body << "\n"
      << server_->Log();

  // Root B: prepared (published, in the bundle), then activated; leaf LB comes from B.
  Reply prepared = Root("POST", "pki/issuers/prepare-next",
                        json::serialize(json::object{{"common_name", "Example Root B"},
                                                     {"trust_domain", "spiffe://example.org"},
                                                     {"issuer_name", "root-b"},
                                                     {"ttl", "8760h"}}));
  ASSERT_EQ(prepared.status, 200) << prepared.body;
  const std::string id_b = Str(Parse(prepared.body).at("data").at("issuer_id"));
  const std::string ca_b = Str(Parse(prepared.body).at("data").at("certificate"));
  ASSERT_NE(id_a, id_b);
  Reply activated = Root("POST", "pki/issuer/root-b/activate");
  ASSERT_EQ(activated.status, 200) << activated.body;
  EXPECT_EQ(Str(Parse(activated.body).at("data").at("state")), "active");
  EXPECT_EQ(Parse(activated.body).at("data").at("is_default"), true);
  Reply a_now = Root("GET", "pki/issuer/root-a", "");
  ASSERT_EQ(a_now.status, 200) << a_now.body;
  EXPECT_EQ(Str(Parse(a_now.body).at("data").at("state")), "published");
  EXPECT_EQ(Parse(a_now.body).at("data").at("latest_leaf_not_after"), la_not_after);

  json::object lb = IssueLeaf("lb", "spiffe://example.org/ns/prod/sa/new", "1h");
  ASSERT_FALSE(lb.empty());
  EXPECT_EQ(Str(lb.at("issuing_ca")), ca_b);
  ASSERT_NO_FATAL_FAILURE(WriteCertRole("gen-b", ca_b));

  // Overlap: both leaves pass the handshake (curl and openssl) and act with their identity.
  ASSERT_TRUE(PollUntil([&] { return (last = CurlAs("lb")).status == 200; }, kTrustDeadline))
      << "LB was never accepted: " << last.status << " " << last.body << "\n"
      << server_->Log();
  EXPECT_EQ(CurlAs("la").status, 200);
  EXPECT_EQ(CertRoleOf("la"), "gen-a");
  EXPECT_EQ(CertRoleOf("lb"), "gen-b");
  const std::string la_session = Path("la.session");
  CommandResult la_first = SClient("la", "-sess_out " + ShellQuote(la_session));
  EXPECT_TRUE(absl::StrContains(la_first.output, "HTTP/1.1 200 OK")) << la_first.output;
  EXPECT_TRUE(absl::StrContains(la_first.output, "New, TLSv1.3")) << la_first.output;
  CommandResult la_resumed = SClient("la", "-sess_in " + ShellQuote(la_session));
  EXPECT_TRUE(absl::StrContains(la_resumed.output, "Reused, TLSv1.3")) << la_resumed.output;
  EXPECT_TRUE(absl::StrContains(la_resumed.output, "HTTP/1.1 200 OK")) << la_resumed.output;
  CommandResult lb_overlap = SClient("lb");
  EXPECT_TRUE(absl::StrContains(lb_overlap.output, "HTTP/1.1 200 OK")) << lb_overlap.output;

  // Retire A without force: refused while LA is valid, with the runbook's message naming
  // LA's notAfter; nothing changes for the clients.
  Reply refused = Root("POST", "pki/issuer/root-a/retire");
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(Errors(refused),
            (std::vector<std::string>{absl::StrCat(
                "issuer ", id_a, " signed certificates valid until ",
                absl::FormatTime(absl::RFC3339_sec, absl::FromUnixSeconds(la_not_after),
                                 absl::UTCTimeZone()),
                "; retire after that, or force")}));
  EXPECT_EQ(Str(Parse(Root("GET", "pki/issuer/root-a", "").body).at("data").at("state")),
            "published");
  EXPECT_EQ(CurlAs("la").status, 200);

  // Retire A with force. Within the listener's refresh LA is refused at the handshake, with or
  // without its session ticket, and LB is still served.
  Reply forced = Root("POST", "pki/issuer/root-a/retire", R"({"force":true})");
  ASSERT_EQ(forced.status, 200) << forced.body;
  EXPECT_EQ(Str(Parse(forced.body).at("data").at("state")), "retired");
  const absl::Time retired_at = absl::Now();
  ASSERT_TRUE(PollUntil([&] { return (last = CurlAs("la")).status < 0; }, kTrustDeadline))
      << "LA is still accepted after retiring root A\n"
      << server_->Log();
  const absl::Duration took = absl::Now() - retired_at;
  RecordProperty("retire_to_refusal_ms", std::to_string(absl::ToInt64Milliseconds(took)));
  EXPECT_TRUE(last.status == -35 || last.status == -56) << last.status << " " << last.body;
  EXPECT_TRUE(absl::StrContains(server_->Log(), "reason=pki_trust_changed")) << server_->Log();

  Reply lb_after = CurlAs("lb");
  EXPECT_EQ(lb_after.status, 200) << lb_after.body;
  EXPECT_EQ(CertRoleOf("lb"), "gen-b");
  CommandResult lb_s_client = SClient("lb");
  EXPECT_TRUE(absl::StrContains(lb_s_client.output, "HTTP/1.1 200 OK")) << lb_s_client.output;
  CommandResult la_s_client = SClient("la");
  EXPECT_FALSE(absl::StrContains(la_s_client.output, "HTTP/1.1 200")) << la_s_client.output;
  CommandResult la_ticket = SClient("la", "-sess_in " + ShellQuote(la_session));
  EXPECT_FALSE(absl::StrContains(la_ticket.output, "Reused, TLSv1.3")) << la_ticket.output;
  EXPECT_FALSE(absl::StrContains(la_ticket.output, "HTTP/1.1 200")) << la_ticket.output;
  // The operator's static CA is untouched by the PKI trust swap.
  EXPECT_EQ(CurlAs("operator").status, 200);
}

}  // namespace
}  // namespace ward::testing
