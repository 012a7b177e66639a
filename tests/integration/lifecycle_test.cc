// Production mode (`ward server --config`): config validation, init, unseal, seal, SIGTERM.

#include <fstream>

#include <boost/json.hpp>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = dir_.Join("cert.pem");
    key_ = dir_.Join("key.pem");
    ASSERT_EQ(WriteSelfSignedServerCert(cert_, key_), absl::OkStatus());
  }

  std::string Config(const std::string& extra_listener = "") {
    return "listener:\n  address: 127.0.0.1:0\n  tls_cert_file: " + cert_ + "\n  tls_key_file: " + key_ +
           "\n" + extra_listener + "storage:\n  path: " + dir_.Join("data") + "\nlog_level: debug\n";
  }

  core::TempDir dir_;
  std::string cert_, key_;
};

TEST_F(LifecycleTest, BadConfigExitsNonZeroNamingTheField) {
  WriteFile(dir_.Join("bad.yaml"), "listener:\n  address: 127.0.0.1:0\n  tls_key_file: " + key_ +
                                       "\nstorage:\n  path: /tmp/x\n");
  CommandResult r = RunCommand(WardBinary() + " server --config " + ShellQuote(dir_.Join("bad.yaml")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("listener.tls_cert_file"), std::string::npos) << r.output;

  WriteFile(dir_.Join("typo.yaml"), Config() + "storgae: {}\n");
  r = RunCommand(WardBinary() + " server --config " + ShellQuote(dir_.Join("typo.yaml")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("storgae"), std::string::npos) << r.output;

  // A certificate file that does not exist fails before serving, naming the file.
  WriteFile(dir_.Join("nocert.yaml"),
            "listener:\n  address: 127.0.0.1:0\n  tls_cert_file: /nonexistent/cert.pem\n  tls_key_file: " +
                key_ + "\nstorage:\n  path: " + dir_.Join("data2") + "\n");
  r = RunCommand(WardBinary() + " server --config " + ShellQuote(dir_.Join("nocert.yaml")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("/nonexistent/cert.pem"), std::string::npos) << r.output;
}

TEST_F(LifecycleTest, InitUnsealSealAndRestart) {
  WriteFile(dir_.Join("ward.yaml"), Config());
  auto server = WardProcess::StartWithConfig(dir_.Join("ward.yaml"), dir_.Join("server.log"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client(cert_);
  ASSERT_NE(client, nullptr);

  // Uninitialised: health 501, everything else but init/unseal/seal-status 503.
  EXPECT_EQ(Call(*client, "GET", "sys/health", "").status, 501);
  EXPECT_EQ(Call(*client, "GET", "sys/health?uninitcode=200", "").status, 200);
  EXPECT_EQ(Parse(Call(*client, "GET", "sys/init", "").body).at("initialized"), false);
  EXPECT_EQ(Call(*client, "GET", "secret/data/x", "anything").status, 503);

  EXPECT_EQ(Call(*client, "PUT", "sys/init", "", R"({"secret_shares":3,"secret_threshold":4})").status, 400);
  Reply init = Call(*client, "PUT", "sys/init", "", R"({"secret_shares":3,"secret_threshold":2})");
  ASSERT_EQ(init.status, 200) << init.body;
  json::value iv = Parse(init.body);
  ASSERT_EQ(iv.at("keys").as_array().size(), 3u);
  ASSERT_EQ(iv.at("keys_base64").as_array().size(), 3u);
  std::string root(iv.at("root_token").as_string());
  EXPECT_EQ(Call(*client, "PUT", "sys/init", "", R"({"secret_shares":1,"secret_threshold":1})").status, 400);

  // Sealed after init.
  EXPECT_EQ(Call(*client, "GET", "sys/health", "").status, 503);
  Reply sealed = Call(*client, "GET", "secret/data/x", root);
  EXPECT_EQ(sealed.status, 503);
  EXPECT_NE(sealed.body.find("Vault is sealed"), std::string::npos);

  // Unseal with two shares: one hex, one base64.
  Reply u1 = Call(*client, "PUT", "sys/unseal", "",
                  R"({"key":")" + std::string(iv.at("keys").at(0).as_string()) + R"("})");
  ASSERT_EQ(u1.status, 200) << u1.body;
  EXPECT_EQ(Parse(u1.body).at("progress"), 1);
  EXPECT_EQ(Parse(u1.body).at("sealed"), true);
  Reply u2 = Call(*client, "PUT", "sys/unseal", "",
                  R"({"key":")" + std::string(iv.at("keys_base64").at(2).as_string()) + R"("})");
  ASSERT_EQ(u2.status, 200) << u2.body;
  EXPECT_EQ(Parse(u2.body).at("sealed"), false);
  EXPECT_EQ(Call(*client, "GET", "sys/health", "").status, 200);

  ASSERT_EQ(Call(*client, "PUT", "secret/data/x", root, R"({"data":{"v":"persisted"}})").status, 200);

  // Seal, then the API refuses, seal-status still answers.
  EXPECT_EQ(Call(*client, "PUT", "sys/seal", root).status, 204);
  EXPECT_EQ(Call(*client, "GET", "secret/data/x", root).status, 503);
  EXPECT_EQ(Parse(Call(*client, "GET", "sys/seal-status", "").body).at("sealed"), true);

  // A bad share is rejected with a clear error.
  Reply bad = Call(*client, "PUT", "sys/unseal", "", R"({"key":"zz-not-a-key"})");
  EXPECT_EQ(bad.status, 400) << bad.body;

  // Restart: data persists, the server comes back sealed and the shares open it.
  EXPECT_EQ((*server)->Terminate(), 0);
  server = WardProcess::StartWithConfig(dir_.Join("ward.yaml"), dir_.Join("server.log"));
  ASSERT_TRUE(server.ok()) << server.status();
  client = (*server)->Client(cert_);
  EXPECT_EQ(Call(*client, "GET", "sys/health", "").status, 503);
  for (int i : {0, 1}) {
    ASSERT_EQ(Call(*client, "PUT", "sys/unseal", "",
                   R"({"key":")" + std::string(iv.at("keys").at(i).as_string()) + R"("})")
                  .status,
              200);
  }
  Reply r = Call(*client, "GET", "secret/data/x", root);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r.body).at("data").at("data").at("v"), "persisted");
}

TEST_F(LifecycleTest, SmallBodyLimitFromConfig) {
  WriteFile(dir_.Join("ward.yaml"), Config("  max_request_size: 1024\n"));
  auto server = WardProcess::StartWithConfig(dir_.Join("ward.yaml"), dir_.Join("server.log"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client(cert_);
  Reply r = Call(*client, "PUT", "sys/init", "", std::string(2048, ' '));
  EXPECT_EQ(r.status, 413);
}

TEST_F(LifecycleTest, EventLoopsFromConfigAndDevFlag) {
  WriteFile(dir_.Join("ward.yaml"), Config("  event_loops: 3\n"));
  auto server = WardProcess::StartWithConfig(dir_.Join("ward.yaml"), dir_.Join("server.log"));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_NE((*server)->Log().find("event=http_started"), std::string::npos) << (*server)->Log();
  EXPECT_NE((*server)->Log().find("event_loops=3"), std::string::npos) << (*server)->Log();
  Reply health = Call(*(*server)->Client(cert_), "GET", "sys/health", "");
  EXPECT_EQ(health.status, 501);  // not initialised, but served
  EXPECT_EQ((*server)->Terminate(), 0);

  // Dev mode takes the count as a flag.
  auto dev = WardProcess::StartDev(dir_.Join("dev"), {"--dev-event-loops=2"});
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_NE((*dev)->Log().find("event_loops=2"), std::string::npos) << (*dev)->Log();
  EXPECT_EQ(Call(*(*dev)->Client(), "GET", "sys/health", "").status, 200);
  (*dev)->Terminate();

  CommandResult r = RunCommand(WardBinary() + " server --dev --dev-event-loops=0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--dev-event-loops"), std::string::npos) << r.output;
  WriteFile(dir_.Join("zero.yaml"), Config("  event_loops: 0\n"));
  r = RunCommand(WardBinary() + " server --config " + ShellQuote(dir_.Join("zero.yaml")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("listener.event_loops: must be an integer from 1 to 1024"),
            std::string::npos)
      << r.output;
}

TEST_F(LifecycleTest, SigtermExitsCleanly) {
  WriteFile(dir_.Join("ward.yaml"), Config());
  auto server = WardProcess::StartWithConfig(dir_.Join("ward.yaml"), dir_.Join("server.log"));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->Terminate(), 0);
}

}  // namespace
}  // namespace ward::testing
