// The `ward` CLI against a real dev server: every command, table and JSON output, exit codes.

#include <boost/json.hpp>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/shared_dev_server.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

class CliTest : public SharedDevServerTest {
 protected:
  static void SetUpTestSuite() { StartSuiteServer(""); }

  // Runs `ward <args>` with WARD_* pointing at the server (token `token`, default root).
  CommandResult Ward(const std::string& args, const std::string& token = "") {
    std::string env = "env -u VAULT_ADDR -u VAULT_TOKEN -u VAULT_CACERT WARD_ADDR=" +
                      ShellQuote(server_->addr()) + " WARD_CACERT=" + ShellQuote(server_->ca_cert()) +
                      " WARD_TOKEN=" + ShellQuote(token.empty() ? server_->root_token() : token) + " ";
    return RunCommand(env + ShellQuote(WardBinary()) + " " + args);
  }

  static json::value Json(const CommandResult& r) {
    boost::system::error_code ec;
    json::value v = json::parse(r.output, ec);
    EXPECT_FALSE(ec) << r.output;
    return v;
  }
};

TEST_F(CliTest, KvPutGetPatchList) {
  CommandResult put = Ward("kv put secret/cli/db password=hunter2 user=app");
  ASSERT_EQ(put.exit_code, 0) << put.output;
  EXPECT_NE(put.output.find("version"), std::string::npos);

  CommandResult get = Ward("kv get secret/cli/db");
  ASSERT_EQ(get.exit_code, 0) << get.output;
  EXPECT_NE(get.output.find("password"), std::string::npos);
  EXPECT_NE(get.output.find("hunter2"), std::string::npos);

  CommandResult js = Ward("kv get -format=json secret/cli/db");
  ASSERT_EQ(js.exit_code, 0) << js.output;
  EXPECT_EQ(Json(js).at("data").at("data").at("user"), "app");

  ASSERT_EQ(Ward("kv patch secret/cli/db user=svc").exit_code, 0);
  json::value patched = Json(Ward("kv get -format=json secret/cli/db"));
  EXPECT_EQ(patched.at("data").at("data").at("user"), "svc");
  EXPECT_EQ(patched.at("data").at("data").at("password"), "hunter2");
  EXPECT_EQ(patched.at("data").at("metadata").at("version"), 2);

  json::value v1 = Json(Ward("kv get -format=json -version=1 secret/cli/db"));
  EXPECT_EQ(v1.at("data").at("data").at("user"), "app");

  CommandResult list = Ward("kv list secret/cli");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("db"), std::string::npos);
}

TEST_F(CliTest, KvCasMismatchFailsWithServerMessage) {
  ASSERT_EQ(Ward("kv put -cas=0 secret/cli/cas a=1").exit_code, 0);
  CommandResult again = Ward("kv put -cas=0 secret/cli/cas a=2");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("check-and-set parameter did not match the current version"),
            std::string::npos)
      << again.output;
}

TEST_F(CliTest, KvDeleteUndeleteDestroyMetadata) {
  ASSERT_EQ(Ward("kv put secret/cli/life a=1").exit_code, 0);
  ASSERT_EQ(Ward("kv put secret/cli/life a=2").exit_code, 0);
  ASSERT_EQ(Ward("kv delete secret/cli/life").exit_code, 0);
  EXPECT_NE(Ward("kv get secret/cli/life").exit_code, 0);
  ASSERT_EQ(Ward("kv undelete -versions=2 secret/cli/life").exit_code, 0);
  EXPECT_EQ(Ward("kv get secret/cli/life").exit_code, 0);
  ASSERT_EQ(Ward("kv destroy -versions=1 secret/cli/life").exit_code, 0);
  EXPECT_NE(Ward("kv get -version=1 secret/cli/life").exit_code, 0);

  ASSERT_EQ(Ward("kv metadata put -max-versions=4 -custom-metadata=owner=team-a secret/cli/life").exit_code, 0);
  json::value meta = Json(Ward("kv metadata get -format=json secret/cli/life"));
  EXPECT_EQ(meta.at("data").at("max_versions"), 4);
  EXPECT_EQ(meta.at("data").at("custom_metadata").at("owner"), "team-a");
  EXPECT_TRUE(meta.at("data").at("versions").as_object().at("1").at("destroyed").as_bool());
  ASSERT_EQ(Ward("kv metadata delete secret/cli/life").exit_code, 0);
  CommandResult gone = Ward("kv metadata get secret/cli/life");
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.output.find("404"), std::string::npos) << gone.output;
}

TEST_F(CliTest, TokenCreateLookupRenewRevoke) {
  CommandResult created = Ward("token create -format=json -policy=default -ttl=1h -display-name=ci");
  ASSERT_EQ(created.exit_code, 0) << created.output;
  json::value a = Json(created).at("auth");
  std::string token(a.at("client_token").as_string());
  std::string accessor(a.at("accessor").as_string());

  json::value self = Json(Ward("token lookup -format=json", token));
  EXPECT_EQ(self.at("data").at("display_name"), "token-ci");
  json::value other = Json(Ward("token lookup -format=json " + ShellQuote(token)));
  EXPECT_EQ(std::string(other.at("data").at("accessor").as_string()), accessor);
  json::value by_accessor = Json(Ward("token lookup -format=json -accessor " + ShellQuote(accessor)));
  EXPECT_EQ(by_accessor.at("data").at("id"), "");

  json::value renewed = Json(Ward("token renew -format=json -increment=2h", token));
  EXPECT_GT(renewed.at("auth").at("lease_duration").as_int64(), 3600);

  // The default policy cannot read secrets: the CLI exits non-zero with the server's message.
  // Without -mount the CLI asks sys/internal/ui/mounts first, which refuses the way Vault does.
  CommandResult preflight = Ward("kv get secret/cli/db", token);
  EXPECT_NE(preflight.exit_code, 0);
  EXPECT_NE(preflight.output.find("Code: 403"), std::string::npos) << preflight.output;
  EXPECT_NE(preflight.output.find("preflight capability check"), std::string::npos) << preflight.output;
  CommandResult denied = Ward("kv get -mount=secret cli/db", token);
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.output.find("permission denied"), std::string::npos) << denied.output;

  ASSERT_EQ(Ward("token revoke " + ShellQuote(token)).exit_code, 0);
  EXPECT_NE(Ward("token lookup", token).exit_code, 0);
}

TEST_F(CliTest, StatusAndRotate) {
  CommandResult status = Ward("status");
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("sealed"), std::string::npos);
  json::value js = Json(Ward("status -format=json"));
  EXPECT_EQ(js.at("sealed"), false);
  CommandResult rotate = Ward("operator rotate -format=json");
  ASSERT_EQ(rotate.exit_code, 0) << rotate.output;
  EXPECT_GE(Json(rotate).at("data").at("term").as_int64(), 2);
}

TEST_F(CliTest, VaultVariablesAreHonoured) {
  std::string env = "env -u WARD_ADDR -u WARD_TOKEN -u WARD_CACERT VAULT_ADDR=" + ShellQuote(server_->addr()) +
                    " VAULT_CACERT=" + ShellQuote(server_->ca_cert()) +
                    " VAULT_TOKEN=" + ShellQuote(server_->root_token()) + " ";
  CommandResult r = RunCommand(env + ShellQuote(WardBinary()) + " kv put secret/cli/vaultenv k=v");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(CliTest, UnreachableServerFails) {
  CommandResult r = RunCommand("env WARD_ADDR=https://127.0.0.1:1 WARD_TOKEN=x " + ShellQuote(WardBinary()) +
                               " status");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("Error"), std::string::npos) << r.output;
}

TEST_F(CliTest, OperatorInitAndUnsealOnAFreshServer) {
  core::TempDir dir;
  std::string cert = dir.Join("cert.pem"), key = dir.Join("key.pem");
  ASSERT_EQ(WriteSelfSignedServerCert(cert, key), absl::OkStatus());
  std::string config = dir.Join("ward.yaml");
  ASSERT_EQ(RunCommand("printf 'listener:\\n  address: 127.0.0.1:0\\n  tls_cert_file: %s\\n  tls_key_file: "
                       "%s\\nstorage:\\n  path: %s\\n' " +
                       ShellQuote(cert) + " " + ShellQuote(key) + " " + ShellQuote(dir.Join("data")) + " > " +
                       ShellQuote(config))
                .exit_code,
            0);
  auto server = WardProcess::StartWithConfig(config, dir.Join("log"));
  ASSERT_TRUE(server.ok()) << server.status();
  std::string env = "env WARD_ADDR=" + ShellQuote((*server)->addr()) + " WARD_CACERT=" + ShellQuote(cert) + " ";
  std::string ward = ShellQuote(WardBinary());

  CommandResult init = RunCommand(env + ward + " operator init -key-shares=3 -key-threshold=2 -format=json");
  ASSERT_EQ(init.exit_code, 0) << init.output;
  json::value keys = Json(init);
  EXPECT_EQ(RunCommand(env + ward + " status").exit_code, 2);  // sealed
  CommandResult u1 = RunCommand(env + ward + " operator unseal " +
                                ShellQuote(std::string(keys.at("keys_base64").at(0).as_string())));
  ASSERT_EQ(u1.exit_code, 0) << u1.output;
  CommandResult u2 = RunCommand("echo " + ShellQuote(std::string(keys.at("keys").at(1).as_string())) + " | " +
                                env + ward + " operator unseal");
  ASSERT_EQ(u2.exit_code, 0) << u2.output;
  EXPECT_EQ(RunCommand(env + ward + " status").exit_code, 0);
  std::string root = std::string(keys.at("root_token").as_string());
  std::string authed = env + "WARD_TOKEN=" + ShellQuote(root) + " " + ward;
  ASSERT_EQ(RunCommand(authed + " kv put secret/x a=1").exit_code, 0);
  CommandResult seal = RunCommand(authed + " operator seal");
  ASSERT_EQ(seal.exit_code, 0) << seal.output;
  CommandResult sealed_get = RunCommand(authed + " kv get secret/x");
  EXPECT_NE(sealed_get.exit_code, 0);
  EXPECT_NE(sealed_get.output.find("Vault is sealed"), std::string::npos) << sealed_get.output;
}

}  // namespace
}  // namespace ward::testing
