// TLS 1.3 session tickets are encrypted with keys kept in the barrier (docs/configuration.md,
// "Session ticket keys"), so a session one `ward server` process began resumes on another
// process over the same storage, seen with `openssl s_client -sess_out` / `-sess_in`.
//
// Two processes cannot hold one data directory at once: each takes an exclusive lock on
// <storage.path>/ward.lock and SqliteBackend must be the file's only writer, so a second
// server exits with "is in use by another ward server" (asserted below). The processes here
// therefore run one after the other on the same storage, as in a rolling restart; what is
// shared is exactly what several nodes over a shared backend would share: the stored keys.

#include <boost/json.hpp>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

constexpr char kSharedKeys[] = "event=ticket_keys_installed shared=true";

class TicketSharingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunCommand("command -v openssl").exit_code != 0) {
      GTEST_FAIL() << "openssl is required (scripts/install-deps.sh installs it)";
    }
    ASSERT_TRUE(WriteSelfSignedServerCert(Path("server.pem"), Path("server.key")).ok());
    std::ofstream(Path("ward.yaml"))
        << "listener:\n  address: 127.0.0.1:0\n  tls_cert_file: " << Path("server.pem")
        << "\n  tls_key_file: " << Path("server.key")
        << "\n  tls_session_resumption: tickets\nstorage:\n  path: " << Path("data")
        << "\nlog_level: debug\n";
  }

  // Starts a server process on the shared config, logging to <name>.log.
  std::unique_ptr<WardProcess> Start(const std::string& name) {
    auto server = WardProcess::StartWithConfig(Path("ward.yaml"), Path(name + ".log"));
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  // Unseals `server` (initialising the storage first if `init`) and waits until its listener
  // uses the barrier's ticket keys.
  void Unseal(WardProcess& server, bool init) {
    std::unique_ptr<net::HttpClient> client = server.Client(Path("server.pem"));
    ASSERT_NE(client, nullptr);
    if (init) {
      Reply r = Call(*client, "PUT", "sys/init", "", R"({"secret_shares":1,"secret_threshold":1})");
      ASSERT_EQ(r.status, 200) << r.body;
      unseal_key_ = std::string(Parse(r.body).at("keys").at(0).as_string());
    }
    Reply r =
        Call(*client, "PUT", "sys/unseal", "", json::serialize(json::object{{"key", unseal_key_}}));
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(
        PollUntil([&] { return absl::StrContains(server.Log(), kSharedKeys); }, absl::Seconds(20)))
        << server.Log();
  }

  // openssl s_client (TLS 1.3) to `server`, sending GET /v1/sys/health and reading the answer;
  // `extra` adds -sess_out / -sess_in.
  CommandResult SClient(const WardProcess& server, const std::string& extra) {
    const std::string port = server.addr().substr(server.addr().rfind(':') + 1);
    return RunCommand(
        "printf 'GET /v1/sys/health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: "
        "close\\r\\n\\r\\n' | timeout 20 openssl s_client -tls1_3 -ign_eof -connect 127.0.0.1:" +
        port + " -CAfile " + ShellQuote(Path("server.pem")) + " " + extra + " 2>&1");
  }

  std::string Path(const std::string& name) const { return dir_.Join(name); }

  core::TempDir dir_;
  std::string unseal_key_;
};

TEST_F(TicketSharingTest, SecondProcessOnTheSameDataDirectoryIsRefused) {
  std::unique_ptr<WardProcess> a = Start("a");
  ASSERT_NE(a, nullptr);
  CommandResult b = RunCommand("timeout 60 " + ShellQuote(WardBinary()) + " server --config " +
                               ShellQuote(Path("ward.yaml")));
  EXPECT_EQ(b.exit_code, 1) << b.output;
  EXPECT_TRUE(absl::StrContains(
      b.output, "data directory " + Path("data") + " is in use by another ward server"))
      << b.output;
}

TEST_F(TicketSharingTest, SessionFromOneProcessResumesOnTheNextOverTheSameStorage) {
  const std::string unsealed_session = Path("unsealed.session");
  const std::string sealed_session = Path("sealed.session");
  {
    std::unique_ptr<WardProcess> a = Start("a");
    ASSERT_NE(a, nullptr);
    // Sealed: the process's own random keys; this session cannot outlive it.
    CommandResult sealed = SClient(*a, "-sess_out " + ShellQuote(sealed_session));
    ASSERT_TRUE(absl::StrContains(sealed.output, "New, TLSv1.3")) << sealed.output;
    ASSERT_NO_FATAL_FAILURE(Unseal(*a, /*init=*/true));
    CommandResult first = SClient(*a, "-sess_out " + ShellQuote(unsealed_session));
    ASSERT_TRUE(absl::StrContains(first.output, "New, TLSv1.3")) << first.output;
    ASSERT_TRUE(absl::StrContains(first.output, "HTTP/1.1 200 OK")) << first.output;
    CommandResult again = SClient(*a, "-sess_in " + ShellQuote(unsealed_session));
    EXPECT_TRUE(absl::StrContains(again.output, "Reused, TLSv1.3")) << again.output;
    EXPECT_EQ(a->Terminate(), 0);
  }

  std::unique_ptr<WardProcess> b = Start("b");
  ASSERT_NE(b, nullptr);
  // Sealed, b has keys of its own: a's ticket does not decrypt, a full handshake follows.
  CommandResult before = SClient(*b, "-sess_in " + ShellQuote(unsealed_session));
  EXPECT_TRUE(absl::StrContains(before.output, "New, TLSv1.3")) << before.output;
  EXPECT_FALSE(absl::StrContains(before.output, "Reused")) << before.output;

  ASSERT_NO_FATAL_FAILURE(Unseal(*b, /*init=*/false));
  CommandResult resumed = SClient(*b, "-sess_in " + ShellQuote(unsealed_session));
  EXPECT_TRUE(absl::StrContains(resumed.output, "Reused, TLSv1.3")) << resumed.output;
  EXPECT_TRUE(absl::StrContains(resumed.output, "HTTP/1.1 200 OK")) << resumed.output;
  // The session a began while sealed used a's process-local keys: never resumed elsewhere.
  CommandResult local = SClient(*b, "-sess_in " + ShellQuote(sealed_session));
  EXPECT_FALSE(absl::StrContains(local.output, "Reused")) << local.output;
  EXPECT_TRUE(absl::StrContains(local.output, "HTTP/1.1 200 OK")) << local.output;
}

}  // namespace
}  // namespace ward::testing
