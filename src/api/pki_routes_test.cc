// PKI routes through VaultHandler::Handle with a fake clock (docs/pki.md): pki/config/crl,
// `format`, DELETE pki/issuer/:ref and conditional reads (If-Modified-Since / Last-Modified),
// which depend on the time to the second and so are tested here without waiting.

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "api/core.h"
#include "api/handler.h"
#include "core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pki/certs.h"
#include "storage/memory_backend.h"

namespace ward::api {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

json::value Body(const net::HttpResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << r.body;
  return v;
}

std::string FirstError(const net::HttpResponse& r) {
  json::value v = Body(r);
  if (!v.is_object() || !v.as_object().contains("errors")) return "<no errors>";
  const json::array& a = v.at("errors").as_array();
  return a.empty() ? "" : std::string(a[0].as_string());
}

std::string HeaderOf(const net::HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

std::string HttpDate(absl::Time t) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", t, absl::UTCTimeZone());
}

class PkiRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = Core::Create(backend_, clock_, Core::Options{});
    ASSERT_TRUE(created.ok()) << created.status();
    core_ = *std::move(created);
    auto key = core_->InitializeSingleKey();
    ASSERT_TRUE(key.ok()) << key.status();
    ASSERT_TRUE(core_->UnsealWithKey(*key).ok());
    auto root = core_->State()->tokens->CreateRootToken("");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = root->token;
    handler_ = std::make_unique<VaultHandler>(*core_, clock_, HandlerOptions{});
    ASSERT_EQ(Root("POST", "sys/mounts/pki", R"({"type":"pki"})").status, 204);
    net::HttpResponse ca = Root("POST", "pki/root/generate/internal",
                                R"({"common_name":"Root","issuer_name":"r1","ttl":"8760h"})");
    ASSERT_EQ(ca.status, 200) << ca.body;
    root_id_ = std::string(Body(ca).at("data").at("issuer_id").as_string());
    net::HttpResponse role =
        Root("POST", "pki/roles/web",
             R"({"allowed_uri_sans":"spiffe://example.org/ns/*/sa/*","max_ttl":"24h"})");
    ASSERT_EQ(role.status, 200) << role.body;
  }

  net::HttpResponse Call(const std::string& method, const std::string& path,
                         const std::string& token, const std::string& body = "",
                         const std::string& if_modified_since = "") {
    net::HttpRequest request;
    request.method = method;
    request.target = "/v1/" + path;
    if (!token.empty()) request.headers.emplace_back("x-vault-token", token);
    if (!body.empty()) request.headers.emplace_back("content-type", "application/json");
    if (!if_modified_since.empty()) {
      request.headers.emplace_back("if-modified-since", if_modified_since);
    }
    request.body = body;
    request.remote_address = "127.0.0.1";
    request.remote_port = 50000;
    request.request_id = "00000000-0000-4000-8000-000000000001";
    return handler_->Handle(request);
  }

  net::HttpResponse Root(const std::string& method, const std::string& path,
                         const std::string& body = "") {
    return Call(method, path, root_, body);
  }

  net::HttpResponse Public(const std::string& path, const std::string& since = "") {
    return Call("GET", path, "", "", since);
  }

  storage::MemoryBackend backend_;
  core::FakeClock clock_;
  std::unique_ptr<Core> core_;
  std::unique_ptr<VaultHandler> handler_;
  std::string root_;
  std::string root_id_;
};

TEST_F(PkiRoutesTest, LastModifiedOnlyOnceItsSecondHasPassed) {
  clock_.Advance(absl::Milliseconds(300));  // still the second of the root's creation
  net::HttpResponse same_second = Public("pki/ca/pem");
  ASSERT_EQ(same_second.status, 200);
  EXPECT_EQ(HeaderOf(same_second, "Last-Modified"), "");
  // Even a date from that very second does not produce a 304 for a change made later in it.
  const absl::Time created = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now()));
  clock_.Advance(absl::Seconds(1));
  net::HttpResponse later = Public("pki/ca/pem");
  EXPECT_EQ(HeaderOf(later, "Last-Modified"), HttpDate(created));
}

TEST_F(PkiRoutesTest, IfModifiedSinceGives304ForEveryConditionalRead) {
  clock_.Advance(absl::Seconds(2));
  for (const std::string& path : std::vector<std::string>{
           "pki/ca", "pki/ca/pem", "pki/ca_chain", "pki/crl", "pki/crl/pem", "pki/bundle",
           "pki/issuer/r1/pem", "pki/issuer/r1/der", "pki/issuer/r1/crl", "pki/issuer/r1/crl/pem",
           "pki/issuer/" + root_id_ + "/crl/der"}) {
    net::HttpResponse first = Public(path);
    ASSERT_EQ(first.status, 200) << path;
    const std::string date = HeaderOf(first, "Last-Modified");
    ASSERT_FALSE(date.empty()) << path;
    net::HttpResponse not_modified = Public(path, date);
    EXPECT_EQ(not_modified.status, 304) << path;
    EXPECT_EQ(not_modified.body, "") << path;
    EXPECT_EQ(Public(path, HttpDate(clock_.Now() + absl::Hours(1))).status, 304) << path;
    EXPECT_EQ(Public(path, HttpDate(clock_.Now() - absl::Hours(1))).status, 200) << path;
    EXPECT_EQ(Public(path, "yesterday").status, 200) << path;  // ignored, as RFC 9110 says
  }
  // Not conditional: JSON reads.
  EXPECT_EQ(Public("pki/cert/ca", HttpDate(clock_.Now())).status, 200);
}

TEST_F(PkiRoutesTest, CrlDateMovesOnRebuildAndCaDateOnIssuerChanges) {
  clock_.Advance(absl::Seconds(2));
  const std::string crl_date = HeaderOf(Public("pki/crl"), "Last-Modified");
  const std::string ca_date = HeaderOf(Public("pki/ca/pem"), "Last-Modified");
  ASSERT_FALSE(crl_date.empty());

  clock_.Advance(absl::Seconds(5));
  ASSERT_EQ(Root("GET", "pki/crl/rotate").status, 200);
  EXPECT_EQ(Public("pki/crl", crl_date).status, 200);
  EXPECT_EQ(Public("pki/ca/pem", ca_date).status, 304);  // the CA did not change

  clock_.Advance(absl::Seconds(5));
  ASSERT_EQ(
      Root("POST", "pki/root/generate/internal", R"({"common_name":"B","issuer_name":"b"})").status,
      200);
  ASSERT_EQ(Root("POST", "pki/config/issuers", R"({"default":"b"})").status, 200);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Public("pki/ca/pem", ca_date).status, 200);
  EXPECT_EQ(Public("pki/crl", HeaderOf(Public("pki/crl"), "Last-Modified")).status, 304);
}

TEST_F(PkiRoutesTest, ConfigCrlReadUpdateAndRefusals) {
  net::HttpResponse read = Root("GET", "pki/config/crl");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(Body(read).at("data").at("expiry"), "72h");
  EXPECT_EQ(Body(read).at("mount_type"), "pki");

  net::HttpResponse set = Root("POST", "pki/config/crl", R"({"auto_rebuild":true,"expiry":"24h"})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(Body(set).at("data").at("auto_rebuild"), true);
  EXPECT_EQ(Body(set).at("data").at("expiry"), "24h");

  net::HttpResponse grace = Root("POST", "pki/config/crl", R"({"auto_rebuild_grace_period":"1d"})");
  EXPECT_EQ(grace.status, 400);
  EXPECT_THAT(FirstError(grace), HasSubstr("given auto_rebuild_grace_period could not be decoded"));
  net::HttpResponse too_long =
      Root("POST", "pki/config/crl", R"({"auto_rebuild_grace_period":"25h"})");
  EXPECT_EQ(too_long.status, 400);
  EXPECT_EQ(FirstError(too_long),
            "CRL auto-rebuilding grace period (25h) must be strictly shorter than CRL expiry "
            "(24h) value when auto-rebuilding of CRLs is enabled");
  EXPECT_EQ(Root("POST", "pki/config/crl", R"({"disable":"perhaps"})").status, 400);
  EXPECT_EQ(Root("POST", "pki/config/crl", R"({"enable_delta":true})").status, 400);
  EXPECT_EQ(Root("DELETE", "pki/config/crl").status, 405);
  json::value after = Body(Root("GET", "pki/config/crl")).at("data");
  EXPECT_EQ(after.at("expiry"), "24h");
  EXPECT_EQ(after.at("auto_rebuild_grace_period"), "12h");
  EXPECT_EQ(after.at("disable"), false);
  // Authenticated only.
  EXPECT_EQ(Call("GET", "pki/config/crl", "").status, 403);
}

TEST_F(PkiRoutesTest, SignWithDerFormatGivesBase64Der) {
  auto key = pki::GenerateKey(pki::KeySpec{});
  ASSERT_TRUE(key.ok());
  auto csr = pki::BuildCsr(key->get(), "", {"spiffe://example.org/ns/a/sa/b"});
  ASSERT_TRUE(csr.ok()) << csr.status();
  net::HttpResponse signed_ =
      Root("POST", "pki/sign/web", json::serialize(json::object{{"csr", *csr}, {"format", "der"}}));
  ASSERT_EQ(signed_.status, 200) << signed_.body;
  json::value data = Body(signed_).at("data");
  EXPECT_FALSE(data.as_object().contains("private_key"));
  std::string der;
  ASSERT_TRUE(absl::Base64Unescape(std::string(data.at("certificate").as_string()), &der));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  crypto::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(pki::SerialColonHex(cert.get()), std::string(data.at("serial_number").as_string()));
  std::string ca_der;
  ASSERT_TRUE(absl::Base64Unescape(std::string(data.at("ca_chain").at(0).as_string()), &ca_der));
  auto expected_ca = pki::PemToDer(Public("pki/ca/pem").body);
  ASSERT_TRUE(expected_ca.ok());
  EXPECT_EQ(ca_der, *expected_ca);

  net::HttpResponse bundle =
      Root("POST", "pki/sign/web",
           json::serialize(json::object{{"csr", *csr}, {"format", "pem_bundle"}}));
  ASSERT_EQ(bundle.status, 200) << bundle.body;
  std::string pem(Body(bundle).at("data").at("certificate").as_string());
  EXPECT_EQ(pem.find("PRIVATE KEY"), std::string::npos);
  auto certs = pki::ParseCertificatesPem(pem);
  ASSERT_TRUE(certs.ok());
  EXPECT_EQ(certs->size(), 2u);  // the leaf, then its issuer
}

TEST_F(PkiRoutesTest, DeleteIssuerAnswersAsVault) {
  EXPECT_EQ(Root("DELETE", "pki/issuer/nope").status, 204);
  net::HttpResponse deleted = Root("DELETE", "pki/issuer/r1");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  json::value body = Body(deleted);
  ASSERT_TRUE(body.at("warnings").is_array());
  ASSERT_EQ(body.at("warnings").as_array().size(), 2u) << deleted.body;  // default + role web
  EXPECT_THAT(std::string(body.at("warnings").at(0).as_string()),
              HasSubstr("this was configured as the default issuer"));
  EXPECT_THAT(std::string(body.at("warnings").at(1).as_string()), HasSubstr("role web"));
  EXPECT_EQ(Public("pki/ca/pem").status, 404);
  EXPECT_EQ(Public("pki/crl").status, 404);
  EXPECT_EQ(Public("pki/bundle").status, 404);
  net::HttpResponse issue =
      Root("POST", "pki/issue/web", R"({"uri_sans":"spiffe://example.org/ns/a/sa/b"})");
  EXPECT_EQ(issue.status, 400) << issue.body;
  json::value config = Body(Root("GET", "pki/config/issuers")).at("data");
  EXPECT_EQ(config.at("default"), "");
}

}  // namespace
}  // namespace ward::api
