// Audit devices declared in ward.yaml, and log rotation on SIGHUP, against a real
// `ward server --config`.

#include <signal.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json::object> Lines(const std::string& text) {
  std::vector<json::object> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line).as_object());
  return out;
}

// Waits (up to 20 s) for `done`, checking every 20 ms: the server reacts to a signal
// asynchronously and has no other way to say it is done.
template <typename Pred>
bool Eventually(Pred done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

class AuditConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = dir_.Join("cert.pem");
    key_ = dir_.Join("key.pem");
    ASSERT_EQ(WriteSelfSignedServerCert(cert_, key_), absl::OkStatus());
    log_ = dir_.Join("audit.log");
  }

  std::string Config(const std::string& audit) {
    return "listener:\n  address: 127.0.0.1:0\n  tls_cert_file: " + cert_ +
           "\n  tls_key_file: " + key_ + "\nstorage:\n  path: " + dir_.Join("data") +
           "\nlog_level: debug\n" + audit;
  }
  std::string AuditConfig() {
    return "audit:\n  - type: file\n    path: trail\n    description: from ward.yaml\n"
           "    options:\n      file_path: " +
           log_ + "\n";
  }

  // Starts the server with `config`, initialising it (one share) on first use, and unseals.
  void StartAndUnseal(const std::string& config) {
    WriteFile(dir_.Join("ward.yaml"), config);
    auto server = WardProcess::StartWithConfig(dir_.Join("ward.yaml"), dir_.Join("server.log"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->Client(cert_);
    ASSERT_NE(client_, nullptr);
    if (unseal_key_.empty()) {
      Reply init = Call(*client_, "PUT", "sys/init", "",
                        R"({"secret_shares":1,"secret_threshold":1})");
      ASSERT_EQ(init.status, 200) << init.body;
      json::value v = Parse(init.body);
      unseal_key_ = std::string(v.at("keys").at(0).as_string());
      root_ = std::string(v.at("root_token").as_string());
    }
    Reply u = Call(*client_, "PUT", "sys/unseal", "", R"({"key":")" + unseal_key_ + R"("})");
    ASSERT_EQ(u.status, 200) << u.body << "\n" << server_->Log();
    ASSERT_EQ(Parse(u.body).at("sealed"), false);
  }

  void WriteSecret(const std::string& value) {
    Reply w = Call(*client_, "PUT", "secret/data/app", root_,
                   R"({"data":{"password":")" + value + R"("}})");
    ASSERT_EQ(w.status, 200) << w.body;
  }

  json::object ListDevices() {
    Reply r = Call(*client_, "GET", "sys/audit", root_);
    EXPECT_EQ(r.status, 200) << r.body;
    json::value v = Parse(r.body);
    return v.is_object() && v.as_object().contains("data") ? v.at("data").as_object()
                                                           : json::object{};
  }

  CommandResult Verify(const std::string& key, const std::string& file) {
    return VerifyFiles(key, {file});
  }
  CommandResult VerifyFiles(const std::string& key, const std::vector<std::string>& files) {
    std::string command = ShellQuote(WardBinary()) + " audit verify --key " + key;
    for (const std::string& f : files) command += " " + ShellQuote(f);
    return RunCommand(command);
  }

  core::TempDir dir_;
  std::string cert_, key_, log_;
  std::string unseal_key_, root_;
  std::unique_ptr<WardProcess> server_;
  std::unique_ptr<net::HttpClient> client_;
};

TEST_F(AuditConfigTest, ConfiguredDeviceLogsAndSighupRotatesTheFile) {
  StartAndUnseal(Config(AuditConfig()));
  json::object devices = ListDevices();
  ASSERT_TRUE(devices.contains("trail/")) << json::serialize(devices);
  EXPECT_EQ(devices.at("trail/").at("description"), "from ward.yaml");
  EXPECT_EQ(devices.at("trail/").at("options").at("file_path"), json::value(log_));
  std::string key(devices.at("trail/").at("checkpoint_public_key").as_string());

  WriteSecret("before-rotation");
  std::vector<json::object> before = Lines(ReadFile(log_));
  ASSERT_FALSE(before.empty());
  // The unseal that opened the device is logged, then the list and the write.
  bool saw_write = false;
  for (const json::object& l : before) {
    if (l.at("type") == "request" && l.at("request").at("path") == "secret/data/app") {
      saw_write = true;
    }
  }
  EXPECT_TRUE(saw_write) << ReadFile(log_);

  // Rotate: rename the file away, then SIGHUP.
  std::string rotated = log_ + ".1";
  ASSERT_EQ(std::rename(log_.c_str(), rotated.c_str()), 0);
  ASSERT_EQ(::kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(Eventually([&] {
    struct stat st {};
    return ::stat(log_.c_str(), &st) == 0 && st.st_size > 0;
  })) << server_->Log();
  const std::string old_contents = ReadFile(rotated);

  WriteSecret("after-rotation");
  ASSERT_EQ(server_->Terminate(), 0);  // closes the device: final checkpoint in the new file

  // The rotated file was not touched after the reopen, and it ends signed.
  EXPECT_EQ(ReadFile(rotated), old_contents);
  std::vector<json::object> old_lines = Lines(old_contents);
  ASSERT_FALSE(old_lines.empty());
  EXPECT_EQ(old_lines.back().at("type"), "checkpoint");
  // The new file continues the chain: a rotation line right after the old file's last seq.
  std::vector<json::object> new_lines = Lines(ReadFile(log_));
  ASSERT_GE(new_lines.size(), 3u);
  EXPECT_EQ(new_lines.front().at("type"), "rotation");
  EXPECT_EQ(new_lines.front().at("seq").to_number<uint64_t>(),
            old_lines.back().at("seq").to_number<uint64_t>() + 1);
  bool new_write = false;
  for (const json::object& l : new_lines) {
    if (l.at("type") == "request" && l.at("request").at("path") == "secret/data/app") {
      new_write = true;
    }
  }
  EXPECT_TRUE(new_write) << ReadFile(log_);
  EXPECT_EQ(new_lines.back().at("type"), "checkpoint");

  CommandResult v_old = Verify(key, rotated);
  EXPECT_EQ(v_old.exit_code, 0) << v_old.output;
  CommandResult v_new = Verify(key, log_);
  EXPECT_EQ(v_new.exit_code, 0) << v_new.output;
  // Both files at once, in rotation order: they link up; in the wrong order they do not.
  CommandResult v_both = VerifyFiles(key, {rotated, log_});
  EXPECT_EQ(v_both.exit_code, 0) << v_both.output;
  EXPECT_NE(v_both.output.find("follow each other"), std::string::npos) << v_both.output;
  CommandResult v_swapped = VerifyFiles(key, {log_, rotated});
  EXPECT_EQ(v_swapped.exit_code, 1) << v_swapped.output;
  EXPECT_NE(v_swapped.output.find("does not continue"), std::string::npos) << v_swapped.output;

  // The file never holds the secret values.
  EXPECT_EQ(old_contents.find("before-rotation"), std::string::npos);
  EXPECT_EQ(ReadFile(log_).find("after-rotation"), std::string::npos);
}

TEST_F(AuditConfigTest, ConfiguredDeviceIsEnabledOnceAcrossRestarts) {
  StartAndUnseal(Config(AuditConfig()));
  std::string key(ListDevices().at("trail/").at("checkpoint_public_key").as_string());
  ASSERT_EQ(server_->Terminate(), 0);
  server_.reset();

  // Same config: the stored device is reopened (same keys), the file continues.
  StartAndUnseal(Config(AuditConfig()));
  json::object devices = ListDevices();
  ASSERT_EQ(devices.size(), 1u) << json::serialize(devices);
  EXPECT_EQ(devices.at("trail/").at("checkpoint_public_key"), json::value(key));
  ASSERT_EQ(server_->Terminate(), 0);
  server_.reset();
  CommandResult v = Verify(key, log_);
  EXPECT_EQ(v.exit_code, 0) << v.output;

  // The stored device wins over a config that now names another file (a warning is logged).
  std::string other = dir_.Join("other.log");
  std::string changed = "audit:\n  - type: file\n    path: trail\n    options: {file_path: " +
                        other + "}\n";
  StartAndUnseal(Config(changed));
  devices = ListDevices();
  EXPECT_EQ(devices.at("trail/").at("options").at("file_path"), json::value(log_));
  struct stat st {};
  EXPECT_NE(::stat(other.c_str(), &st), 0);
  EXPECT_NE(server_->Log().find("audit_config_differs"), std::string::npos) << server_->Log();
}

TEST_F(AuditConfigTest, UnknownAuditOptionExitsNamingTheField) {
  WriteFile(dir_.Join("bad.yaml"),
            Config("audit:\n  - type: file\n    path: trail\n    options:\n      file_path: " +
                   log_ + "\n      hmac_accessor: false\n"));
  CommandResult r =
      RunCommand(ShellQuote(WardBinary()) + " server --config " + ShellQuote(dir_.Join("bad.yaml")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("audit[0].options.hmac_accessor: unknown field"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ward::testing
