// Mutual TLS on the real listener, spoken to with standard tools: curl and openssl s_client
// with client certificates, CRL reload on SIGHUP and on file change, TLS 1.3 session
// resumption (-sess_out / -sess_in), the dev CA trusted for client certificates, and the CLI's
// -client-cert/-client-key.

#include <signal.h>

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/testing/temp_dir.h"
#include "crypto/testing/test_pki.h"
#include "crypto/x509.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

void WriteFile(const std::string& path, std::string_view text) {
  // Replaced atomically, as an operator should (docs/configuration.md).
  absl::Status written = crypto::testing::WriteFile(path, text);
  ASSERT_TRUE(written.ok()) << written;
}

// A PEM CRL signed by `ca` revoking `revoked_pems`.
std::string MakeCrl(const crypto::PemKeyPair& ca, const std::vector<std::string>& revoked_pems) {
  const absl::Time now = absl::Now();
  absl::StatusOr<std::string> crl =
      crypto::testing::MakeCrlPem(ca, revoked_pems, now - absl::Minutes(1), now + absl::Hours(1));
  EXPECT_TRUE(crl.ok()) << crl.status();
  return crl.ok() ? *crl : "";
}

// Waits (bounded) for the server to do something it only reports in its log.
bool Eventually(const std::function<bool()>& condition, absl::Duration limit = absl::Seconds(20)) {
  const absl::Time give_up = absl::Now() + limit;
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const absl::Time now = absl::Now();
    auto server = crypto::testing::WriteLocalhostTls(dir_.path(), now);
    ASSERT_TRUE(server.ok()) << server.status();
    for (const char* name : {"client-ca", "rogue-ca"}) {
      auto ca = crypto::testing::WriteCa(dir_.path(), name, now, absl::Hours(2));
      ASSERT_TRUE(ca.ok()) << ca.status();
      cas_.emplace(name, std::move(*ca));
    }
    for (auto [name, ca] : {std::pair{"alice", "client-ca"}, std::pair{"bob", "client-ca"},
                            std::pair{"mallory", "rogue-ca"}}) {
      auto cert = crypto::testing::WriteClientCertificate(dir_.path(), cas_.at(ca), name, now,
                                                          absl::Hours(1));
      ASSERT_TRUE(cert.ok()) << cert.status();
      certs_[name] = cert->cert_pem;
    }
    WriteFile(dir_.Join("crl.pem"), MakeCrl(cas_.at("client-ca"), {}));
  }

  void StartServer() {
    WriteFile(dir_.Join("ward.yaml"),
              "listener:\n  address: 127.0.0.1:0\n  tls_cert_file: " + dir_.Join("server.pem") +
                  "\n  tls_key_file: " + dir_.Join("server.key") +
                  "\n  tls_client_ca_file: " + dir_.Join("client-ca.pem") +
                  "\n  tls_require_client_cert: true\n  tls_crl_file: " + dir_.Join("crl.pem") +
                  "\nstorage:\n  path: " + dir_.Join("data") + "\nlog_level: debug\n");
    auto server = WardProcess::StartWithConfig(dir_.Join("ward.yaml"), dir_.Join("server.log"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    port_ = server_->addr().substr(server_->addr().rfind(':') + 1);
  }

  // curl GET /v1/sys/seal-status presenting certificate `name` ("" = none).
  CommandResult Curl(const std::string& name) {
    std::string cmd = "curl -sS --max-time 20 --cacert " + ShellQuote(dir_.Join("server-ca.pem"));
    if (!name.empty()) {
      cmd += " --cert " + ShellQuote(dir_.Join(name + ".pem")) + " --key " +
             ShellQuote(dir_.Join(name + ".key"));
    }
    return RunCommand(cmd + " " + ShellQuote(server_->addr() + "/v1/sys/seal-status"));
  }

  // openssl s_client (TLS 1.3) presenting certificate `name`, sending one request and reading
  // the answer; `extra` adds options such as -sess_out / -sess_in.
  CommandResult SClient(const std::string& name, const std::string& extra = "") {
    return RunCommand(
        "printf 'GET /v1/sys/seal-status HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: "
        "close\\r\\n\\r\\n' | timeout 20 openssl s_client -tls1_3 -ign_eof -connect 127.0.0.1:" +
        port_ + " -CAfile " + ShellQuote(dir_.Join("server-ca.pem")) + " -cert " +
        ShellQuote(dir_.Join(name + ".pem")) + " -key " + ShellQuote(dir_.Join(name + ".key")) +
        " " + extra + " 2>&1");
  }

  core::TempDir dir_;
  std::map<std::string, crypto::PemKeyPair> cas_;
  std::map<std::string, std::string> certs_;
  std::unique_ptr<WardProcess> server_;
  std::string port_;
};

TEST_F(MtlsTest, CurlAndOpensslNeedATrustedClientCertificate) {
  StartServer();
  CommandResult with_cert = Curl("alice");
  EXPECT_EQ(with_cert.exit_code, 0) << with_cert.output;
  EXPECT_NE(with_cert.output.find("\"sealed\""), std::string::npos) << with_cert.output;

  EXPECT_NE(Curl("").exit_code, 0);
  EXPECT_NE(Curl("mallory").exit_code, 0);

  CommandResult s_client = SClient("alice");
  EXPECT_NE(s_client.output.find("HTTP/1.1 200 OK"), std::string::npos) << s_client.output;
  CommandResult rogue = SClient("mallory");
  EXPECT_EQ(rogue.output.find("HTTP/1.1 200 OK"), std::string::npos) << rogue.output;
}

TEST_F(MtlsTest, RevokedCertificateIsRefusedAfterSighupReload) {
  StartServer();
  ASSERT_EQ(Curl("bob").exit_code, 0);
  WriteFile(dir_.Join("crl.pem"), MakeCrl(cas_.at("client-ca"), {certs_["bob"]}));
  ASSERT_EQ(::kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(Eventually([&] {
    return server_->Log().find("event=tls_reloaded reason=sighup") != std::string::npos;
  })) << server_->Log();
  CommandResult bob = Curl("bob");
  EXPECT_NE(bob.exit_code, 0) << bob.output;
  EXPECT_EQ(Curl("alice").exit_code, 0);
}

TEST_F(MtlsTest, ChangedCrlFileIsPickedUpWithoutSignal) {
  StartServer();
  ASSERT_EQ(Curl("bob").exit_code, 0);
  WriteFile(dir_.Join("crl.pem"), MakeCrl(cas_.at("client-ca"), {certs_["bob"]}));
  ASSERT_TRUE(Eventually([&] {
    return server_->Log().find("event=tls_reloaded reason=file_changed") != std::string::npos;
  })) << server_->Log();
  EXPECT_NE(Curl("bob").exit_code, 0);

  // A broken file is reported and the previous settings stay in force.
  WriteFile(dir_.Join("crl.pem"), "garbage");
  ASSERT_TRUE(Eventually([&] {
    return server_->Log().find("event=tls_reload_failed") != std::string::npos;
  })) << server_->Log();
  EXPECT_NE(Curl("bob").exit_code, 0);
  EXPECT_EQ(Curl("alice").exit_code, 0);
}

TEST_F(MtlsTest, OpensslResumesTheTls13Session) {
  StartServer();
  const std::string session = dir_.Join("session.pem");
  CommandResult first = SClient("alice", "-sess_out " + ShellQuote(session));
  ASSERT_NE(first.output.find("HTTP/1.1 200 OK"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("New, TLSv1.3"), std::string::npos) << first.output;
  CommandResult second = SClient("alice", "-sess_in " + ShellQuote(session));
  EXPECT_NE(second.output.find("Reused, TLSv1.3"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("HTTP/1.1 200 OK"), std::string::npos) << second.output;

  // Once alice is revoked her session is not resumed (and the full handshake fails).
  WriteFile(dir_.Join("crl.pem"), MakeCrl(cas_.at("client-ca"), {certs_["alice"]}));
  ASSERT_EQ(::kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(Eventually([&] {
    return server_->Log().find("event=tls_reloaded reason=sighup") != std::string::npos;
  }));
  CommandResult third = SClient("alice", "-sess_in " + ShellQuote(session));
  EXPECT_EQ(third.output.find("Reused, TLSv1.3"), std::string::npos) << third.output;
  EXPECT_EQ(third.output.find("HTTP/1.1 200 OK"), std::string::npos) << third.output;
}

TEST_F(MtlsTest, CliPresentsTheClientCertificate) {
  StartServer();
  const std::string base = WardBinary() + " status -address=" + ShellQuote(server_->addr()) +
                           " -ca-cert=" + ShellQuote(dir_.Join("server-ca.pem"));
  CommandResult with_flags =
      RunCommand(base + " -client-cert=" + ShellQuote(dir_.Join("alice.pem")) +
                 " -client-key=" + ShellQuote(dir_.Join("alice.key")) + " 2>&1");
  EXPECT_NE(with_flags.exit_code, 1) << with_flags.output;
  EXPECT_NE(with_flags.output.find("ealed"), std::string::npos) << with_flags.output;

  CommandResult with_env =
      RunCommand("WARD_CLIENT_CERT=" + ShellQuote(dir_.Join("alice.pem")) +
                 " VAULT_CLIENT_KEY=" + ShellQuote(dir_.Join("alice.key")) + " " + base + " 2>&1");
  EXPECT_NE(with_env.exit_code, 1) << with_env.output;

  CommandResult without = RunCommand(base + " 2>&1");
  EXPECT_EQ(without.exit_code, 1) << without.output;
  EXPECT_NE(without.output.find("Error"), std::string::npos) << without.output;
}

TEST_F(MtlsTest, DevServerTrustsItsCaForClientCertificates) {
  auto dev = WardProcess::StartDev(dir_.Join("dev"), {"--dev-tls-cert-dir=" + dir_.Join("devtls")});
  ASSERT_TRUE(dev.ok()) << dev.status();
  const std::string url = (*dev)->addr() + "/v1/sys/health";
  const std::string ca = ShellQuote((*dev)->ca_cert());
  // The dev server certificate is issued by the dev CA and allows client use.
  CommandResult dev_cert =
      RunCommand("curl -sS --max-time 20 --cacert " + ca + " --cert " +
                 ShellQuote(dir_.Join("devtls/server.pem")) + " --key " +
                 ShellQuote(dir_.Join("devtls/server-key.pem")) + " " + ShellQuote(url));
  EXPECT_EQ(dev_cert.exit_code, 0) << dev_cert.output;
  // Certificates are requested, not required.
  EXPECT_EQ(RunCommand("curl -sS --max-time 20 --cacert " + ca + " " + ShellQuote(url)).exit_code,
            0);
  // One from another CA is refused.
  CommandResult rogue = RunCommand("curl -sS --max-time 20 --cacert " + ca + " --cert " +
                                   ShellQuote(dir_.Join("mallory.pem")) + " --key " +
                                   ShellQuote(dir_.Join("mallory.key")) + " " + ShellQuote(url));
  EXPECT_NE(rogue.exit_code, 0) << rogue.output;
}

}  // namespace
}  // namespace ward::testing
