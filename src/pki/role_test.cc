#include "pki/role.h"

#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ward::pki {
namespace {

using ::testing::ElementsAre;

namespace json = boost::json;

Role MustParse(const json::object& params, const Role* base = nullptr) {
  auto role = ParseRole("web", params, base);
  EXPECT_TRUE(role.ok()) << role.status();
  return role.ok() ? *role : Role{};
}

TEST(RoleTest, DefaultsAreTheSvidProfile) {
  Role r = MustParse({});
  EXPECT_EQ(r.name, "web");
  EXPECT_EQ(r.ttl, absl::Hours(1));
  EXPECT_EQ(r.max_ttl, absl::Hours(24));
  EXPECT_FALSE(r.require_cn);
  EXPECT_EQ(r.key_type, "ec");
  EXPECT_EQ(r.key_bits, 256);
  EXPECT_EQ(r.issuer_ref, "default");
}

TEST(RoleTest, ParsesTypedAndStringValues) {
  Role r = MustParse({{"allowed_uri_sans", "spiffe://example.org/ns/*/sa/*, spiffe://x.org/a"},
                      {"allow_subdomains", "true"},
                      {"allowed_domains", json::array{"example.org"}},
                      {"ttl", "30m"},
                      {"max_ttl", 7200},
                      {"key_type", "rsa"},
                      {"no_store", true}});
  EXPECT_THAT(r.allowed_uri_sans,
              ElementsAre("spiffe://example.org/ns/*/sa/*", "spiffe://x.org/a"));
  EXPECT_TRUE(r.allow_subdomains);
  EXPECT_THAT(r.allowed_domains, ElementsAre("example.org"));
  EXPECT_EQ(r.ttl, absl::Minutes(30));
  EXPECT_EQ(r.max_ttl, absl::Hours(2));
  EXPECT_EQ(r.key_type, "rsa");
  EXPECT_EQ(r.key_bits, 2048);
  EXPECT_TRUE(r.no_store);

  std::map<std::string, std::string> form{{"client_flag", "false"}, {"key_type", "ed25519"}};
  auto from_map = ParseRole("web", form, nullptr);
  ASSERT_TRUE(from_map.ok()) << from_map.status();
  EXPECT_FALSE(from_map->client_flag);
  EXPECT_EQ(from_map->key_bits, 0);
}

TEST(RoleTest, RejectsBadValuesNamingTheParameter) {
  auto bad_bool = ParseRole("web", json::object{{"allow_subdomains", "maybe"}}, nullptr);
  EXPECT_EQ(bad_bool.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_bool.status().message(), "invalid allow_subdomains: expected a boolean");
  auto ttl = ParseRole("web", json::object{{"ttl", "48h"}}, nullptr);
  EXPECT_EQ(ttl.status().message(), "ttl cannot be larger than max_ttl");
  auto key = ParseRole("web", json::object{{"key_type", "ec"}, {"key_bits", 521}}, nullptr);
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  auto uri = ParseRole("web", json::object{{"allowed_uri_sans", "https://x/*"}}, nullptr);
  EXPECT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRole("bad/name", json::object{}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RoleTest, PatchKeepsUnsetFields) {
  Role base = MustParse({{"allowed_domains", "example.org"}, {"ttl", "2h"}});
  Role patched = MustParse({{"allow_bare_domains", true}}, &base);
  EXPECT_THAT(patched.allowed_domains, ElementsAre("example.org"));
  EXPECT_EQ(patched.ttl, absl::Hours(2));
  EXPECT_TRUE(patched.allow_bare_domains);
}

TEST(RoleTest, RendersAsVaultAndRoundTripsThroughStorage) {
  Role r = MustParse({{"allowed_uri_sans", "spiffe://example.org/*"}, {"ttl", "90s"}});
  json::object rendered = RenderRole(r);
  EXPECT_EQ(rendered.at("ttl").as_int64(), 90);
  EXPECT_EQ(rendered.at("max_ttl").as_int64(), 86400);
  EXPECT_EQ(rendered.at("key_type").as_string(), "ec");
  EXPECT_EQ(rendered.at("require_cn").as_bool(), false);
  EXPECT_EQ(rendered.at("allowed_uri_sans").as_array().size(), 1u);
  auto back = DeserializeRole(SerializeRole(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, "web");
  EXPECT_EQ(back->ttl, absl::Seconds(90));
  EXPECT_EQ(back->allowed_uri_sans, r.allowed_uri_sans);
  EXPECT_EQ(DeserializeRole("{}").status().code(), absl::StatusCode::kDataLoss);
}

TEST(GlobTest, MatchesLikeVault) {
  EXPECT_TRUE(GlobMatch("spiffe://example.org/ns/*/sa/*", "spiffe://example.org/ns/a/sa/b"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(GlobMatch("spiffe://example.org/ns/*/sa/*", "spiffe://example.org/ns/a"));
  EXPECT_FALSE(GlobMatch("abc", "abcd"));
  EXPECT_FALSE(GlobMatch("a*c", "ab"));
}

class CheckNamesTest : public ::testing::Test {
 protected:
  Role role_ = [] {
    Role r;
    r.name = "web";
    r.allowed_uri_sans = {"spiffe://example.org/ns/*/sa/*"};
    r.allowed_domains = {"example.org"};
    r.allow_subdomains = true;
    return r;
  }();
};

TEST_F(CheckNamesTest, AllowedNamesPass) {
  IssueRequest req;
  req.uri_sans = {"spiffe://example.org/ns/prod/sa/web"};
  req.alt_names = {"web.example.org"};
  req.ip_sans = {"10.0.0.1"};
  auto names = CheckNames(role_, req, nullptr);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(names->spiffe_id, "spiffe://example.org/ns/prod/sa/web");
  EXPECT_THAT(names->dns_sans, ElementsAre("web.example.org"));
  EXPECT_THAT(names->ip_sans, ElementsAre("10.0.0.1"));
}

TEST_F(CheckNamesTest, DisallowedNamesAreNamedInTheError) {
  IssueRequest req;
  req.uri_sans = {"spiffe://x/y"};
  auto uri = CheckNames(role_, req, nullptr);
  EXPECT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(uri.status().message(), "uri_sans spiffe://x/y not allowed by role web");

  req.uri_sans = {"spiffe://example.org/ns/a/sa/b"};
  req.alt_names = {"evil.com"};
  EXPECT_EQ(CheckNames(role_, req, nullptr).status().message(),
            "alt_names evil.com not allowed by role web");
  req.alt_names = {"example.org"};  // bare domain not allowed
  EXPECT_EQ(CheckNames(role_, req, nullptr).status().message(),
            "alt_names example.org not allowed by role web");
  req.alt_names.clear();
  req.common_name = "other.net";
  EXPECT_EQ(CheckNames(role_, req, nullptr).status().message(),
            "common_name other.net not allowed by role web");
  req.common_name.clear();
  Role no_ip = role_;
  no_ip.allow_ip_sans = false;
  req.ip_sans = {"10.0.0.1"};
  EXPECT_EQ(CheckNames(no_ip, req, nullptr).status().message(),
            "ip_sans 10.0.0.1 not allowed by role web");
}

TEST_F(CheckNamesTest, ExactlyOneUriSanIsRequired) {
  IssueRequest none;
  EXPECT_EQ(CheckNames(role_, none, nullptr).status().message(),
            "an X509-SVID needs exactly one URI SAN (spiffe://...): none requested");
  IssueRequest two;
  two.uri_sans = {"spiffe://example.org/ns/a/sa/b", "spiffe://example.org/ns/a/sa/c"};
  EXPECT_EQ(CheckNames(role_, two, nullptr).status().message(),
            "an X509-SVID needs exactly one URI SAN (spiffe://...): 2 requested");
}

TEST_F(CheckNamesTest, CsrNamesAreCheckedToo) {
  IssueRequest req;
  Names csr;
  csr.uri_sans = {"spiffe://example.org/ns/a/sa/b"};
  csr.dns_sans = {"evil.com"};
  EXPECT_EQ(CheckNames(role_, req, &csr).status().message(),
            "alt_names evil.com not allowed by role web");
  csr.dns_sans.clear();
  csr.common_name = "svc.example.org";
  auto ok = CheckNames(role_, req, &csr);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->common_name, "svc.example.org");
  EXPECT_THAT(ok->dns_sans, ElementsAre("svc.example.org"));
}

TEST_F(CheckNamesTest, IdentityTemplateUsesTheCallerIdentity) {
  Role r = role_;
  r.allowed_uri_sans = {"spiffe://example.org/approle/{{identity}}"};
  r.allowed_uri_sans_template = true;
  IssueRequest req;
  req.uri_sans = {"spiffe://example.org/approle/billing"};
  req.caller_identity = "billing";
  EXPECT_TRUE(CheckNames(r, req, nullptr).ok());
  req.caller_identity = "payments";
  EXPECT_EQ(CheckNames(r, req, nullptr).status().message(),
            "uri_sans spiffe://example.org/approle/billing not allowed by role web");
  req.caller_identity = "";
  EXPECT_EQ(CheckNames(r, req, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  req.caller_identity = "*";  // an identity never widens the pattern
  EXPECT_EQ(CheckNames(r, req, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  r.allowed_uri_sans_template = false;  // without the flag the template is literal
  req.caller_identity = "billing";
  EXPECT_EQ(CheckNames(r, req, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CheckNamesTest, RequireCnAndGlobDomains) {
  Role r = role_;
  r.require_cn = true;
  IssueRequest req;
  req.uri_sans = {"spiffe://example.org/ns/a/sa/b"};
  EXPECT_EQ(CheckNames(r, req, nullptr).status().message(), "common_name is required by role web");
  r.require_cn = false;
  r.allow_subdomains = false;
  r.allow_glob_domains = true;
  r.allowed_domains = {"*.svc.example.org"};
  req.alt_names = {"a.svc.example.org"};
  EXPECT_TRUE(CheckNames(r, req, nullptr).ok());
  req.alt_names = {"a.example.org"};
  EXPECT_FALSE(CheckNames(r, req, nullptr).ok());
}

TEST(IssueRequestTest, ParsesVaultParameters) {
  auto r = ParseIssueRequest(json::object{{"common_name", "a.example.org"},
                                          {"alt_names", "b.example.org,c.example.org"},
                                          {"uri_sans", json::array{"spiffe://example.org/a"}},
                                          {"ttl", "10m"},
                                          {"exclude_cn_from_sans", true}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->common_name, "a.example.org");
  EXPECT_THAT(r->alt_names, ElementsAre("b.example.org", "c.example.org"));
  EXPECT_THAT(r->uri_sans, ElementsAre("spiffe://example.org/a"));
  EXPECT_EQ(r->ttl, absl::Minutes(10));
  EXPECT_TRUE(r->exclude_cn_from_sans);
  EXPECT_EQ(ParseIssueRequest(json::object{{"ttl", "soon"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(IssueRequestTest, NotAfterIsRfc3339AndExcludesTtl) {
  auto r = ParseIssueRequest(json::object{{"not_after", "2030-01-02T03:04:05Z"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->not_after, absl::FromUnixSeconds(1893553445));
  auto offset = ParseIssueRequest(json::object{{"not_after", "2030-01-02T04:04:05+01:00"}});
  ASSERT_TRUE(offset.ok()) << offset.status();
  EXPECT_EQ(offset->not_after, r->not_after);
  EXPECT_FALSE(ParseIssueRequest(json::object{{"not_after", ""}})->not_after.has_value());

  auto bad = ParseIssueRequest(json::object{{"not_after", "2030-01-02"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("invalid not_after"));
  EXPECT_EQ(ParseIssueRequest(json::object{{"not_after", 5}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto both = ParseIssueRequest(json::object{{"not_after", "2030-01-02T03:04:05Z"}, {"ttl", "1h"}});
  EXPECT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(both.status().message()),
              ::testing::HasSubstr("Either ttl or not_after should be provided"));
}

TEST(CrlConfigTest, DefaultsRenderAsVault) {
  json::object data = RenderCrlConfig(CrlConfig{});
  EXPECT_EQ(json::serialize(data),
            R"({"expiry":"72h","disable":false,"ocsp_disable":false,"ocsp_expiry":"12h",)"
            R"("auto_rebuild":false,"auto_rebuild_grace_period":"12h","enable_delta":false,)"
            R"("delta_rebuild_interval":"15m"})");
}

TEST(CrlConfigTest, UpdateKeepsAbsentFieldsAndTheGivenText) {
  CrlConfig base;
  base.auto_rebuild = true;
  auto c =
      ParseCrlConfig(json::object{{"expiry", 7200}, {"auto_rebuild_grace_period", "30m"}}, base);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->expiry, "7200");
  EXPECT_EQ(c->expiry_duration, absl::Hours(2));
  EXPECT_TRUE(c->auto_rebuild);
  EXPECT_EQ(c->auto_rebuild_grace_period_duration, absl::Minutes(30));
  auto s = ParseCrlConfig(json::object{{"disable", "true"}, {"auto_rebuild", "false"}}, *c);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->disable);
  EXPECT_FALSE(s->auto_rebuild);
  EXPECT_EQ(s->expiry, "7200");

  auto round_trip = DeserializeCrlConfig(SerializeCrlConfig(*s));
  ASSERT_TRUE(round_trip.ok()) << round_trip.status();
  EXPECT_EQ(json::serialize(RenderCrlConfig(*round_trip)), json::serialize(RenderCrlConfig(*s)));
  EXPECT_EQ(DeserializeCrlConfig("{\"expiry\":\"1h\"}").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(CrlConfigTest, RefusesWhatVaultRefuses) {
  auto code = [](const json::object& p) { return ParseCrlConfig(p, CrlConfig{}).status(); };
  auto bad_expiry = code({{"expiry", "soon"}});
  EXPECT_EQ(bad_expiry.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_expiry.message()),
              ::testing::HasSubstr("given expiry could not be decoded"));
  EXPECT_EQ(code({{"expiry", "0"}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"expiry", "-1h"}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"auto_rebuild_grace_period", "x"}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"auto_rebuild", "maybe"}}).code(), absl::StatusCode::kInvalidArgument);
  auto grace = code({{"auto_rebuild", true}, {"expiry", "12h"}});
  EXPECT_EQ(grace.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(grace.message()),
              ::testing::HasSubstr("must be strictly shorter than CRL expiry"));
  // A grace period at least the expiry is fine while auto_rebuild is off.
  EXPECT_TRUE(code({{"expiry", "12h"}}).ok());
  EXPECT_THAT(
      std::string(code({{"enable_delta", true}}).message()),
      ::testing::HasSubstr("Delta CRLs cannot be enabled when auto rebuilding is disabled"));
  EXPECT_THAT(std::string(code({{"enable_delta", true}, {"auto_rebuild", true}}).message()),
              ::testing::HasSubstr("not supported"));
}

}  // namespace
}  // namespace ward::pki
