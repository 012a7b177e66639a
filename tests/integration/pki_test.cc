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
#include "absl/time/clock.h"
#include "absl/time/time.h"
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

  Reply bad_format = Issue("pki-err", "spiffe://example.org/ns/a/sa/b", R"(,"format":"p12")");
  EXPECT_EQ(bad_format.status, 400);
  EXPECT_EQ(
      Errors(bad_format),
      (std::vector<std::string>{R"(invalid format "p12": use "pem", "der" or "pem_bundle")"}));

  // No token: the write routes are closed, the CA reads are open.
  EXPECT_EQ(Call(*client_, "POST", "pki-err/issue/web", "",
                 R"({"uri_sans":"spiffe://example.org/ns/a/sa/b"})")
                .status,
            403);
  EXPECT_EQ(Call(*client_, "GET", "pki-err/roles/web", "").status, 403);
  EXPECT_EQ(Call(*client_, "GET", "pki-err/ca/pem", "").status, 200);
  EXPECT_EQ(Root("DELETE", "pki-err/issuer/no-such-issuer").status, 204);  // as Vault
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

// ---- issue 4 leftovers: format, not_after, config/crl, DELETE issuer, If-Modified-Since -----

TEST_F(PkiTest, FormatDerAndPemBundleAsVault) {
  SetUpPki("pki-fmt");
  // der: base64 DER that openssl reads.
  Reply der = Issue("pki-fmt", "spiffe://example.org/ns/a/sa/b", R"(,"format":"der")");
  ASSERT_EQ(der.status, 200) << der.body;
  json::value d = Parse(der.body).at("data");
  for (const char* field : {"certificate", "issuing_ca", "private_key"}) {
    EXPECT_EQ(Str(d.at(field)).find("-----"), std::string::npos) << field;
  }
  WriteFile(Path("leaf.b64"), Str(d.at("certificate")));
  WriteFile(Path("ca.b64"), Str(d.at("ca_chain").at(0)));
  WriteFile(Path("key.b64"), Str(d.at("private_key")));
  for (const char* name : {"leaf", "ca", "key"}) {
    ASSERT_EQ(RunCommand(absl::StrCat("openssl base64 -d -A -in ",
                                      ShellQuote(Path(absl::StrCat(name, ".b64"))), " -out ",
                                      ShellQuote(Path(absl::StrCat(name, ".der")))))
                  .exit_code,
              0);
  }
  ASSERT_EQ(RunCommand("openssl x509 -inform DER -in " + ShellQuote(Path("leaf.der")) + " -out " +
                       ShellQuote(Path("leaf.pem")))
                .exit_code,
            0);
  ASSERT_EQ(RunCommand("openssl x509 -inform DER -in " + ShellQuote(Path("ca.der")) + " -out " +
                       ShellQuote(Path("ca.pem")))
                .exit_code,
            0);
  CommandResult verify = RunCommand("openssl verify -CAfile " + ShellQuote(Path("ca.pem")) + " " +
                                    ShellQuote(Path("leaf.pem")));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  CommandResult key_pub =
      RunCommand("openssl pkey -inform DER -pubout -in " + ShellQuote(Path("key.der")));
  CommandResult cert_pub =
      RunCommand("openssl x509 -noout -pubkey -in " + ShellQuote(Path("leaf.pem")));
  EXPECT_EQ(key_pub.output, cert_pub.output);

  // pem_bundle: key, certificate and chain in the certificate field.
  Reply bundle = Issue("pki-fmt", "spiffe://example.org/ns/a/sa/b", R"(,"format":"pem_bundle")");
  ASSERT_EQ(bundle.status, 200) << bundle.body;
  json::value b = Parse(bundle.body).at("data");
  std::string pem = Str(b.at("certificate"));
  EXPECT_EQ(pem.rfind(Str(b.at("private_key")), 0), 0u) << pem;
  EXPECT_EQ(Count(pem, "BEGIN CERTIFICATE"), 2u) << pem;
  WriteFile(Path("bundle.pem"), pem);
  CommandResult leaf_of_bundle =
      RunCommand("openssl x509 -noout -ext subjectAltName -in " + ShellQuote(Path("bundle.pem")));
  EXPECT_NE(leaf_of_bundle.output.find("URI:spiffe://example.org/ns/a/sa/b"), std::string::npos)
      << leaf_of_bundle.output;

  // Root generation: exported pem_bundle holds key + certificate; der is base64.
  Reply root = Root("POST", "pki-fmt/root/generate/exported",
                    R"({"common_name":"R2","issuer_name":"r2","format":"pem_bundle"})");
  ASSERT_EQ(root.status, 200) << root.body;
  json::value r = Parse(root.body).at("data");
  EXPECT_EQ(Str(r.at("certificate")).rfind(Str(r.at("private_key")), 0), 0u);
  Reply root_der = Root("POST", "pki-fmt/root/generate/internal",
                        R"({"common_name":"R3","issuer_name":"r3","format":"der"})");
  ASSERT_EQ(root_der.status, 200) << root_der.body;
  EXPECT_EQ(Str(Parse(root_der.body).at("data").at("certificate")).substr(0, 2), "MI");
  Reply csr = Root("POST", "pki-fmt/intermediate/generate/exported",
                   R"({"common_name":"I1","format":"pem_bundle"})");
  ASSERT_EQ(csr.status, 200) << csr.body;
  json::value c = Parse(csr.body).at("data");
  EXPECT_EQ(Str(c.at("csr")).rfind(Str(c.at("private_key")), 0), 0u);
  EXPECT_NE(Str(c.at("csr")).find("BEGIN CERTIFICATE REQUEST"), std::string::npos);
  Reply bad = Root("POST", "pki-fmt/root/generate/internal",
                   R"({"common_name":"R4","issuer_name":"r4","format":"pkcs12"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(Root("GET", "pki-fmt/issuer/r4").status, 404);  // nothing was created
}

TEST_F(PkiTest, NotAfterIsExactAndBounded) {
  SetUpPki("pki-na");
  Reply ok =
      Issue("pki-na", "spiffe://example.org/ns/a/sa/b", R"(,"not_after":"2100-01-01T00:00:00Z")");
  EXPECT_EQ(ok.status, 400) << ok.body;  // beyond max_ttl (24h)
  EXPECT_NE(Errors(ok).front().find("max_ttl of role web"), std::string::npos) << ok.body;

  // An exact time within max_ttl: openssl shows it.
  const int64_t when = (absl::ToUnixSeconds(absl::Now()) / 3600 + 3) * 3600;  // 2-3h ahead
  const std::string text =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(when), absl::UTCTimeZone());
  Reply exact = Issue("pki-na", "spiffe://example.org/ns/a/sa/b",
                      absl::StrCat(R"(,"not_after":")", text, "\""));
  ASSERT_EQ(exact.status, 200) << exact.body;
  EXPECT_EQ(Parse(exact.body).at("data").at("expiration").as_int64(), when);
  WriteFile(Path("exact.pem"), Str(Parse(exact.body).at("data").at("certificate")));
  CommandResult end =
      RunCommand("openssl x509 -noout -enddate -in " + ShellQuote(Path("exact.pem")));
  EXPECT_NE(end.output.find(absl::FormatTime("%b %e %H:%M:%S %Y GMT", absl::FromUnixSeconds(when),
                                             absl::UTCTimeZone())),
            std::string::npos)
      << end.output;

  Reply both = Issue("pki-na", "spiffe://example.org/ns/a/sa/b",
                     absl::StrCat(R"(,"ttl":"1h","not_after":")", text, "\""));
  EXPECT_EQ(both.status, 400);
  Reply garbage = Issue("pki-na", "spiffe://example.org/ns/a/sa/b", R"(,"not_after":"tomorrow")");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_NE(Errors(garbage).front().find("invalid not_after"), std::string::npos);

  // Past the CA's notAfter: a short-lived CA and a role allowing long leaves.
  ASSERT_EQ(Root("POST", "pki-na/root/generate/internal",
                 R"({"common_name":"Short","issuer_name":"short","ttl":"2h"})")
                .status,
            200);
  ASSERT_EQ(
      Root("POST", "pki-na/roles/long",
           json::serialize(json::object{
               {"allowed_uri_sans", kWorkloads}, {"max_ttl", "720h"}, {"issuer_ref", "short"}}))
          .status,
      200);
  Reply past_ca =
      Root("POST", "pki-na/issue/long",
           absl::StrCat(R"({"uri_sans":"spiffe://example.org/ns/a/sa/b","not_after":")",
                        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() + absl::Hours(48),
                                         absl::UTCTimeZone()),
                        "\"}"));
  EXPECT_EQ(past_ca.status, 400) << past_ca.body;
  EXPECT_NE(Errors(past_ca).front().find("beyond the expiration of the CA certificate"),
            std::string::npos)
      << past_ca.body;

  // Root generation takes not_after too (Vault's Y10K date).
  Reply y10k = Root(
      "POST", "pki-na/root/generate/internal",
      R"({"common_name":"Forever","issuer_name":"forever","not_after":"9999-12-31T23:59:59Z"})");
  ASSERT_EQ(y10k.status, 200) << y10k.body;
  EXPECT_EQ(Parse(y10k.body).at("data").at("expiration").as_int64(), 253402300799);
}

TEST_F(PkiTest, CrlConfigReadWriteAndValidation) {
  SetUpPki("pki-cfg");
  json::value initial = Parse(Root("GET", "pki-cfg/config/crl").body).at("data");
  EXPECT_EQ(initial.at("expiry"), "72h");
  EXPECT_EQ(initial.at("auto_rebuild"), false);
  EXPECT_EQ(initial.at("auto_rebuild_grace_period"), "12h");
  EXPECT_EQ(initial.at("disable"), false);
  EXPECT_EQ(initial.at("enable_delta"), false);

  Reply set = Root("POST", "pki-cfg/config/crl",
                   R"({"expiry":"48h","auto_rebuild":true,"auto_rebuild_grace_period":"6h"})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(Parse(set.body).at("data").at("expiry"), "48h");
  ASSERT_EQ(Root("GET", "pki-cfg/crl/rotate").status, 200);
  CommandResult crl = Curl("pki-cfg/crl", Path("crl.der"));
  ASSERT_EQ(crl.exit_code, 0);
  CommandResult dates = RunCommand("openssl crl -inform DER -noout -lastupdate -nextupdate -in " +
                                   ShellQuote(Path("crl.der")));
  ASSERT_EQ(dates.exit_code, 0) << dates.output;
  EXPECT_NE(dates.output.find("nextUpdate="), std::string::npos) << dates.output;

  // Bad input: 400 in Vault's shape, nothing changed.
  Reply grace = Root("POST", "pki-cfg/config/crl", R"({"auto_rebuild_grace_period":"48h"})");
  EXPECT_EQ(grace.status, 400);
  EXPECT_NE(Errors(grace).front().find("must be strictly shorter than CRL expiry"),
            std::string::npos)
      << grace.body;
  EXPECT_EQ(Root("POST", "pki-cfg/config/crl", R"({"expiry":"soon"})").status, 400);
  EXPECT_EQ(Root("POST", "pki-cfg/config/crl", R"({"enable_delta":true})").status, 400);
  json::value after = Parse(Root("GET", "pki-cfg/config/crl").body).at("data");
  EXPECT_EQ(after.at("expiry"), "48h");
  EXPECT_EQ(after.at("auto_rebuild_grace_period"), "6h");

  // disable publishes an empty CRL at once, even with a revocation.
  Reply issued = Issue("pki-cfg", "spiffe://example.org/ns/a/sa/b");
  std::string serial = Str(Parse(issued.body).at("data").at("serial_number"));
  ASSERT_EQ(Root("POST", "pki-cfg/revoke", json::serialize(json::object{{"serial_number", serial}}))
                .status,
            200);
  ASSERT_EQ(Root("POST", "pki-cfg/config/crl", R"({"disable":true})").status, 200);
  Curl("pki-cfg/crl", Path("empty.der"));
  CommandResult empty =
      RunCommand("openssl crl -inform DER -noout -text -in " + ShellQuote(Path("empty.der")));
  EXPECT_NE(empty.output.find("No Revoked Certificates"), std::string::npos) << empty.output;
  ASSERT_EQ(Root("POST", "pki-cfg/config/crl", R"({"disable":false})").status, 200);
  Curl("pki-cfg/crl", Path("full.der"));
  CommandResult full =
      RunCommand("openssl crl -inform DER -noout -text -in " + ShellQuote(Path("full.der")));
  EXPECT_EQ(full.output.find("No Revoked Certificates"), std::string::npos) << full.output;
}

TEST_F(PkiTest, DeleteIssuerAsVault) {
  std::string root_id = SetUpPki("pki-del");
  Reply next = Root("POST", "pki-del/issuers/prepare-next",
                    R"({"common_name":"Next","issuer_name":"next"})");
  ASSERT_EQ(next.status, 200) << next.body;
  CommandResult bundle_before = Curl("pki-del/bundle");
  EXPECT_EQ(Count(bundle_before.output, "BEGIN CERTIFICATE"), 2u);

  // A non-default issuer: 204, out of the bundle.
  EXPECT_EQ(Root("DELETE", "pki-del/issuer/next").status, 204);
  EXPECT_EQ(Root("GET", "pki-del/issuer/next").status, 404);
  EXPECT_EQ(Count(Curl("pki-del/bundle").output, "BEGIN CERTIFICATE"), 1u);
  EXPECT_EQ(Root("DELETE", "pki-del/issuer/next").status, 204);  // gone: still success

  // The default: deleted with Vault's warning; the mount then has no CA until a new one.
  Reply deleted = Root("DELETE", "pki-del/issuer/default");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  json::value warnings = Parse(deleted.body).at("warnings");
  ASSERT_TRUE(warnings.is_array()) << deleted.body;
  EXPECT_NE(Str(warnings.as_array().at(0)).find("this was configured as the default issuer"),
            std::string::npos)
      << deleted.body;
  EXPECT_NE(deleted.body.find(root_id), std::string::npos);
  auto status_of = [&](const std::string& path) {
    std::string out = Curl(path).output;
    return out.substr(out.rfind('\n') + 1, 3);
  };
  EXPECT_EQ(status_of("pki-del/ca/pem"), "404");
  EXPECT_EQ(status_of("pki-del/crl"), "404");
  EXPECT_EQ(Root("LIST", "pki-del/issuers").status, 404);
  Reply refused = Issue("pki-del", "spiffe://example.org/ns/a/sa/b");
  EXPECT_EQ(refused.status, 400) << refused.body;

  Reply again = Root("POST", "pki-del/root/generate/internal", R"({"common_name":"Again"})");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Issue("pki-del", "spiffe://example.org/ns/a/sa/b").status, 200);
  EXPECT_EQ(status_of("pki-del/crl"), "200");
}

TEST_F(PkiTest, IfModifiedSinceAnswers304WithNoBody) {
  SetUpPki("pki-ims");
  // Last-Modified is sent only once its second has passed (HTTP dates have one-second
  // resolution): wait for that wall-clock second to end, not for another thread.
  RunCommand("sleep 1.1");
  auto head = [&](const std::string& path, const std::string& since) {
    std::string cmd = "curl -sS -o /dev/null -D - --cacert " + ShellQuote(server_->ca_cert());
    if (!since.empty()) cmd += " -H " + ShellQuote("If-Modified-Since: " + since);
    return RunCommand(cmd + " " + ShellQuote(server_->addr() + "/v1/" + path)).output;
  };
  auto last_modified = [](const std::string& headers) {
    std::string lower = absl::AsciiStrToLower(headers);
    size_t at = lower.find("last-modified: ");
    if (at == std::string::npos) return std::string();
    size_t end = headers.find('\r', at);
    return headers.substr(at + 15, end - at - 15);
  };
  for (const char* path : {"pki-ims/ca", "pki-ims/ca/pem", "pki-ims/crl", "pki-ims/crl/pem",
                           "pki-ims/issuer/root-1/pem", "pki-ims/issuer/root-1/der",
                           "pki-ims/issuer/root-1/crl", "pki-ims/issuer/root-1/crl/pem"}) {
    std::string first = head(path, "");
    ASSERT_NE(first.find(" 200"), std::string::npos) << path << first;
    std::string date = last_modified(first);
    ASSERT_FALSE(date.empty()) << path << first;
    CommandResult not_modified = RunCommand(
        "curl -sS -w '\\n%{http_code} %{size_download}' --cacert " +
        ShellQuote(server_->ca_cert()) + " -H " + ShellQuote("If-Modified-Since: " + date) + " " +
        ShellQuote(server_->addr() + "/v1/" + path));
    EXPECT_EQ(not_modified.output, "\n304 0") << path;
    EXPECT_NE(head(path, "Mon, 01 Jan 2001 00:00:00 GMT").find(" 200"), std::string::npos) << path;
    EXPECT_NE(head(path, "garbage").find(" 200"), std::string::npos) << path;
  }

  // A revocation rebuilds the CRL: the old date no longer matches.
  std::string crl_date = last_modified(head("pki-ims/crl", ""));
  std::string ca_date = last_modified(head("pki-ims/ca/pem", ""));
  RunCommand("sleep 1.1");
  Reply issued = Issue("pki-ims", "spiffe://example.org/ns/a/sa/b");
  std::string serial = Str(Parse(issued.body).at("data").at("serial_number"));
  ASSERT_EQ(Root("POST", "pki-ims/revoke", json::serialize(json::object{{"serial_number", serial}}))
                .status,
            200);
  EXPECT_NE(head("pki-ims/crl", crl_date).find(" 200"), std::string::npos);
  EXPECT_NE(head("pki-ims/ca/pem", ca_date).find(" 304"), std::string::npos);  // CA unchanged
  // A new default issuer changes pki/ca.
  ASSERT_EQ(
      Root("POST", "pki-ims/root/generate/internal", R"({"common_name":"B","issuer_name":"b"})")
          .status,
      200);
  ASSERT_EQ(Root("POST", "pki-ims/config/issuers", R"({"default":"b"})").status, 200);
  EXPECT_NE(head("pki-ims/ca/pem", ca_date).find(" 200"), std::string::npos);
}

}  // namespace
}  // namespace ward::testing
