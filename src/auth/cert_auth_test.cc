#include "auth/cert_auth.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "auth/auth_mounts.h"
#include "barrier/barrier.h"
#include "barrier/testing/unsealed_barrier.h"
#include "core/secure_bytes.h"
#include "core/testing/fake_clock.h"
#include "crypto/openssl_handles.h"
#include "crypto/x509.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"

namespace ward::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kPrefix[] = "auth/cert-test/";
constexpr char kInvalid[] = "invalid certificate or no client certificate supplied";
constexpr char kNoConstraint[] =
    "no chain matching all constraints could be found for this login certificate";

core::SecureBytes UnsealKey() {
  core::SecureBytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<uint8_t>(i * 7 + 1);
  return key;
}

// A certificate and its key, built directly with OpenSSL so tests can set any subject and SAN
// (URI SANs, OUs and e-mail addresses, which crypto/x509.h does not issue).
struct TestCert {
  crypto::X509Ptr cert;
  crypto::EvpPkeyPtr key;
  std::string Pem() const {
    crypto::BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(n));
  }
  std::string Der() const {
    unsigned char* buf = nullptr;
    int n = i2d_X509(cert.get(), &buf);
    std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
    OPENSSL_free(buf);
    return out;
  }
};

struct CertSpec {
  std::vector<std::pair<int, std::string>> subject;  // (NID, value), in order
  std::string san;                                   // OpenSSL config syntax, "" = none
  bool ca = false;
  absl::Time not_before;
  absl::Duration validity = absl::Hours(24);
};

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  crypto::X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  ASSERT_NE(ext, nullptr) << OBJ_nid2sn(nid) << " " << crypto::LastOpenSslError();
  ASSERT_EQ(X509_add_ext(cert, ext.get(), -1), 1);
}

// Issues a certificate for `spec`, signed by `issuer` (self-signed if null).
TestCert Issue(const CertSpec& spec, const TestCert* issuer) {
  static int serial = 1000;
  TestCert out;
  out.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  out.cert.reset(X509_new());
  X509* c = out.cert.get();
  X509_set_version(c, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(c), ++serial);
  ASN1_TIME_set(X509_getm_notBefore(c), absl::ToTimeT(spec.not_before));
  ASN1_TIME_set(X509_getm_notAfter(c), absl::ToTimeT(spec.not_before + spec.validity));
  X509_NAME* name = X509_get_subject_name(c);
  for (const auto& [nid, value] : spec.subject) {
    X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value.data()),
                               static_cast<int>(value.size()), -1, 0);
  }
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : c;
  EVP_PKEY* issuer_key = issuer != nullptr ? issuer->key.get() : out.key.get();
  X509_set_issuer_name(c, X509_get_subject_name(issuer_cert));
  X509_set_pubkey(c, out.key.get());
  AddExt(c, issuer_cert, NID_subject_key_identifier, "hash");
  AddExt(c, issuer_cert, NID_authority_key_identifier, "keyid:always");
  if (spec.ca) {
    AddExt(c, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(c, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(c, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(c, issuer_cert, NID_ext_key_usage, "clientAuth");
  }
  if (!spec.san.empty()) AddExt(c, issuer_cert, NID_subject_alt_name, spec.san);
  EXPECT_GT(X509_sign(c, issuer_key, EVP_sha256()), 0);
  return out;
}

using X509CrlPtr = std::unique_ptr<X509_CRL, crypto::Deleter<&X509_CRL_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, crypto::Deleter<&ASN1_TIME_free>>;

// A CRL naming `issuer` that revokes `revoked`, signed with `signer` (default: the issuer's key);
// PEM, or DER when `der`.
std::string MakeCrl(const TestCert& issuer, const std::vector<const TestCert*>& revoked,
                    absl::Time now, EVP_PKEY* signer = nullptr, bool der = false) {
  X509CrlPtr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);  // v2
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.cert.get()));
  Asn1TimePtr last(ASN1_TIME_set(nullptr, absl::ToTimeT(now)));
  Asn1TimePtr next(ASN1_TIME_set(nullptr, absl::ToTimeT(now + absl::Hours(24))));
  X509_CRL_set1_lastUpdate(crl.get(), last.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  for (const TestCert* cert : revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(cert->cert.get()));
    X509_REVOKED_set_revocationDate(r, last.get());
    X509_CRL_add0_revoked(crl.get(), r);
  }
  X509_CRL_sort(crl.get());
  EXPECT_GT(X509_CRL_sign(crl.get(), signer != nullptr ? signer : issuer.key.get(), EVP_sha256()),
            0);
  if (der) {
    unsigned char* buf = nullptr;
    int n = i2d_X509_CRL(crl.get(), &buf);
    std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
    OPENSSL_free(buf);
    return out;
  }
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string Serial(const TestCert& cert) {
  return std::to_string(ASN1_INTEGER_get(X509_get0_serialNumber(cert.cert.get())));
}

class CertAuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = barrier::testing::NewUnsealedBarrier(backend_, clock_, UnsealKey());
    ASSERT_TRUE(b.ok()) << b.status();
    barrier_ = *std::move(b);
    store_ = Open();
    ASSERT_NE(store_, nullptr);
    ca_ = Issue(CertSpec{{{NID_commonName, "Test Root"}}, "", true, Start(), absl::Hours(240)},
                nullptr);
    other_ca_ = Issue(
        CertSpec{{{NID_commonName, "Other Root"}}, "", true, Start(), absl::Hours(240)}, nullptr);
  }

  absl::Time Start() const { return clock_.Now() - absl::Minutes(1); }

  std::unique_ptr<CertAuthStore> Open() {
    auto store = CertAuthStore::Create(*barrier_, clock_, kPrefix);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  CertRole MustWrite(const std::string& name, CertRoleUpdate update) {
    auto role = store_->WriteRole(name, update);
    EXPECT_TRUE(role.ok()) << role.status();
    return role.ok() ? *role : CertRole{};
  }

  CertRoleUpdate RoleFor(const TestCert& anchor) {
    CertRoleUpdate u;
    u.certificate = anchor.Pem();
    u.token_policies = std::vector<std::string>{"web"};
    return u;
  }

  // A client leaf of `issuer` with common name `cn` and SANs `san`.
  TestCert Leaf(const TestCert& issuer, const std::string& cn, const std::string& san = "",
                const std::string& ou = "") {
    CertSpec spec{{{NID_commonName, cn}}, san, false, Start(), absl::Hours(24)};
    if (!ou.empty()) spec.subject.insert(spec.subject.begin(), {NID_organizationalUnitName, ou});
    return Issue(spec, &issuer);
  }

  storage::MemoryBackend backend_;
  core::FakeClock clock_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<CertAuthStore> store_;
  TestCert ca_, other_ca_;
};

TEST(CertGlobTest, FollowsGoGlob) {
  EXPECT_TRUE(CertGlobMatch("*", ""));
  EXPECT_TRUE(CertGlobMatch("*", "anything/at/all"));
  EXPECT_TRUE(CertGlobMatch("web.example.com", "web.example.com"));
  EXPECT_FALSE(CertGlobMatch("web.example.com", "web.example.co"));
  EXPECT_TRUE(CertGlobMatch("*.example.com", "a.example.com"));
  EXPECT_TRUE(CertGlobMatch("*.example.com", "a.b.example.com"));  // '*' crosses dots
  EXPECT_FALSE(CertGlobMatch("*.example.com", "example.com"));
  EXPECT_TRUE(CertGlobMatch("web-*", "web-"));
  EXPECT_TRUE(CertGlobMatch("spiffe://example.org/ns/*/sa/*", "spiffe://example.org/ns/prod/sa/api"));
  EXPECT_FALSE(CertGlobMatch("spiffe://example.org/ns/*/sa/*", "spiffe://example.org/ns/prod/x/api"));
  EXPECT_FALSE(CertGlobMatch("spiffe://example.org/ns/*/sa/*", "spiffe://evil.org/ns/a/sa/b"));
  EXPECT_TRUE(CertGlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(CertGlobMatch("a*b*c", "aXXcYYb"));
  // Prefix and suffix must not overlap.
  EXPECT_FALSE(CertGlobMatch("ab*ba", "aba"));
}

TEST_F(CertAuthStoreTest, WriteReadListDeleteAndReload) {
  CertRoleUpdate u = RoleFor(ca_);
  u.allowed_common_names = std::vector<std::string>{"web-*"};
  u.token_ttl = absl::Minutes(20);
  u.token_max_ttl = absl::Hours(1);
  CertRole role = MustWrite("web", u);
  EXPECT_EQ(role.display_name, "web");  // defaults to the name, as in Vault
  EXPECT_EQ(role.token_type, "default");
  MustWrite("api", RoleFor(ca_));
  EXPECT_THAT(store_->ListRoles(), ElementsAre("api", "web"));

  // An update changes only what it names.
  CertRoleUpdate rename;
  rename.display_name = "frontend";
  CertRole updated = MustWrite("web", rename);
  EXPECT_EQ(updated.display_name, "frontend");
  EXPECT_EQ(updated.certificate, ca_.Pem());
  EXPECT_THAT(updated.allowed_common_names, ElementsAre("web-*"));

  std::unique_ptr<CertAuthStore> reopened = Open();
  ASSERT_NE(reopened, nullptr);
  auto read = reopened->ReadRole("web");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->display_name, "frontend");
  EXPECT_EQ(read->token_ttl, absl::Minutes(20));
  EXPECT_EQ(read->token_max_ttl, absl::Hours(1));
  EXPECT_THAT(read->token_policies, ElementsAre("web"));

  ASSERT_TRUE(store_->DeleteRole("web").ok());
  EXPECT_TRUE(store_->DeleteRole("web").ok());
  EXPECT_EQ(store_->ReadRole("web").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Open()->ListRoles(), ElementsAre("api"));
}

TEST_F(CertAuthStoreTest, InvalidRolesAreRefused) {
  EXPECT_THAT(store_->WriteRole("web", {}).status().message(), HasSubstr("missing certificate"));
  CertRoleUpdate garbage;
  garbage.certificate = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  auto r = store_->WriteRole("web", garbage);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("failed to parse certificate"));
  EXPECT_EQ(store_->WriteRole("bad name!", RoleFor(ca_)).status().code(),
            absl::StatusCode::kInvalidArgument);
  CertRoleUpdate ttl = RoleFor(ca_);
  ttl.token_ttl = absl::Hours(2);
  ttl.token_max_ttl = absl::Hours(1);
  EXPECT_EQ(store_->WriteRole("web", ttl).status().code(), absl::StatusCode::kInvalidArgument);
  CertRoleUpdate batch = RoleFor(ca_);
  batch.token_type = "batch";
  EXPECT_EQ(store_->WriteRole("web", batch).status().code(), absl::StatusCode::kInvalidArgument);
  // A pinned leaf must allow TLS client authentication.
  TestCert server_only = Issue(CertSpec{{{NID_commonName, "srv"}}, "", false, Start()}, &ca_);
  crypto::X509ExtensionPtr removed(X509_delete_ext(
      server_only.cert.get(), X509_get_ext_by_NID(server_only.cert.get(), NID_ext_key_usage, -1)));
  ASSERT_NE(removed, nullptr);
  AddExt(server_only.cert.get(), ca_.cert.get(), NID_ext_key_usage, "serverAuth");
  X509_sign(server_only.cert.get(), ca_.key.get(), EVP_sha256());
  CertRoleUpdate pinned;
  pinned.certificate = server_only.Pem();
  EXPECT_THAT(store_->WriteRole("pin", pinned).status().message(),
              HasSubstr("TLS client authentication"));
  EXPECT_THAT(store_->ListRoles(), IsEmpty());
}

TEST_F(CertAuthStoreTest, LeafOfRoleCaMatchesWithVaultMetadata) {
  MustWrite("web", RoleFor(ca_));
  TestCert leaf = Leaf(ca_, "web-1.example.com");
  auto m = store_->Match({leaf.Der()}, "");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->role_name, "web");
  EXPECT_EQ(m->display_name, "web");
  EXPECT_THAT(m->token_policies, ElementsAre("web"));
  EXPECT_EQ(m->metadata.at("cert_name"), "web");
  EXPECT_EQ(m->metadata.at("common_name"), "web-1.example.com");
  long serial = ASN1_INTEGER_get(X509_get0_serialNumber(leaf.cert.get()));
  EXPECT_EQ(m->metadata.at("serial_number"), std::to_string(serial));
  // Colon-separated lower-case hex of the key identifiers (20-byte SHA-1 hashes here).
  const std::string& skid = m->metadata.at("subject_key_id");
  EXPECT_EQ(skid.size(), 20u * 3 - 1) << skid;
  EXPECT_EQ(skid.find_first_not_of("0123456789abcdef:"), std::string::npos) << skid;
  EXPECT_EQ(m->metadata.at("authority_key_id").size(), 20u * 3 - 1);
  EXPECT_NE(skid, m->metadata.at("authority_key_id"));
}

TEST_F(CertAuthStoreTest, CertificatesFromX509ModuleMatch) {
  auto ca = crypto::GenerateSelfSignedCa("Ward Dev CA", clock_.Now(), absl::Hours(48));
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto leaf = crypto::IssueServerCertificate(*ca, "client-1", {"client-1.internal"}, {},
                                             clock_.Now(), absl::Hours(24));
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  CertRoleUpdate u;
  u.certificate = ca->cert_pem;
  u.allowed_dns_sans = std::vector<std::string>{"*.internal"};
  MustWrite("dev", u);
  crypto::BioPtr bio(BIO_new_mem_buf(leaf->cert_pem.data(), static_cast<int>(leaf->cert_pem.size())));
  crypto::X509Ptr parsed(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(parsed, nullptr);
  TestCert t{std::move(parsed), nullptr};
  auto m = store_->Match({t.Der()}, "dev");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->metadata.at("common_name"), "client-1");
}

TEST_F(CertAuthStoreTest, WrongCaIsRefused) {
  MustWrite("web", RoleFor(ca_));
  auto m = store_->Match({Leaf(other_ca_, "web-1").Der()}, "");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.status().message(), kInvalid);
  // A leaf claiming to come from the role's CA but signed by another key.
  TestCert forged = Leaf(other_ca_, "web-1");
  X509_set_issuer_name(forged.cert.get(), X509_get_subject_name(ca_.cert.get()));
  X509_sign(forged.cert.get(), other_ca_.key.get(), EVP_sha256());
  EXPECT_EQ(store_->Match({forged.Der()}, "").status().message(), kInvalid);
}

TEST_F(CertAuthStoreTest, ExpiredAndNotYetValidCertificatesAreRefused) {
  MustWrite("web", RoleFor(ca_));
  TestCert leaf = Leaf(ca_, "web-1");
  ASSERT_TRUE(store_->Match({leaf.Der()}, "").ok());
  clock_.Advance(absl::Hours(25));  // the leaf lives 24 h
  EXPECT_EQ(store_->Match({leaf.Der()}, "").status().message(), kInvalid);
  EXPECT_FALSE(store_->MatchCached({leaf.Der()}).has_value());
  TestCert future =
      Issue(CertSpec{{{NID_commonName, "web-2"}}, "", false, clock_.Now() + absl::Hours(1)}, &ca_);
  EXPECT_EQ(store_->Match({future.Der()}, "").status().message(), kInvalid);
  // An expired CA fails the chains below it too.
  TestCert leaf2 = Leaf(ca_, "web-3");
  ASSERT_TRUE(store_->Match({leaf2.Der()}, "").ok());
  clock_.Advance(absl::Hours(240));
  EXPECT_EQ(store_->Match({leaf2.Der()}, "").status().message(), kInvalid);
}

TEST_F(CertAuthStoreTest, NoCertificateAndGarbageAreRefused) {
  MustWrite("web", RoleFor(ca_));
  auto none = store_->Match({}, "");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(none.status().message(), "client certificate must be supplied");
  EXPECT_EQ(store_->Match({"not DER"}, "").status().message(), kInvalid);
  EXPECT_FALSE(store_->MatchCached({}).has_value());
}

TEST_F(CertAuthStoreTest, CommonNameConstraint) {
  CertRoleUpdate u = RoleFor(ca_);
  u.allowed_common_names = std::vector<std::string>{"web-*", "exact.example.com"};
  MustWrite("web", u);
  EXPECT_TRUE(store_->Match({Leaf(ca_, "web-7").Der()}, "").ok());
  EXPECT_TRUE(store_->Match({Leaf(ca_, "exact.example.com").Der()}, "").ok());
  auto refused = store_->Match({Leaf(ca_, "db-1").Der()}, "");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), kNoConstraint);
}

TEST_F(CertAuthStoreTest, DnsSanConstraint) {
  CertRoleUpdate u = RoleFor(ca_);
  u.allowed_dns_sans = std::vector<std::string>{"*.svc.example.com"};
  MustWrite("web", u);
  EXPECT_TRUE(
      store_->Match({Leaf(ca_, "x", "DNS:other.org,DNS:api.svc.example.com").Der()}, "").ok());
  EXPECT_EQ(store_->Match({Leaf(ca_, "api.svc.example.com", "DNS:api.other.org").Der()}, "")
                .status()
                .message(),
            kNoConstraint);
  // The common name is not a DNS SAN.
  EXPECT_EQ(store_->Match({Leaf(ca_, "api.svc.example.com").Der()}, "").status().message(),
            kNoConstraint);
}

TEST_F(CertAuthStoreTest, UriSanConstraintWithSpiffeGlob) {
  CertRoleUpdate u = RoleFor(ca_);
  u.allowed_uri_sans = std::vector<std::string>{"spiffe://example.org/ns/*/sa/*"};
  MustWrite("workloads", u);
  auto m =
      store_->Match({Leaf(ca_, "", "URI:spiffe://example.org/ns/prod/sa/billing").Der()}, "");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->metadata.at("common_name"), "");
  EXPECT_EQ(
      store_->Match({Leaf(ca_, "w", "URI:spiffe://other.org/ns/prod/sa/billing").Der()}, "")
          .status()
          .message(),
      kNoConstraint);
  EXPECT_EQ(store_->Match({Leaf(ca_, "w", "DNS:example.org").Der()}, "").status().message(),
            kNoConstraint);
}

TEST_F(CertAuthStoreTest, EmailAndOrganizationalUnitConstraints) {
  CertRoleUpdate u = RoleFor(ca_);
  u.allowed_organizational_units = std::vector<std::string>{"payments", "ops-*"};
  u.allowed_email_sans = std::vector<std::string>{"*@example.com"};
  MustWrite("people", u);
  EXPECT_TRUE(
      store_->Match({Leaf(ca_, "alice", "email:alice@example.com", "ops-eu").Der()}, "").ok());
  EXPECT_EQ(store_->Match({Leaf(ca_, "bob", "email:bob@example.com", "sales").Der()}, "")
                .status()
                .message(),
            kNoConstraint);
  EXPECT_EQ(store_->Match({Leaf(ca_, "eve", "email:eve@evil.com", "payments").Der()}, "")
                .status()
                .message(),
            kNoConstraint);
  EXPECT_EQ(store_->Match({Leaf(ca_, "carol", "", "payments").Der()}, "").status().message(),
            kNoConstraint);
}

TEST_F(CertAuthStoreTest, IntermediatesFromTheClientChainAreUsed) {
  TestCert intermediate =
      Issue(CertSpec{{{NID_commonName, "Issuing CA"}}, "", true, Start(), absl::Hours(100)}, &ca_);
  TestCert leaf = Leaf(intermediate, "web-1");
  MustWrite("root-anchored", RoleFor(ca_));
  auto m = store_->Match({leaf.Der(), intermediate.Der()}, "");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->role_name, "root-anchored");
  EXPECT_EQ(store_->Match({leaf.Der()}, "").status().message(), kInvalid);
  // A role anchored at the intermediate accepts the leaf alone (partial chains, as Go's Verify).
  MustWrite("issuing-anchored", RoleFor(intermediate));
  auto alone = store_->Match({leaf.Der()}, "");
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->role_name, "issuing-anchored");
}

TEST_F(CertAuthStoreTest, PinnedLeafMatchesOnlyItself) {
  TestCert pinned = Leaf(ca_, "pinned");
  CertRoleUpdate u;
  u.certificate = pinned.Pem();
  MustWrite("pin", u);
  auto m = store_->Match({pinned.Der()}, "");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->role_name, "pin");
  EXPECT_EQ(store_->Match({Leaf(ca_, "pinned").Der()}, "").status().message(), kInvalid);
  clock_.Advance(absl::Hours(25));
  EXPECT_EQ(store_->Match({pinned.Der()}, "").status().message(), kInvalid);
}

TEST_F(CertAuthStoreTest, NameSelectsTheRoleAndOrderIsByName) {
  CertRoleUpdate narrow = RoleFor(ca_);
  narrow.allowed_common_names = std::vector<std::string>{"db-*"};
  MustWrite("b-db", narrow);
  MustWrite("c-any", RoleFor(ca_));
  MustWrite("a-other", RoleFor(other_ca_));
  TestCert leaf = Leaf(ca_, "db-1");
  EXPECT_EQ(store_->Match({leaf.Der()}, "")->role_name, "b-db");
  EXPECT_EQ(store_->Match({leaf.Der()}, "c-any")->role_name, "c-any");
  EXPECT_EQ(store_->Match({leaf.Der()}, "a-other").status().message(), kInvalid);
  EXPECT_EQ(store_->Match({leaf.Der()}, "missing").status().message(), kInvalid);
}

TEST_F(CertAuthStoreTest, MatchCachedHitsUntilRolesChangeOrTheCertificateExpires) {
  MustWrite("web", RoleFor(ca_));
  TestCert leaf = Leaf(ca_, "web-1");
  TestCert stranger = Leaf(other_ca_, "x");
  ASSERT_TRUE(store_->MatchCached({leaf.Der()}).has_value());
  EXPECT_EQ(store_->cache_hits(), 0u);
  auto again = store_->MatchCached({leaf.Der()});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->role_name, "web");
  EXPECT_EQ(store_->cache_hits(), 1u);
  EXPECT_FALSE(store_->MatchCached({stranger.Der()}).has_value());
  EXPECT_FALSE(store_->MatchCached({stranger.Der()}).has_value());  // negative results cache too
  EXPECT_EQ(store_->cache_hits(), 2u);
  EXPECT_EQ(store_->cache_size(), 2u);

  // A role change empties the cache: the stranger's CA is trusted now.
  MustWrite("other", RoleFor(other_ca_));
  EXPECT_EQ(store_->cache_size(), 0u);
  auto now_trusted = store_->MatchCached({stranger.Der()});
  ASSERT_TRUE(now_trusted.has_value());
  EXPECT_EQ(now_trusted->role_name, "other");

  ASSERT_TRUE(store_->DeleteRole("web").ok());
  EXPECT_FALSE(store_->MatchCached({leaf.Der()}).has_value());

  // Expiry is not hidden by a cached answer.
  ASSERT_TRUE(store_->MatchCached({stranger.Der()}).has_value());
  clock_.Advance(absl::Hours(25));
  EXPECT_FALSE(store_->MatchCached({stranger.Der()}).has_value());
}

TEST_F(CertAuthStoreTest, ClosedStoreRefusesWrites) {
  MustWrite("web", RoleFor(ca_));
  store_->Close();
  EXPECT_EQ(store_->WriteRole("api", RoleFor(ca_)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->DeleteRole("web").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Match({Leaf(ca_, "w").Der()}, "").ok());
}

TEST_F(CertAuthStoreTest, AuthMountTableEnablesFindsAndDisablesCertMounts) {
  auto table = AuthMountTable::Create(*barrier_, clock_);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_TRUE((*table)->Enable("cert", "cert", "certs").ok());
  ASSERT_TRUE((*table)->Enable("certs-b", "cert", "").ok());
  ASSERT_TRUE((*table)->Enable("approle", "approle", "").ok());
  EXPECT_EQ((*table)->Enable("cert/nested", "cert", "").code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<CertMount> mounts = (*table)->CertMounts();
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(mounts[0].entry.path, "cert/");
  EXPECT_EQ(mounts[1].entry.path, "certs-b/");
  EXPECT_EQ(mounts[0].entry.type, "cert");
  auto found = (*table)->FindCert("cert/certs/web");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->rest, "certs/web");
  EXPECT_FALSE((*table)->FindCert("approle/login").has_value());
  EXPECT_FALSE((*table)->FindAppRole("cert/login").has_value());
  ASSERT_TRUE(found->store->WriteRole("web", RoleFor(ca_)).ok());

  // Reloaded from storage, the role is still there.
  auto reloaded = AuthMountTable::Create(*barrier_, clock_);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  auto again = (*reloaded)->FindCert("cert/login");
  ASSERT_TRUE(again.has_value());
  EXPECT_THAT(again->store->ListRoles(), ElementsAre("web"));

  // Disabling deletes the roles; the store a request still holds refuses writes.
  std::string prefix = "auth/" + found->entry.uuid + "/";
  ASSERT_TRUE((*table)->Disable("cert").ok());
  EXPECT_FALSE((*table)->FindCert("cert/login").has_value());
  EXPECT_EQ(found->store->WriteRole("api", RoleFor(ca_)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto left = barrier_->List(prefix, "", 10);
  ASSERT_TRUE(left.ok());
  EXPECT_THAT(left->keys, IsEmpty());
  ASSERT_TRUE((*table)->Enable("cert", "cert", "").ok());
  EXPECT_THAT((*table)->FindCert("cert/login")->store->ListRoles(), IsEmpty());
}

TEST_F(CertAuthStoreTest, TokenBoundCidrsAreStoredInVaultFormAndCarriedByMatches) {
  CertRoleUpdate u = RoleFor(ca_);
  u.token_bound_cidrs =
      std::vector<std::string>{"10.0.0.0/8", "127.0.0.1/32", "2001:DB8:0::/32", "10.1.2.3/16",
                               "::1"};
  CertRole role = MustWrite("web", u);
  // go-sockaddr's String(): no "/32" or "/128" for one host, canonical IPv6, host bits kept.
  EXPECT_THAT(role.token_bound_cidrs,
              ElementsAre("10.0.0.0/8", "127.0.0.1", "2001:db8::/32", "10.1.2.3/16", "::1"));
  EXPECT_FALSE(role.legacy_bound_cidrs);

  TestCert leaf = Leaf(ca_, "web-1");
  auto m = store_->Match({leaf.Der()}, "");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->token_bound_cidrs, role.token_bound_cidrs);
  EXPECT_TRUE(m->AllowsSource("10.200.0.1"));
  EXPECT_TRUE(m->AllowsSource("127.0.0.1"));
  EXPECT_TRUE(m->AllowsSource("::ffff:127.0.0.1"));
  EXPECT_TRUE(m->AllowsSource("2001:db8:ffff::1"));
  EXPECT_FALSE(m->AllowsSource("127.0.0.2"));
  EXPECT_FALSE(m->AllowsSource("192.0.2.7"));
  EXPECT_FALSE(m->AllowsSource("not an address"));
  auto cached = store_->MatchCached({leaf.Der()});
  ASSERT_TRUE(cached.has_value());
  EXPECT_FALSE(cached->AllowsSource("192.0.2.7"));
  EXPECT_TRUE(cached->AllowsSource("10.0.0.1"));

  // Reloaded from storage; an update that does not name them keeps them.
  CertRoleUpdate rename;
  rename.display_name = "frontend";
  MustWrite("web", rename);
  auto reread = Open()->ReadRole("web");
  ASSERT_TRUE(reread.ok()) << reread.status();
  EXPECT_EQ(reread->token_bound_cidrs, role.token_bound_cidrs);

  // Unbound roles accept any source.
  MustWrite("open", RoleFor(other_ca_));
  auto open = store_->Match({Leaf(other_ca_, "x").Der()}, "open");
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(open->AllowsSource("192.0.2.7"));
}

TEST_F(CertAuthStoreTest, LegacyBoundCidrsNameFollowsVaultUpgradeRules) {
  CertRoleUpdate legacy = RoleFor(ca_);
  legacy.bound_cidrs = std::vector<std::string>{"10.0.0.0/8"};
  CertRole role = MustWrite("web", legacy);
  EXPECT_THAT(role.token_bound_cidrs, ElementsAre("10.0.0.0/8"));
  EXPECT_TRUE(role.legacy_bound_cidrs);
  EXPECT_TRUE(Open()->ReadRole("web")->legacy_bound_cidrs);

  // Both names: the new one wins and the legacy one is cleared.
  CertRoleUpdate both;
  both.bound_cidrs = std::vector<std::string>{"10.0.0.0/8"};
  both.token_bound_cidrs = std::vector<std::string>{"192.0.2.0/24"};
  role = MustWrite("web", both);
  EXPECT_THAT(role.token_bound_cidrs, ElementsAre("192.0.2.0/24"));
  EXPECT_FALSE(role.legacy_bound_cidrs);
}

TEST_F(CertAuthStoreTest, MalformedBoundCidrIsRefusedAndChangesNothing) {
  CertRoleUpdate u = RoleFor(ca_);
  u.token_bound_cidrs = std::vector<std::string>{"10.0.0.0/8"};
  MustWrite("web", u);
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/-1", "example.com", "", "10.0.0/8"}) {
    CertRoleUpdate change;
    change.token_bound_cidrs = std::vector<std::string>{"192.0.2.0/24", bad};
    auto r = store_->WriteRole("web", change);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(r.status().message(), std::string("invalid CIDR block \"") + bad + "\"");
    CertRoleUpdate fresh = RoleFor(ca_);
    fresh.bound_cidrs = std::vector<std::string>{bad};
    EXPECT_EQ(store_->WriteRole("new", fresh).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(store_->ReadRole("web")->token_bound_cidrs, ElementsAre("10.0.0.0/8"));
  EXPECT_THAT(Open()->ListRoles(), ElementsAre("web"));
}

TEST_F(CertAuthStoreTest, CrlOfTheIssuerRevokesTheLeafForLoginAndCachedMatches) {
  MustWrite("web", RoleFor(ca_));
  TestCert revoked = Leaf(ca_, "web-1");
  TestCert kept = Leaf(ca_, "web-2");
  ASSERT_TRUE(store_->MatchCached({revoked.Der()}).has_value());

  auto written = store_->WriteCrl("Main", MakeCrl(ca_, {&revoked}, clock_.Now()));
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->name, "main");  // lower-cased, as Vault does
  EXPECT_THAT(written->serials, ElementsAre(Serial(revoked)));
  EXPECT_TRUE(written->signature_verified);
  EXPECT_EQ(written->issuer, "CN=Test Root");

  auto refused = store_->Match({revoked.Der()}, "");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), kNoConstraint);
  EXPECT_EQ(store_->Match({revoked.Der()}, "web").status().message(), kNoConstraint);
  EXPECT_FALSE(store_->MatchCached({revoked.Der()}).has_value());  // the cache was emptied
  EXPECT_TRUE(store_->Match({kept.Der()}, "").ok());
  EXPECT_TRUE(store_->MatchCached({kept.Der()}).has_value());

  // Stored: a reopened store still refuses it.
  std::unique_ptr<CertAuthStore> reopened = Open();
  ASSERT_NE(reopened, nullptr);
  EXPECT_THAT(reopened->ListCrls(), ElementsAre("main"));
  EXPECT_EQ(reopened->Match({revoked.Der()}, "").status().message(), kNoConstraint);
  auto read = reopened->ReadCrl("MAIN");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(read->serials, ElementsAre(Serial(revoked)));
  EXPECT_TRUE(read->signature_verified);

  // Deleting the CRL lets the certificate in again, cached matches included.
  ASSERT_TRUE(store_->DeleteCrl("main").ok());
  EXPECT_TRUE(store_->Match({revoked.Der()}, "").ok());
  EXPECT_TRUE(store_->MatchCached({revoked.Der()}).has_value());
  EXPECT_EQ(store_->DeleteCrl("main").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadCrl("main").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadCrl("main").status().message(), "no such CRL main");
  EXPECT_THAT(Open()->ListCrls(), IsEmpty());
}

TEST_F(CertAuthStoreTest, CrlRevokesOnlyCertificatesOfItsIssuer) {
  MustWrite("web", RoleFor(ca_));
  TestCert leaf = Leaf(ca_, "web-1");
  // Same serial, other issuer: a CRL of other_ca_ that lists the leaf's serial.
  auto other = store_->WriteCrl("other", MakeCrl(other_ca_, {&leaf}, clock_.Now()));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(other->signature_verified);  // no role trusts other_ca_: nothing to check with
  EXPECT_TRUE(store_->Match({leaf.Der()}, "").ok());
  // An empty CRL of the right issuer revokes nothing.
  ASSERT_TRUE(store_->WriteCrl("empty", MakeCrl(ca_, {}, clock_.Now())).ok());
  EXPECT_TRUE(store_->Match({leaf.Der()}, "").ok());
  EXPECT_THAT(store_->ReadCrl("empty")->serials, IsEmpty());
}

TEST_F(CertAuthStoreTest, CrlRevokingAnIntermediateOrAPinnedLeafRefusesIt) {
  TestCert intermediate =
      Issue(CertSpec{{{NID_commonName, "Issuing CA"}}, "", true, Start(), absl::Hours(100)}, &ca_);
  TestCert leaf = Leaf(intermediate, "web-1");
  MustWrite("web", RoleFor(ca_));
  ASSERT_TRUE(store_->Match({leaf.Der(), intermediate.Der()}, "").ok());
  ASSERT_TRUE(store_->WriteCrl("root", MakeCrl(ca_, {&intermediate}, clock_.Now())).ok());
  EXPECT_EQ(store_->Match({leaf.Der(), intermediate.Der()}, "").status().message(),
            kNoConstraint);

  TestCert pinned = Leaf(other_ca_, "pinned");
  CertRoleUpdate pin;
  pin.certificate = pinned.Pem();
  MustWrite("pin", pin);
  ASSERT_TRUE(store_->Match({pinned.Der()}, "pin").ok());
  ASSERT_TRUE(store_->WriteCrl("other", MakeCrl(other_ca_, {&pinned}, clock_.Now())).ok());
  EXPECT_EQ(store_->Match({pinned.Der()}, "pin").status().message(), kNoConstraint);
}

TEST_F(CertAuthStoreTest, CrlWithABadSignatureOrGarbageIsRefusedAndStoresNothing) {
  MustWrite("web", RoleFor(ca_));
  TestCert leaf = Leaf(ca_, "web-1");
  // Names the role's CA as issuer, signed by another key.
  std::string forged = MakeCrl(ca_, {&leaf}, clock_.Now(), other_ca_.key.get());
  auto r = store_->WriteCrl("main", forged);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("CRL signature does not verify"));
  for (const std::string& garbage :
       {std::string("not a CRL"), std::string(""),
        std::string("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), leaf.Pem()}) {
    auto g = store_->WriteCrl("main", garbage);
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << garbage;
    EXPECT_EQ(g.status().message(), "failed to parse CRL");
  }
  EXPECT_EQ(store_->WriteCrl("bad name!", MakeCrl(ca_, {&leaf}, clock_.Now())).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store_->ListCrls(), IsEmpty());
  EXPECT_THAT(Open()->ListCrls(), IsEmpty());
  EXPECT_TRUE(store_->Match({leaf.Der()}, "").ok());

  // DER is accepted as well as PEM; a replacement under the same name replaces.
  ASSERT_TRUE(store_->WriteCrl("main", MakeCrl(ca_, {&leaf}, clock_.Now(), nullptr, true)).ok());
  EXPECT_EQ(store_->Match({leaf.Der()}, "").status().message(), kNoConstraint);
  ASSERT_TRUE(store_->WriteCrl("main", MakeCrl(ca_, {}, clock_.Now())).ok());
  EXPECT_TRUE(store_->Match({leaf.Der()}, "").ok());
  EXPECT_THAT(store_->ListCrls(), ElementsAre("main"));
}

TEST_F(CertAuthStoreTest, ClosedStoreRefusesCrlWrites) {
  MustWrite("web", RoleFor(ca_));
  ASSERT_TRUE(store_->WriteCrl("main", MakeCrl(ca_, {}, clock_.Now())).ok());
  store_->Close();
  EXPECT_EQ(store_->WriteCrl("other", MakeCrl(ca_, {}, clock_.Now())).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->DeleteCrl("main").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store_->ListCrls(), ElementsAre("main"));
}

TEST_F(CertAuthStoreTest, RolesStoredBeforeBoundCidrsLoadUnboundAndBadStoredCrlsAreDataLoss) {
  CertRoleUpdate u = RoleFor(ca_);
  u.token_bound_cidrs = std::vector<std::string>{"10.0.0.0/8"};
  MustWrite("web", u);
  const std::string key = std::string(kPrefix) + "cert/web";
  auto stored = barrier_->Get(key);
  ASSERT_TRUE(stored.ok()) << stored.status();
  const std::string fields = R"(,"token_bound_cidrs":["10.0.0.0/8"],"legacy_bound_cidrs":false)";
  size_t at = stored->find(fields);
  ASSERT_NE(at, std::string::npos) << *stored;
  ASSERT_TRUE(barrier_->Put(key, stored->substr(0, at) + stored->substr(at + fields.size())).ok());
  std::unique_ptr<CertAuthStore> old = Open();
  ASSERT_NE(old, nullptr);
  EXPECT_THAT(old->ReadRole("web")->token_bound_cidrs, IsEmpty());
  EXPECT_FALSE(old->ReadRole("web")->legacy_bound_cidrs);

  // A stored CRL that does not parse is data loss, not silently dropped.
  ASSERT_TRUE(barrier_
                  ->Put(std::string(kPrefix) + "crls/main",
                        R"({"version":1,"name":"main","crl":"garbage","signature_verified":false})")
                  .ok());
  auto broken = CertAuthStore::Create(*barrier_, clock_, kPrefix);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ward::auth
