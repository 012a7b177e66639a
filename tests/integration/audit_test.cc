// Audit devices against a real `ward server --dev`: records, hashing, verify, fail closed.

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

constexpr char kRootToken[] = "audit-root-token-value";
constexpr char kSecret[] = "s3cr3t-value-never-in-the-log";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json::object> Records(const std::string& text) {
  std::vector<json::object> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    json::value v = json::parse(line);
    out.push_back(v.as_object());
  }
  return out;
}

// The records of `type` ("request"/"response") for `operation` on `path`.
std::vector<json::object> Find(const std::vector<json::object>& records, const std::string& type,
                               const std::string& operation, const std::string& path) {
  std::vector<json::object> out;
  for (const json::object& r : records) {
    if (r.at("type") != json::value(type)) continue;
    const json::object& req = r.at("request").as_object();
    if (req.at("path") == json::value(path) && req.at("operation") == json::value(operation)) {
      out.push_back(r);
    }
  }
  return out;
}

CommandResult Verify(const std::string& args) {
  return RunCommand(ShellQuote(WardBinary()) + " audit verify " + args);
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = WardProcess::StartDev(dir_.Join("data"),
                                   {std::string("--dev-root-token-id=") + kRootToken});
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::move(*p);
    client_ = server_->Client();
  }
  Reply Root(const std::string& method, const std::string& path, const std::string& body = "") {
    return Call(*client_, method, path, kRootToken, body);
  }
  void Enable(const std::string& name, const std::string& file) {
    Reply r = Root(
        "PUT", "sys/audit/" + name,
        json::serialize(json::object{
            {"type", "file"}, {"description", "test log"}, {"options", {{"file_path", file}}}}));
    ASSERT_EQ(r.status, 204) << r.body;
  }

  core::TempDir dir_;
  std::unique_ptr<WardProcess> server_;
  std::unique_ptr<net::HttpClient> client_;
};

TEST_F(AuditTest, RecordsRequestsAndResponsesWithHashedSecretsAndVerifies) {
  std::string log = dir_.Join("audit.log");
  Enable("file", log);

  Reply list = Root("GET", "sys/audit");
  ASSERT_EQ(list.status, 200) << list.body;
  json::object entry = json::parse(list.body).at("file/").as_object();
  EXPECT_EQ(entry.at("type"), "file");
  EXPECT_EQ(entry.at("path"), "file/");
  EXPECT_EQ(entry.at("description"), "test log");
  EXPECT_EQ(entry.at("options").at("file_path"), json::value(log));
  std::string key(entry.at("checkpoint_public_key").as_string());
  ASSERT_EQ(key.size(), 64u);

  ASSERT_EQ(
      Root("PUT", "secret/data/app", absl::StrCat(R"({"data":{"password":")", kSecret, R"("}})"))
          .status,
      200);
  Reply read = Root("GET", "secret/data/app");
  ASSERT_EQ(read.status, 200);
  EXPECT_TRUE(absl::StrContains(read.body, kSecret));
  EXPECT_EQ(Call(*client_, "GET", "secret/data/app", "wrong-token").status, 403);
  EXPECT_EQ(Call(*client_, "GET", "sys/health", "").status, 200);  // exempt

  Reply hashed =
      Root("PUT", "sys/audit-hash/file", absl::StrCat(R"({"input":")", kSecret, R"("})"));
  ASSERT_EQ(hashed.status, 200) << hashed.body;
  std::string hash(json::parse(hashed.body).at("data").at("hash").as_string());
  ASSERT_TRUE(absl::StartsWith(hash, "hmac-sha256:"));

  std::string text = ReadFile(log);
  EXPECT_FALSE(absl::StrContains(text, kSecret));
  EXPECT_FALSE(absl::StrContains(text, kRootToken));
  EXPECT_FALSE(absl::StrContains(text, "wrong-token"));
  EXPECT_FALSE(absl::StrContains(text, "sys/health"));
  std::vector<json::object> records = Records(text);

  auto write_req = Find(records, "request", "update", "secret/data/app");
  auto write_resp = Find(records, "response", "update", "secret/data/app");
  ASSERT_EQ(write_req.size(), 1u);
  ASSERT_EQ(write_resp.size(), 1u);
  EXPECT_EQ(write_req[0].at("request").at("data").at("data").at("password"), json::value(hash));
  EXPECT_EQ(write_req[0].at("request").at("mount_type"), "kv");
  EXPECT_EQ(write_req[0].at("auth").at("display_name"), "root");
  EXPECT_EQ(write_resp[0].at("response").at("data").at("version"), 1);  // numbers stay

  auto read_req = Find(records, "request", "read", "secret/data/app");
  auto read_resp = Find(records, "response", "read", "secret/data/app");
  ASSERT_EQ(read_req.size(), 2u);  // root, then the wrong token
  ASSERT_EQ(read_resp.size(), 2u);
  EXPECT_EQ(read_resp[0].at("response").at("data").at("data").at("password"), json::value(hash));
  EXPECT_EQ(read_resp[1].at("error"), "permission denied");
  EXPECT_TRUE(read_req[1].at("auth").as_object().empty());
  // The audit-hash request carries the secret as input: hashed too.
  auto hash_req = Find(records, "request", "update", "sys/audit-hash/file");
  ASSERT_EQ(hash_req.size(), 1u);
  EXPECT_EQ(hash_req[0].at("request").at("data").at("input"), json::value(hash));

  // A live file has records after its last checkpoint.
  CommandResult live = Verify(ShellQuote(log) + " --key " + key);
  EXPECT_EQ(live.exit_code, 1) << live.output;
  EXPECT_TRUE(absl::StrContains(live.output, "open-tail")) << live.output;
  CommandResult ok_live = Verify(ShellQuote(log) + " --allow-open-tail --key " + key);
  EXPECT_EQ(ok_live.exit_code, 0) << ok_live.output;

  // Disabling closes the file with a signed checkpoint.
  ASSERT_EQ(Root("DELETE", "sys/audit/file").status, 204);
  EXPECT_EQ(json::parse(Root("GET", "sys/audit").body).at("data").as_object().size(), 0u);
  CommandResult closed = Verify(ShellQuote(log) + " --key " + key);
  ASSERT_EQ(closed.exit_code, 0) << closed.output;
  EXPECT_TRUE(absl::StrContains(closed.output, "OK")) << closed.output;

  // Tamper with line 3: verify names it.
  std::vector<std::string> lines;
  std::istringstream in(ReadFile(log));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_GT(lines.size(), 4u);
  size_t at = lines[2].find("\"remote_address\":\"127.0.0.1\"");
  ASSERT_NE(at, std::string::npos) << lines[2];
  lines[2].replace(at, 28, "\"remote_address\":\"10.0.0.66\"");
  std::string tampered = dir_.Join("tampered.log");
  {
    std::ofstream out(tampered, std::ios::binary);
    for (const std::string& l : lines) out << l << "\n";
  }
  CommandResult bad = Verify(ShellQuote(tampered));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(absl::StrContains(bad.output, "FAILED at line 3 (modified)")) << bad.output;
}

TEST_F(AuditTest, UnwritableDeviceRefusesRequests) {
  Enable("full", "/dev/full");
  Reply r = Root("GET", "secret/data/app");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(json::parse(r.body).at("errors"), json::parse(R"(["audit: failed to log request"])"));
  Reply w = Root("PUT", "secret/data/app", R"({"data":{"a":"b"}})");
  EXPECT_EQ(w.status, 500);
  EXPECT_EQ(Call(*client_, "GET", "sys/health", "").status, 200);  // exempt: still answers
}

TEST_F(AuditTest, EnableRejectsUnknownTypeAndMissingPath) {
  EXPECT_EQ(Root("PUT", "sys/audit/x", R"({"type":"syslog"})").status, 400);
  EXPECT_EQ(Root("PUT", "sys/audit/x", R"({"type":"file"})").status, 400);
  EXPECT_EQ(Call(*client_, "GET", "sys/audit", "").status, 403);
}

// Production mode: a device survives seal/unseal (reopened from the barrier), sealing closes it
// with a checkpoint, and the unseal that reopens it is logged with the key share hashed.
TEST(AuditLifecycleTest, SealClosesAndUnsealReopensAndLogsTheUnseal) {
  core::TempDir dir;
  std::string cert = dir.Join("cert.pem"), key = dir.Join("key.pem");
  ASSERT_EQ(WriteSelfSignedServerCert(cert, key), absl::OkStatus());
  std::ofstream(dir.Join("ward.yaml"))
      << "listener:\n  address: 127.0.0.1:0\n  tls_cert_file: " << cert
      << "\n  tls_key_file: " << key << "\nstorage:\n  path: " << dir.Join("data") << "\n";
  auto server = WardProcess::StartWithConfig(dir.Join("ward.yaml"), dir.Join("server.log"));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client(cert);
  Reply init = Call(*client, "PUT", "sys/init", "", R"({"secret_shares":1,"secret_threshold":1})");
  ASSERT_EQ(init.status, 200) << init.body;
  json::value iv = json::parse(init.body);
  std::string share(iv.at("keys").at(0).as_string());
  std::string root(iv.at("root_token").as_string());
  std::string unseal_body = R"({"key":")" + share + R"("})";
  ASSERT_EQ(Call(*client, "PUT", "sys/unseal", "", unseal_body).status, 200);

  std::string log = dir.Join("audit.log");
  ASSERT_EQ(Call(*client, "PUT", "sys/audit/file", root,
                 R"({"type":"file","options":{"file_path":")" + log + R"("}})")
                .status,
            204);
  std::string pub(json::parse(Call(*client, "GET", "sys/audit", root).body)
                      .at("file/")
                      .at("checkpoint_public_key")
                      .as_string());
  EXPECT_EQ(Call(*client, "PUT", "sys/seal", root).status, 204);
  // Closed by the seal: a complete, signed file.
  CommandResult sealed = Verify(ShellQuote(log) + " --key " + pub);
  EXPECT_EQ(sealed.exit_code, 0) << sealed.output;

  ASSERT_EQ(Call(*client, "PUT", "sys/unseal", "", unseal_body).status, 200);
  EXPECT_EQ(Call(*client, "GET", "sys/audit", root).status, 200);
  std::string text = ReadFile(log);
  EXPECT_FALSE(absl::StrContains(text, share));
  EXPECT_FALSE(absl::StrContains(text, root));
  std::vector<json::object> records = Records(text);
  auto unseal = Find(records, "request", "update", "sys/unseal");
  ASSERT_EQ(unseal.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(
      std::string(unseal[0].at("request").at("data").at("key").as_string()), "hmac-sha256:"));
  EXPECT_EQ(Find(records, "response", "update", "sys/unseal").size(), 1u);
  EXPECT_EQ(Find(records, "response", "update", "sys/seal").size(), 1u);
  CommandResult live = Verify(ShellQuote(log) + " --allow-open-tail --key " + pub);
  EXPECT_EQ(live.exit_code, 0) << live.output;
  EXPECT_EQ((*server)->Terminate(), 0);
  CommandResult stopped = Verify(ShellQuote(log) + " --key " + pub);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.output;
}

}  // namespace
}  // namespace ward::testing
