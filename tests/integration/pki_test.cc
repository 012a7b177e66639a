// The PKI secrets engine through the real `ward server --dev`: mounting, Vault's pki/ routes,
// X509-SVIDs checked with the real `openssl`, CSR signing, revocation seen in the CRL fetched
// by `curl` without a token, and the CA rotation runbook (docs/pki.md) driven by the generic
// `ward read|write|list|delete` commands.

#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/shared_dev_server.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

constexpr char kWorkloads[] = "spiffe://example.org/ns/*/sa/*";

std::string Str(const json::value& v) { return std::string(v.as_string()); }

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

class PkiTest : public SharedDevServerTest {
 protected:
  static void SetUpTestSuite() { StartSuiteServer(""); }

  void SetUp() override {
    SharedDevServerTest::SetUp();
    dir_ = std::make_unique<core::TempDir>();
  }

  // Mounts a PKI engine at `mount`, generates a root for trust domain example.org named
  // `root_name`, and writes role "web" allowing kWorkloads. Returns the root's issuer_id.
  std::string SetUpPki(const std::string& mount, const std::string& root_name = "root-1") {
    Reply m = Root("POST", "sys/mounts/" + mount, R"({"type":"pki"})");
    EXPECT_EQ(m.status, 204) << m.body;
    Reply root = Root("POST", mount + "/root/generate/internal",
                      json::serialize(json::object{{"common_name", "Example Root"},
                                                   {"uri_sans", "spiffe://example.org"},
                                                   {"issuer_name", root_name},
                                                   {"ttl", "8760h"}}));
    EXPECT_EQ(root.status, 200) << root.body;
    Reply role = Root("POST", mount + "/roles/web",
                      json::serialize(json::object{
                          {"allowed_uri_sans", kWorkloads}, {"ttl", "1h"}, {"max_ttl", "24h"}}));
    EXPECT_EQ(role.status, 200) << role.body;
    json::value v = Parse(root.body);
    return v.is_object() ? Str(v.at("data").at("issuer_id")) : "";
  }

  Reply Issue(const std::string& mount, const std::string& spiffe_id,
              const std::string& extra = "") {
    return Root("POST", mount + "/issue/web",
                absl::StrCat(R"({"uri_sans":")", spiffe_id, "\"", extra, "}"));
  }

  // `curl` with the dev CA and no token; -w appends the status and content type.
  CommandResult Curl(const std::string& path, const std::string& out_file = "") {
    std::string cmd = "curl -sS --cacert " + ShellQuote(server_->ca_cert()) +
                      " -w '\\n%{http_code} %{content_type}' ";
    if (!out_file.empty()) cmd += "-o " + ShellQuote(out_file) + " ";
    return RunCommand(cmd + ShellQuote(server_->addr() + "/v1/" + path));
  }

  // The JSON body of an unauthenticated GET made by curl.
  json::value CurlJson(const std::string& path) {
    CommandResult r = Curl(path);
    return Parse(r.output.substr(0, r.output.rfind('\n')));
  }

  // Runs `ward <args>` against the server with the root token.
  CommandResult Ward(const std::string& args) {
    std::string env = "env -u VAULT_ADDR -u VAULT_TOKEN -u VAULT_CACERT WARD_ADDR=" +
                      ShellQuote(server_->addr()) +
                      " WARD_CACERT=" + ShellQuote(server_->ca_cert()) +
                      " WARD_TOKEN=" + ShellQuote(server_->root_token()) + " ";
    return RunCommand(env + ShellQuote(WardBinary()) + " " + args);
  }

  std::string Path(const std::string& name) const { return dir_->Join(name); }

  std::unique_ptr<core::TempDir> dir_;
};

TEST_F(PkiTest, MountIsListedAsPkiAndUnmountDeletesItsData) {
  SetUpPki("pki-life");
  json::value mounts = Parse(Root("GET", "sys/mounts").body);
  EXPECT_EQ(mounts.at("data").at("pki-life/").at("type"), "pki");
  EXPECT_EQ(mounts.at("data").at("secret/").at("type"), "kv");
  EXPECT_EQ(Root("GET", "pki-life/roles/web").status, 200);

  EXPECT_EQ(Root("DELETE", "sys/mounts/pki-life").status, 204);
  EXPECT_EQ(Root("GET", "pki-life/roles/web").status, 404);
  ASSERT_EQ(Root("POST", "sys/mounts/pki-life", R"({"type":"pki"})").status, 204);
  // A new mount at the same path starts empty: no role, no CA.
  EXPECT_EQ(Root("GET", "pki-life/roles/web").status, 404);
  EXPECT_EQ(Root("GET", "pki-life/ca/pem").status, 404);
  EXPECT_EQ(Root("DELETE", "sys/mounts/pki-life").status, 204);

  Reply bad = Root("POST", "sys/mounts/pki-bad", R"({"type":"pkix"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(Errors(bad).front().find("plugin not found"), std::string::npos) << bad.body;
}

TEST_F(PkiTest, IssuedSvidVerifiesWithOpenssl) {
  SetUpPki("pki");
  Reply issued = Issue("pki", "spiffe://example.org/ns/prod/sa/api");
  ASSERT_EQ(issued.status, 200) << issued.body;
  json::value v = Parse(issued.body);
  const json::object& data = v.at("data").as_object();
  std::set<std::string> keys;
  for (const auto& kv : data) keys.insert(std::string(kv.key()));
  EXPECT_EQ(keys, (std::set<std::string>{"certificate", "issuing_ca", "ca_chain", "private_key",
                                         "private_key_type", "serial_number", "expiration",
                                         "not_before"}));
  EXPECT_EQ(data.at("private_key_type"), "ec");
  EXPECT_EQ(v.at("mount_type"), "pki");
  EXPECT_NEAR(data.at("expiration").as_int64() - data.at("not_before").as_int64(), 3600 + 30, 2);

  // The CA comes from the unauthenticated route, fetched by curl without a token.
  CommandResult ca = Curl("pki/ca/pem", Path("ca.pem"));
  ASSERT_EQ(ca.exit_code, 0) << ca.output;
  EXPECT_NE(ca.output.find("200 application/pem-certificate-chain"), std::string::npos)
      << ca.output;
  EXPECT_EQ(ReadFile(Path("ca.pem")), Str(data.at("issuing_ca")));
  WriteFile(Path("leaf.pem"), Str(data.at("certificate")));
  WriteFile(Path("leaf.key"), Str(data.at("private_key")));

  CommandResult verify = RunCommand("openssl verify -CAfile " + ShellQuote(Path("ca.pem")) + " " +
                                    ShellQuote(Path("leaf.pem")));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find(": OK"), std::string::npos) << verify.output;

  CommandResult text = RunCommand("openssl x509 -noout -text -in " + ShellQuote(Path("leaf.pem")));
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_EQ(Count(text.output, "URI:"), 1u) << text.output;
  EXPECT_NE(text.output.find("URI:spiffe://example.org/ns/prod/sa/api"), std::string::npos);
  EXPECT_NE(text.output.find("X509v3 Basic Constraints: critical\n                CA:FALSE"),
            std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("X509v3 Key Usage: critical\n                Digital Signature\n"),
            std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("TLS Web Server Authentication, TLS Web Client Authentication"),
            std::string::npos)
      << text.output;

  // The key is the certificate's.
  CommandResult cert_pub =
      RunCommand("openssl x509 -noout -pubkey -in " + ShellQuote(Path("leaf.pem")));
  CommandResult key_pub = RunCommand("openssl pkey -pubout -in " + ShellQuote(Path("leaf.key")));
  EXPECT_EQ(cert_pub.output, key_pub.output);

  // The record is readable (JSON) and listed.
  std::string serial = Str(data.at("serial_number"));
  json::value rec = CurlJson("pki/cert/" + serial);
  EXPECT_EQ(rec.at("data").at("certificate"), data.at("certificate"));
  EXPECT_EQ(rec.at("data").at("revocation_time"), 0);
  json::value certs = Parse(Root("LIST", "pki/certs").body);
  bool listed = false;
  for (const auto& k : certs.at("data").at("keys").as_array()) listed |= Str(k) == serial;
  EXPECT_TRUE(listed) << serial;
}

TEST_F(PkiTest, IssueErrorsUseVaultShapeAndStatus) {
  SetUpPki("pki-err");
  Reply unknown =
      Root("POST", "pki-err/issue/nope", R"({"uri_sans":"spiffe://example.org/ns/a/sa/b"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(Errors(unknown), (std::vector<std::string>{"unknown role: nope"}));

  Reply outside = Issue("pki-err", "spiffe://example.org/other/x");
  EXPECT_EQ(outside.status, 400);
  EXPECT_NE(Errors(outside).front().find("not allowed by role web"), std::string::npos)
      << outside.body;

  Reply none = Root("POST", "pki-err/issue/web", "{}");
  EXPECT_EQ(none.status, 400);
  EXPECT_NE(Errors(none).front().find("exactly one URI SAN"), std::string::npos) << none.body;

  // A ttl above max_ttl is capped with Vault's warning, passed through.
  Reply capped = Issue("pki-err", "spiffe://example.org/ns/a/sa/b", R"(,"ttl":"100h")");
  ASSERT_EQ(capped.status, 200) << capped.body;
  json::value warnings = Parse(capped.body).at("warnings");
  ASSERT_TRUE(warnings.is_array()) << capped.body;
  EXPECT_NE(Str(warnings.as_array().at(0)).find("maxTTL"), std::string::npos) << capped.body;

  Reply der = Issue("pki-err", "spiffe://example.org/ns/a/sa/b", R"(,"format":"der")");
  EXPECT_EQ(der.status, 400);

  // No token: the write routes are closed, the CA reads are open.
  EXPECT_EQ(Call(*client_, "POST", "pki-err/issue/web", "",
                 R"({"uri_sans":"spiffe://example.org/ns/a/sa/b"})")
                .status,
            403);
  EXPECT_EQ(Call(*client_, "GET", "pki-err/roles/web", "").status, 403);
  EXPECT_EQ(Call(*client_, "GET", "pki-err/ca/pem", "").status, 200);
  EXPECT_EQ(Root("DELETE", "pki-err/issuer/default").status, 405);
}

TEST_F(PkiTest, SignsCsrMadeByOpensslWithinTheRoleOnly) {
  SetUpPki("pki-sign");
  std::string key = Path("csr.key");
  ASSERT_EQ(RunCommand("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " +
                       ShellQuote(key))
                .exit_code,
            0);
  auto make_csr = [&](const std::string& name, const std::string& uri) {
    CommandResult r =
        RunCommand("openssl req -new -key " + ShellQuote(key) + " -subj / -addext " +
                   ShellQuote("subjectAltName=URI:" + uri) + " -out " + ShellQuote(Path(name)));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return ReadFile(Path(name));
  };
  std::string good = make_csr("good.csr", "spiffe://example.org/ns/web/sa/frontend");
  Reply signed_ = Root("POST", "pki-sign/sign/web", json::serialize(json::object{{"csr", good}}));
  ASSERT_EQ(signed_.status, 200) << signed_.body;
  json::value data = Parse(signed_.body).at("data");
  EXPECT_FALSE(data.as_object().contains("private_key"));
  WriteFile(Path("signed.pem"), Str(data.at("certificate")));
  WriteFile(Path("ca.pem"), Str(data.at("issuing_ca")));
  CommandResult verify = RunCommand("openssl verify -CAfile " + ShellQuote(Path("ca.pem")) + " " +
                                    ShellQuote(Path("signed.pem")));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  CommandResult text =
      RunCommand("openssl x509 -noout -text -in " + ShellQuote(Path("signed.pem")));
  EXPECT_NE(text.output.find("URI:spiffe://example.org/ns/web/sa/frontend"), std::string::npos);
  EXPECT_EQ(Count(text.output, "URI:"), 1u);

  std::string bad = make_csr("bad.csr", "spiffe://example.org/admin");
  Reply refused = Root("POST", "pki-sign/sign/web", json::serialize(json::object{{"csr", bad}}));
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(
      Errors(refused),
      (std::vector<std::string>{"uri_sans spiffe://example.org/admin not allowed by role web"}));

  Reply garbage = Root("POST", "pki-sign/sign/web", R"({"csr":"not a csr"})");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(Errors(garbage),
            (std::vector<std::string>{"csr is not a valid PEM certificate request"}));

  // The same through the CLI, reading the CSR from a file (csr=@file).
  CommandResult cli =
      Ward("write -field=certificate pki-sign/sign/web csr=@" + ShellQuote(Path("good.csr")));
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_EQ(cli.output.rfind("-----BEGIN CERTIFICATE-----", 0), 0u) << cli.output;
}

TEST_F(PkiTest, RevokedSerialAppearsInCrlFetchedWithoutToken) {
  SetUpPki("pki-crl");
  Reply issued = Issue("pki-crl", "spiffe://example.org/ns/a/sa/b");
  ASSERT_EQ(issued.status, 200) << issued.body;
  std::string serial = Str(Parse(issued.body).at("data").at("serial_number"));

  Reply revoked =
      Root("POST", "pki-crl/revoke", json::serialize(json::object{{"serial_number", serial}}));
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_GT(Parse(revoked.body).at("data").at("revocation_time").as_int64(), 0);

  CommandResult crl = Curl("pki-crl/crl", Path("crl.der"));
  ASSERT_EQ(crl.exit_code, 0) << crl.output;
  EXPECT_NE(crl.output.find("200 application/pkix-crl"), std::string::npos) << crl.output;
  CommandResult text =
      RunCommand("openssl crl -inform DER -noout -text -in " + ShellQuote(Path("crl.der")));
  ASSERT_EQ(text.exit_code, 0) << text.output;
  std::string hex = absl::AsciiStrToUpper(absl::StrReplaceAll(serial, {{":", ""}}));
  EXPECT_NE(text.output.find("Serial Number: " + hex), std::string::npos) << hex << "\n"
                                                                          << text.output;

  CommandResult pem = Curl("pki-crl/crl/pem");
  EXPECT_NE(pem.output.find("-----BEGIN X509 CRL-----"), std::string::npos) << pem.output;
  CommandResult der_ca = Curl("pki-crl/ca", Path("ca.der"));
  EXPECT_NE(der_ca.output.find("200 application/pkix-cert"), std::string::npos) << der_ca.output;
  EXPECT_EQ(
      RunCommand("openssl x509 -inform DER -noout -in " + ShellQuote(Path("ca.der"))).exit_code, 0);

  Reply unknown = Root("POST", "pki-crl/revoke", R"({"serial_number":"01:02"})");
  EXPECT_EQ(unknown.status, 400) << unknown.body;
}

TEST_F(PkiTest, PolicyOnIssuePathGovernsIssuance) {
  SetUpPki("pki-acl");
  ASSERT_EQ(Root("PUT", "sys/policies/acl/issuer",
                 R"({"policy":"path \"pki-acl/issue/web\" { capabilities = [\"update\"] }"})")
                .status,
            204);
  ASSERT_EQ(Root("PUT", "sys/policies/acl/reader",
                 R"({"policy":"path \"pki-acl/issue/web\" { capabilities = [\"read\"] }"})")
                .status,
            204);
  auto token_for = [&](const std::string& policy) {
    Reply t = Root("POST", "auth/token/create",
                   json::serialize(json::object{{"policies", json::array{json::value(policy)}}}));
    return Str(Parse(t.body).at("auth").at("client_token"));
  };
  std::string body = R"({"uri_sans":"spiffe://example.org/ns/a/sa/b"})";
  EXPECT_EQ(Call(*client_, "POST", "pki-acl/issue/web", token_for("issuer"), body).status, 200);
  EXPECT_EQ(Call(*client_, "POST", "pki-acl/issue/web", token_for("reader"), body).status, 403);
  EXPECT_EQ(Call(*client_, "POST", "pki-acl/roles/web", token_for("issuer"), "{}").status, 403);
}

TEST_F(PkiTest, IdentityTemplateUsesTheCallersTokenNotTheBody) {
  SetUpPki("pki-id");
  ASSERT_EQ(Root("POST", "pki-id/roles/self",
                 R"({"allowed_uri_sans":"spiffe://example.org/token/{{identity}}",)"
                 R"("allowed_uri_sans_template":true})")
                .status,
            200);
  // The root token's identity is its display name, "root".
  EXPECT_EQ(
      Root("POST", "pki-id/issue/self", R"({"uri_sans":"spiffe://example.org/token/root"})").status,
      200);
  Reply spoof = Root("POST", "pki-id/issue/self",
                     R"({"uri_sans":"spiffe://example.org/token/web","caller_identity":"web"})");
  EXPECT_EQ(spoof.status, 400) << spoof.body;
}

// The CA rotation runbook of docs/pki.md, step by step, with the generic CLI commands.
TEST_F(PkiTest, RotationRunbookWithOverlappingTrust) {
  std::string old_id = SetUpPki("pki-rot", "root-2025");
  ASSERT_FALSE(old_id.empty());
  CommandResult old_leaf = Ward(
      "write -format=json pki-rot/issue/web "
      "uri_sans=spiffe://example.org/ns/a/sa/old");
  ASSERT_EQ(old_leaf.exit_code, 0) << old_leaf.output;
  WriteFile(Path("old-leaf.pem"), Str(Parse(old_leaf.output).at("data").at("certificate")));
  ASSERT_EQ(Ward("read -field=certificate pki-rot/issuer/root-2025/json").exit_code, 0);
  WriteFile(Path("old-ca.pem"),
            Ward("read -field=certificate pki-rot/issuer/root-2025/json").output);
  json::value jwks1 = CurlJson("pki-rot/bundle.jwks");
  EXPECT_EQ(jwks1.at("keys").as_array().size(), 1u);
  EXPECT_EQ(jwks1.at("spiffe_refresh_hint"), 300);

  // 1. Prepare: the next root is published (in the bundle) but not issuing.
  CommandResult next = Ward(
      "write pki-rot/issuers/prepare-next common_name='Example Root 2026' "
      "trust_domain=spiffe://example.org issuer_name=root-2026");
  ASSERT_EQ(next.exit_code, 0) << next.output;
  EXPECT_NE(next.output.find("published"), std::string::npos) << next.output;
  WriteFile(Path("new-ca.pem"),
            Ward("read -field=certificate pki-rot/issuer/root-2026/json").output);

  // 2. Publish: the bundle holds both CAs, and its sequence moved.
  CommandResult bundle = Curl("pki-rot/bundle", Path("bundle.pem"));
  EXPECT_NE(bundle.output.find("200 application/pem-certificate-chain"), std::string::npos);
  EXPECT_EQ(Count(ReadFile(Path("bundle.pem")), "BEGIN CERTIFICATE"), 2u);
  json::value jwks2 = CurlJson("pki-rot/bundle.jwks");
  EXPECT_EQ(jwks2.at("keys").as_array().size(), 2u);
  EXPECT_GT(jwks2.at("spiffe_sequence").as_int64(), jwks1.at("spiffe_sequence").as_int64());

  // 3. Activate: new leaves come from the new root.
  CommandResult activate = Ward("write -f pki-rot/issuer/root-2026/activate");
  ASSERT_EQ(activate.exit_code, 0) << activate.output;
  CommandResult new_leaf = Ward(
      "write -field=certificate pki-rot/issue/web "
      "uri_sans=spiffe://example.org/ns/a/sa/new");
  ASSERT_EQ(new_leaf.exit_code, 0) << new_leaf.output;
  WriteFile(Path("new-leaf.pem"), new_leaf.output);
  auto verify = [&](const std::string& ca, const std::string& leaf) {
    return RunCommand("openssl verify -CAfile " + ShellQuote(Path(ca)) + " " +
                      ShellQuote(Path(leaf)));
  };
  EXPECT_EQ(verify("new-ca.pem", "new-leaf.pem").exit_code, 0);
  EXPECT_NE(verify("old-ca.pem", "new-leaf.pem").exit_code, 0);
  EXPECT_EQ(verify("bundle.pem", "new-leaf.pem").exit_code, 0)
      << verify("bundle.pem", "new-leaf.pem").output;
  EXPECT_EQ(verify("bundle.pem", "old-leaf.pem").exit_code, 0)
      << verify("bundle.pem", "old-leaf.pem").output;
  json::value config = Parse(Ward("read -format=json pki-rot/config/issuers").output);
  EXPECT_NE(Str(config.at("data").at("default")), old_id);

  // 4-5. Retire is refused while the old root's leaf lives (400, naming until when).
  CommandResult retire = Ward("write -f pki-rot/issuer/root-2025/retire");
  EXPECT_NE(retire.exit_code, 0);
  EXPECT_NE(retire.output.find("Code: 400"), std::string::npos) << retire.output;
  Reply retire_api = Root("POST", "pki-rot/issuer/root-2025/retire", "{}");
  EXPECT_EQ(retire_api.status, 400);
  EXPECT_NE(Errors(retire_api).front().find(old_id + " signed certificates valid until"),
            std::string::npos)
      << retire_api.body;
  Curl("pki-rot/bundle", Path("bundle-after-refusal.pem"));
  EXPECT_EQ(Count(ReadFile(Path("bundle-after-refusal.pem")), "BEGIN CERTIFICATE"), 2u);

  // A compromised key is retired with force; the bundle then holds the new root only.
  CommandResult forced = Ward("write pki-rot/issuer/root-2025/retire force=true");
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  Curl("pki-rot/bundle", Path("bundle2.pem"));
  EXPECT_EQ(Count(ReadFile(Path("bundle2.pem")), "BEGIN CERTIFICATE"), 1u);
  EXPECT_EQ(verify("bundle2.pem", "new-leaf.pem").exit_code, 0);
  EXPECT_NE(verify("bundle2.pem", "old-leaf.pem").exit_code, 0);

  // The other generic commands.
  CommandResult list = Ward("list pki-rot/issuers");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find(old_id), std::string::npos) << list.output;
  CommandResult roles = Ward("list pki-rot/roles");
  EXPECT_NE(roles.output.find("web"), std::string::npos) << roles.output;
  CommandResult role = Ward("read pki-rot/roles/web");
  EXPECT_NE(role.output.find("allowed_uri_sans"), std::string::npos) << role.output;
  EXPECT_EQ(Ward("delete pki-rot/roles/web").exit_code, 0);
  EXPECT_EQ(Ward("read pki-rot/roles/web").exit_code, 2);
}

}  // namespace
}  // namespace ward::testing
