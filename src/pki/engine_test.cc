#include "pki/engine.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "barrier/barrier.h"
#include "core/secure_bytes.h"
#include "core/testing/fake_clock.h"
#include "core/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"

namespace ward::pki {
namespace {

namespace json = boost::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kPrefix[] = "logical/pki-test/";

core::SecureBytes UnsealKey() {
  core::SecureBytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<uint8_t>(i * 7 + 1);
  return key;
}

crypto::X509Ptr Cert(const std::string& pem) {
  auto cert = ParseCertificatePem(pem);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return cert.ok() ? *std::move(cert) : nullptr;
}

// Verifies `leaf_pem` against the trust anchors `anchors_pem` (with `chain_pem` as untrusted
// intermediates) at time `at`; returns the X509_V_* result.
int Verify(const std::string& anchors_pem, const std::string& leaf_pem, absl::Time at,
           const std::vector<std::string>& chain_pem = {}) {
  crypto::X509StorePtr store(X509_STORE_new());
  auto anchors = ParseCertificatesPem(anchors_pem);
  EXPECT_TRUE(anchors.ok());
  for (auto& a : *anchors) X509_STORE_add_cert(store.get(), a.get());
  crypto::X509Ptr leaf = Cert(leaf_pem);
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  std::vector<crypto::X509Ptr> held;
  for (const std::string& pem : chain_pem) {
    held.push_back(Cert(pem));
    sk_X509_push(untrusted, held.back().get());
  }
  crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  EXPECT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted), 1);
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(at));
  int result = X509_verify_cert(ctx.get()) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx.get());
  sk_X509_free(untrusted);
  return result;
}

std::string FlipCsrSignature(const std::string& pem) {
  crypto::BioPtr in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509ReqPtr req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  bytes[bytes.size() - 1] ^= 0x01;  // last byte of the signature value
  const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
  X509ReqPtr broken(d2i_X509_REQ(nullptr, &p, static_cast<long>(bytes.size())));
  EXPECT_NE(broken, nullptr);
  crypto::BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(out.get(), broken.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

class PkiEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = barrier::Barrier::Create(backend_, clock_);
    ASSERT_TRUE(b.ok()) << b.status();
    barrier_ = *std::move(b);
    ASSERT_TRUE(barrier_->Initialize(UnsealKey()).ok());
    ASSERT_TRUE(barrier_->Unseal(UnsealKey()).ok());
    engine_ = Open();
    ASSERT_NE(engine_, nullptr);
  }

  std::unique_ptr<PkiEngine> Open() {
    auto engine = PkiEngine::Create(*barrier_, clock_, kPrefix);
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? *std::move(engine) : nullptr;
  }

  GeneratedIssuer MustRoot(const std::string& name, absl::Duration ttl = absl::Hours(24 * 30),
                           KeySpec key = {}) {
    RootRequest req;
    req.common_name = "Ward Root " + name;
    req.trust_domain = "example.org";
    req.issuer_name = name;
    req.ttl = ttl;
    req.key = key;
    auto root = engine_->GenerateRoot(req);
    EXPECT_TRUE(root.ok()) << root.status();
    return root.ok() ? *std::move(root) : GeneratedIssuer{};
  }

  void MustRole(const json::object& params, const std::string& name = "web") {
    auto role = ParseRole(name, params, nullptr);
    ASSERT_TRUE(role.ok()) << role.status();
    ASSERT_TRUE(engine_->WriteRole(*role).ok());
  }

  IssueRequest Svid(const std::string& id = "spiffe://example.org/ns/prod/sa/web") {
    IssueRequest req;
    req.uri_sans = {id};
    return req;
  }

  IssuedCertificate MustIssue(const IssueRequest& req, const std::string& role = "web") {
    auto issued = engine_->Issue(role, req);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? *std::move(issued) : IssuedCertificate{};
  }

  json::object WebRole() {
    return json::object{{"allowed_uri_sans", "spiffe://example.org/ns/*/sa/*"},
                        {"allowed_domains", "example.org"},
                        {"allow_subdomains", true}};
  }

  core::FakeClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<PkiEngine> engine_;
};

TEST_F(PkiEngineTest, FirstRootIsActiveDefaultAndKeepsItsKey) {
  GeneratedIssuer root = MustRoot("r1");
  EXPECT_FALSE(root.private_key.has_value());  // internal
  EXPECT_EQ(root.issuer.state, IssuerState::kActive);
  EXPECT_TRUE(root.issuer.is_default);
  EXPECT_EQ(root.issuer.issuer_id.size(), 36u);
  EXPECT_EQ(root.issuer.trust_domain_id, "spiffe://example.org");
  EXPECT_EQ(root.issuer.key_type, "ec");
  auto read = engine_->ReadIssuer("default");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->issuer_id, root.issuer.issuer_id);
  EXPECT_EQ(engine_->ReadIssuer("r1")->issuer_id, root.issuer.issuer_id);
  EXPECT_EQ(engine_->ReadIssuer("nope").status().code(), absl::StatusCode::kNotFound);
  // No key material reaches storage in the clear.
  auto page = backend_.List(kPrefix, "", 0);
  ASSERT_TRUE(page.ok());
  for (const std::string& key : page->keys) {
    auto rec = backend_.Get(key);
    ASSERT_TRUE(rec.ok());
    EXPECT_EQ(rec->value.find("PRIVATE KEY"), std::string::npos) << key;
  }
}

TEST_F(PkiEngineTest, ExportedRootReturnsItsKeyOnce) {
  RootRequest req;
  req.common_name = "Exported";
  req.exported = true;
  req.key = KeySpec{KeyType::kEd25519, 0};
  auto root = engine_->GenerateRoot(req);
  ASSERT_TRUE(root.ok()) << root.status();
  ASSERT_TRUE(root->private_key.has_value());
  EXPECT_EQ(root->private_key_type, "ed25519");
  auto key = ParsePrivateKeyPem(root->private_key->view());
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(KeyMatchesCertificate(Cert(root->issuer.certificate).get(), key->get()));
}

TEST_F(PkiEngineTest, IssuerNamesAreUnique) {
  MustRoot("r1");
  RootRequest req;
  req.common_name = "Other";
  req.issuer_name = "r1";
  EXPECT_EQ(engine_->GenerateRoot(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.issuer_name = "default";
  EXPECT_EQ(engine_->GenerateRoot(req).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PkiEngineTest, IssuedLeafIsAValidSvid) {
  GeneratedIssuer root = MustRoot("r1");
  MustRole(WebRole());
  IssuedCertificate leaf = MustIssue(Svid());
  ASSERT_FALSE(leaf.certificate.empty());
  EXPECT_EQ(leaf.issuing_ca, root.issuer.certificate);
  EXPECT_THAT(leaf.ca_chain, ElementsAre(root.issuer.certificate));
  ASSERT_TRUE(leaf.private_key.has_value());
  EXPECT_EQ(leaf.private_key_type, "ec");
  EXPECT_EQ(Verify(engine_->TrustBundlePem(), leaf.certificate, clock_.Now()), X509_V_OK);

  crypto::X509Ptr cert = Cert(leaf.certificate);
  auto key = ParsePrivateKeyPem(leaf.private_key->view());
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(KeyMatchesCertificate(cert.get(), key->get()));
  // Exactly one URI SAN; no subject, so the SAN extension is critical.
  Names names = NamesOf(cert.get());
  EXPECT_THAT(names.uri_sans, ElementsAre("spiffe://example.org/ns/prod/sa/web"));
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(cert.get())), 0);
  int san_crit = -1;
  GENERAL_NAMES* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, &san_crit, nullptr));
  GENERAL_NAMES_free(sans);
  EXPECT_EQ(san_crit, 1);
  // basicConstraints critical CA:FALSE.
  int bc_crit = -1;
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(cert.get(), NID_basic_constraints, &bc_crit, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ(bc_crit, 1);
  EXPECT_FALSE(bc->ca);
  BASIC_CONSTRAINTS_free(bc);
  // keyUsage critical digitalSignature only; EKU serverAuth + clientAuth.
  int ku_crit = -1;
  ASN1_BIT_STRING* ku =
      static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(cert.get(), NID_key_usage, &ku_crit, nullptr));
  ASN1_BIT_STRING_free(ku);
  EXPECT_EQ(ku_crit, 1);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  // Positive random serial in Vault's colon-hex form; validity one hour (role ttl).
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
  EXPECT_NE(serial->type, V_ASN1_NEG_INTEGER);
  EXPECT_EQ(leaf.serial_number, SerialColonHex(cert.get()));
  EXPECT_EQ(leaf.serial_number.size(), 16u * 3 - 1);
  EXPECT_EQ(leaf.expiration, absl::ToUnixSeconds(clock_.Now() + absl::Hours(1)));
  EXPECT_EQ(leaf.not_before, absl::ToUnixSeconds(clock_.Now() - kBackdate));
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
}

TEST_F(PkiEngineTest, FlagsAndKeyTypesShapeTheLeaf) {
  MustRoot("r1");
  json::object params = WebRole();
  params["server_flag"] = false;
  params["key_type"] = "rsa";
  MustRole(params);
  IssueRequest req = Svid();
  req.common_name = "web.example.org";
  IssuedCertificate leaf = MustIssue(req);
  crypto::X509Ptr cert = Cert(leaf.certificate);
  EXPECT_EQ(leaf.private_key_type, "rsa");
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_EQ(X509_get_key_usage(cert.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  Names names = NamesOf(cert.get());
  EXPECT_EQ(names.common_name, "web.example.org");
  EXPECT_THAT(names.dns_sans, ElementsAre("web.example.org"));
}

TEST_F(PkiEngineTest, UnknownRoleAndNoIssuerAreNotFound) {
  EXPECT_EQ(engine_->Issue("web", Svid()).status().code(), absl::StatusCode::kNotFound);
  MustRole(WebRole());
  EXPECT_EQ(engine_->Issue("web", Svid()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PkiEngineTest, TtlIsCappedToMaxTtlWithAWarningAndToTheIssuer) {
  MustRoot("r1", absl::Hours(10));
  json::object params = WebRole();
  params["max_ttl"] = "2h";
  MustRole(params);
  IssueRequest req = Svid();
  req.ttl = absl::Hours(5);
  IssuedCertificate capped = MustIssue(req);
  EXPECT_EQ(capped.expiration, absl::ToUnixSeconds(clock_.Now() + absl::Hours(2)));
  ASSERT_EQ(capped.warnings.size(), 1u);
  EXPECT_THAT(capped.warnings[0], HasSubstr("maxTTL is being used"));

  params["max_ttl"] = "48h";
  MustRole(params);
  req.ttl = absl::Hours(20);
  IssuedCertificate clamped = MustIssue(req);  // root ends in 10h: truncated
  EXPECT_EQ(clamped.expiration, absl::ToUnixSeconds(clock_.Now() + absl::Hours(10)));

  params["leaf_not_after_behavior"] = "err";
  MustRole(params);
  auto refused = engine_->Issue("web", req);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("beyond the expiration of the CA"));
}

TEST_F(PkiEngineTest, SignUsesTheCsrKeyAndChecksItsNames) {
  MustRoot("r1");
  MustRole(WebRole());
  auto key = GenerateKey(KeySpec{});
  ASSERT_TRUE(key.ok());
  auto csr = BuildCsr(key->get(), "", {"spiffe://example.org/ns/prod/sa/api"});
  ASSERT_TRUE(csr.ok());
  auto signed_cert = engine_->Sign("web", *csr, IssueRequest{});
  ASSERT_TRUE(signed_cert.ok()) << signed_cert.status();
  EXPECT_FALSE(signed_cert->private_key.has_value());
  crypto::X509Ptr cert = Cert(signed_cert->certificate);
  EXPECT_TRUE(KeyMatchesCertificate(cert.get(), key->get()));
  EXPECT_THAT(NamesOf(cert.get()).uri_sans, ElementsAre("spiffe://example.org/ns/prod/sa/api"));
  EXPECT_EQ(Verify(engine_->TrustBundlePem(), signed_cert->certificate, clock_.Now()), X509_V_OK);
}

TEST_F(PkiEngineTest, SignRefusesDisallowedCsrNames) {
  MustRoot("r1");
  MustRole(WebRole());
  auto key = GenerateKey(KeySpec{});
  ASSERT_TRUE(key.ok());
  auto bad_uri = BuildCsr(key->get(), "", {"spiffe://x/y"});
  ASSERT_TRUE(bad_uri.ok());
  auto refused = engine_->Sign("web", *bad_uri, IssueRequest{});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "uri_sans spiffe://x/y not allowed by role web");

  auto bad_cn = BuildCsr(key->get(), "evil.com", {"spiffe://example.org/ns/a/sa/b"});
  ASSERT_TRUE(bad_cn.ok());
  EXPECT_EQ(engine_->Sign("web", *bad_cn, IssueRequest{}).status().message(),
            "common_name evil.com not allowed by role web");

  auto good = BuildCsr(key->get(), "", {"spiffe://example.org/ns/a/sa/b"});
  ASSERT_TRUE(good.ok());
  IssueRequest with_ip;
  with_ip.ip_sans = {"10.1.2.3"};
  json::object no_ip = WebRole();
  no_ip["allow_ip_sans"] = false;
  MustRole(no_ip);
  EXPECT_EQ(engine_->Sign("web", *good, with_ip).status().message(),
            "ip_sans 10.1.2.3 not allowed by role web");
  IssueRequest with_dns;
  with_dns.alt_names = {"evil.com"};
  EXPECT_EQ(engine_->Sign("web", *good, with_dns).status().message(),
            "alt_names evil.com not allowed by role web");
  EXPECT_TRUE(engine_->ListCertificates().empty());
}

TEST_F(PkiEngineTest, SignRefusesBadSignatureAndWrongKeyType) {
  MustRoot("r1");
  MustRole(WebRole());
  auto key = GenerateKey(KeySpec{});
  ASSERT_TRUE(key.ok());
  auto csr = BuildCsr(key->get(), "", {"spiffe://example.org/ns/a/sa/b"});
  ASSERT_TRUE(csr.ok());
  auto refused = engine_->Sign("web", FlipCsrSignature(*csr), IssueRequest{});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "csr signature does not verify");

  auto ed = GenerateKey(KeySpec{KeyType::kEd25519, 0});
  ASSERT_TRUE(ed.ok());
  auto ed_csr = BuildCsr(ed->get(), "", {"spiffe://example.org/ns/a/sa/b"});
  ASSERT_TRUE(ed_csr.ok());
  EXPECT_EQ(engine_->Sign("web", *ed_csr, IssueRequest{}).status().message(),
            "role web requires key_type ec, csr has ed25519");
  json::object any = WebRole();
  any["key_type"] = "any";
  MustRole(any);
  EXPECT_TRUE(engine_->Sign("web", *ed_csr, IssueRequest{}).ok());
  EXPECT_EQ(engine_->Issue("web", Svid()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PkiEngineTest, IssueRecordsCertificatesUnlessNoStore) {
  MustRoot("r1");
  MustRole(WebRole());
  IssuedCertificate leaf = MustIssue(Svid());
  EXPECT_THAT(engine_->ListCertificates(), ElementsAre(leaf.serial_number));
  std::string dashed = leaf.serial_number;
  std::replace(dashed.begin(), dashed.end(), ':', '-');
  auto record = engine_->ReadCertificate(dashed);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->certificate, leaf.certificate);
  EXPECT_FALSE(record->revocation_time.has_value());

  json::object params = WebRole();
  params["no_store"] = true;
  MustRole(params, "ephemeral");
  IssuedCertificate unrecorded = MustIssue(Svid(), "ephemeral");
  EXPECT_EQ(engine_->ListCertificates().size(), 1u);
  EXPECT_EQ(engine_->ReadCertificate(unrecorded.serial_number).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->Revoke(unrecorded.serial_number).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PkiEngineTest, RevokedSerialAppearsInTheSignedCrl) {
  GeneratedIssuer root = MustRoot("r1");
  MustRole(WebRole());
  IssuedCertificate leaf = MustIssue(Svid());
  MustIssue(Svid());  // a second, unrevoked certificate
  auto crl_before = engine_->CrlDer();
  ASSERT_TRUE(crl_before.ok()) << crl_before.status();

  clock_.Advance(absl::Minutes(1));
  auto when = engine_->Revoke(leaf.serial_number);
  ASSERT_TRUE(when.ok()) << when.status();
  EXPECT_EQ(*when, clock_.Now());
  EXPECT_EQ(*engine_->Revoke(leaf.serial_number), *when);  // idempotent
  EXPECT_THAT(engine_->RevokedSerials(), ElementsAre(leaf.serial_number));
  EXPECT_EQ(engine_->ReadCertificate(leaf.serial_number)->revocation_time, *when);

  auto der = engine_->CrlDer();
  ASSERT_TRUE(der.ok());
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
  X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der->size())));
  ASSERT_NE(crl, nullptr);
  crypto::X509Ptr ca = Cert(root.issuer.certificate);
  EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())), 1);
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  ASSERT_EQ(sk_X509_REVOKED_num(revoked), 1);
  crypto::X509Ptr leaf_cert = Cert(leaf.certificate);
  EXPECT_EQ(ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, 0)),
                             X509_get0_serialNumber(leaf_cert.get())),
            0);
  ASN1_INTEGER* number =
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr));
  EXPECT_EQ(ASN1_INTEGER_get(number), 2);  // 1 was the empty CRL made with the issuer
  ASN1_INTEGER_free(number);
  struct tm next = {};
  ASSERT_EQ(ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(crl.get()), &next), 1);
  EXPECT_EQ(absl::FromUnixSeconds(timegm(&next)), clock_.Now() + absl::Hours(72));
  auto pem = engine_->CrlPem("r1");
  ASSERT_TRUE(pem.ok());
  EXPECT_THAT(*pem, HasSubstr("BEGIN X509 CRL"));

  // OpenSSL with CRL checking refuses the revoked leaf and accepts the other.
  crypto::X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  X509_STORE_add_crl(store.get(), crl.get());
  X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
  crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf_cert.get(), nullptr);
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(clock_.Now()));
  EXPECT_NE(X509_verify_cert(ctx.get()), 1);
  EXPECT_EQ(X509_STORE_CTX_get_error(ctx.get()), X509_V_ERR_CERT_REVOKED);

  // Survives a restart.
  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  EXPECT_THAT(engine_->RevokedSerials(), ElementsAre(leaf.serial_number));
  EXPECT_EQ(*engine_->CrlDer(), *der);
}

TEST_F(PkiEngineTest, StatsCountIssuedLeavesAndFirstRevocationsOnly) {
  MustRoot("r1");
  MustRole(WebRole());
  EXPECT_EQ(engine_->GetStats().certificates_issued, 0u);
  IssuedCertificate leaf = MustIssue(Svid());
  json::object params = WebRole();
  params["no_store"] = true;
  MustRole(params, "ephemeral");
  MustIssue(Svid(), "ephemeral");
  EXPECT_EQ(engine_->Issue("web", Svid("spiffe://other.org/x")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->GetStats().certificates_issued, 2u);

  ASSERT_TRUE(engine_->Revoke(leaf.serial_number).ok());
  ASSERT_TRUE(engine_->Revoke(leaf.serial_number).ok());  // a repeat revokes nothing new
  EXPECT_EQ(engine_->Revoke("0a:0b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->GetStats().certificates_revoked, 1u);
  EXPECT_EQ(engine_->GetStats().certificates_issued, 2u);
}

TEST_F(PkiEngineTest, RevokeUnknownOrMalformedSerial) {
  MustRoot("r1");
  EXPECT_EQ(engine_->Revoke("0a:0b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->Revoke("xyz").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PkiEngineTest, TidyRemovesExpiredRecordsAfterTheSafetyBuffer) {
  MustRoot("r1");
  MustRole(WebRole());
  IssueRequest short_lived = Svid();
  short_lived.ttl = absl::Minutes(10);
  IssuedCertificate a = MustIssue(short_lived);
  IssuedCertificate b = MustIssue(short_lived);
  IssuedCertificate c = MustIssue(Svid());  // 1h
  ASSERT_TRUE(engine_->Revoke(a.serial_number).ok());

  clock_.Advance(absl::Minutes(20));
  auto none = engine_->Tidy(absl::Minutes(30));  // expired 10m ago, buffer 30m: kept
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->certs_deleted, 0u);
  EXPECT_EQ(engine_->ListCertificates().size(), 3u);

  clock_.Advance(absl::Minutes(30));
  auto tidied = engine_->Tidy(absl::Minutes(30));
  ASSERT_TRUE(tidied.ok()) << tidied.status();
  EXPECT_EQ(tidied->certs_deleted, 2u);
  EXPECT_EQ(tidied->revoked_deleted, 1u);
  EXPECT_THAT(engine_->ListCertificates(), ElementsAre(c.serial_number));
  EXPECT_THAT(engine_->RevokedSerials(), IsEmpty());
  auto der = engine_->CrlDer();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
  X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der->size())));
  ASSERT_NE(crl, nullptr);
  EXPECT_EQ(X509_CRL_get_REVOKED(crl.get()), nullptr);  // no entries left
  ASN1_INTEGER* number =
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr));
  EXPECT_EQ(ASN1_INTEGER_get(number), 3);  // created, revoke, tidy
  ASN1_INTEGER_free(number);
  EXPECT_EQ(engine_->ReadCertificate(b.serial_number).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PkiEngineTest, IntermediateChainVerifiesToTheRoot) {
  GeneratedIssuer root = MustRoot("root");
  IntermediateRequest ireq;
  ireq.common_name = "Ward Intermediate";
  ireq.trust_domain = "example.org";
  ireq.issuer_name = "int";
  auto pending = engine_->GenerateIntermediate(ireq);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->issuer.state, IssuerState::kPending);
  EXPECT_THAT(pending->issuer.csr, HasSubstr("BEGIN CERTIFICATE REQUEST"));
  EXPECT_EQ(engine_->TrustBundlePem(), root.issuer.certificate);  // pending: not published

  SignIntermediateRequest sreq;
  sreq.issuer_ref = "root";
  sreq.csr = pending->issuer.csr;
  sreq.ttl = absl::Hours(24 * 7);
  auto signed_int = engine_->SignIntermediate(sreq);
  ASSERT_TRUE(signed_int.ok()) << signed_int.status();
  crypto::X509Ptr int_cert = Cert(signed_int->certificate);
  EXPECT_EQ(X509_check_ca(int_cert.get()), 1);
  EXPECT_THAT(NamesOf(int_cert.get()).uri_sans, ElementsAre("spiffe://example.org"));

  auto installed = engine_->SetSignedIntermediate(signed_int->certificate);
  ASSERT_TRUE(installed.ok()) << installed.status();
  EXPECT_EQ(installed->state, IssuerState::kActive);
  EXPECT_THAT(installed->ca_chain, ElementsAre(signed_int->certificate, root.issuer.certificate));
  ASSERT_TRUE(engine_->SetDefaultIssuer("int").ok());

  MustRole(WebRole());
  IssuedCertificate leaf = MustIssue(Svid());
  EXPECT_EQ(leaf.issuer_id, installed->issuer_id);
  EXPECT_THAT(leaf.ca_chain, ElementsAre(signed_int->certificate, root.issuer.certificate));
  // Root alone as anchor, intermediate as untrusted chain.
  EXPECT_EQ(
      Verify(root.issuer.certificate, leaf.certificate, clock_.Now(), {signed_int->certificate}),
      X509_V_OK);
  EXPECT_NE(Verify(root.issuer.certificate, leaf.certificate, clock_.Now()), X509_V_OK);

  EXPECT_EQ(engine_->SetSignedIntermediate(root.issuer.certificate).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PkiEngineTest, ImportedBundleBecomesAnIssuer) {
  RootRequest req;
  req.common_name = "External";
  req.exported = true;
  req.trust_domain = "example.org";
  // Generate in a second mount, import here.
  auto other = PkiEngine::Create(*barrier_, clock_, "logical/other/");
  ASSERT_TRUE(other.ok());
  auto root = (*other)->GenerateRoot(req);
  ASSERT_TRUE(root.ok());
  std::string bundle = std::string(root->private_key->view()) + root->issuer.certificate;
  auto imported = engine_->ImportIssuer(bundle, "ext");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_TRUE(imported->is_default);
  EXPECT_EQ(imported->certificate, root->issuer.certificate);
  EXPECT_EQ(engine_->ImportIssuer(bundle, "").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(engine_->ImportIssuer(root->issuer.certificate, "x").status().code(),
            absl::StatusCode::kInvalidArgument);  // no key
  MustRole(WebRole());
  IssuedCertificate leaf = MustIssue(Svid());
  EXPECT_EQ(Verify(root->issuer.certificate, leaf.certificate, clock_.Now()), X509_V_OK);
}

TEST_F(PkiEngineTest, RotationWithOverlappingTrust) {
  GeneratedIssuer old_root = MustRoot("old");
  MustRole(WebRole());
  IssuedCertificate old_leaf = MustIssue(Svid());
  const uint64_t v1 = engine_->BundleVersion();

  RootRequest next_req;
  next_req.common_name = "Ward Root next";
  next_req.trust_domain = "example.org";
  next_req.issuer_name = "next";
  auto next = engine_->PrepareNext(next_req);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->issuer.state, IssuerState::kPublished);
  EXPECT_GT(engine_->BundleVersion(), v1);
  // Published: in the bundle, but not issuing; the old root still issues.
  std::string bundle = engine_->TrustBundlePem();
  EXPECT_THAT(bundle, HasSubstr(old_root.issuer.certificate));
  EXPECT_THAT(bundle, HasSubstr(next->issuer.certificate));
  IssueRequest via_next = Svid();
  via_next.issuer_ref = "next";
  EXPECT_EQ(engine_->Issue("web", via_next).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MustIssue(Svid()).issuer_id, old_root.issuer.issuer_id);

  const uint64_t v2 = engine_->BundleVersion();
  ASSERT_TRUE(engine_->Activate("next").ok());
  EXPECT_EQ(engine_->BundleVersion(), v2);  // membership unchanged
  IssuedCertificate new_leaf = MustIssue(Svid());
  EXPECT_EQ(new_leaf.issuer_id, next->issuer.issuer_id);
  EXPECT_EQ(engine_->ReadIssuer("old")->state, IssuerState::kPublished);
  // During the overlap both generations verify against the bundle.
  EXPECT_EQ(Verify(engine_->TrustBundlePem(), old_leaf.certificate, clock_.Now()), X509_V_OK);
  EXPECT_EQ(Verify(engine_->TrustBundlePem(), new_leaf.certificate, clock_.Now()), X509_V_OK);

  // Old leaves live for an hour: retiring is refused, then allowed once they expired.
  auto refused = engine_->Retire("old", false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("signed certificates valid until"));
  EXPECT_EQ(engine_->Retire("next", false).code(), absl::StatusCode::kFailedPrecondition);
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  ASSERT_TRUE(engine_->Retire("old", false).ok());
  EXPECT_EQ(engine_->ReadIssuer("old")->state, IssuerState::kRetired);
  EXPECT_EQ(engine_->TrustBundlePem(), next->issuer.certificate);
  EXPECT_GT(engine_->BundleVersion(), v2);
  EXPECT_EQ(engine_->Activate("old").code(), absl::StatusCode::kFailedPrecondition);

  // State survives a restart.
  const uint64_t v3 = engine_->BundleVersion();
  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  EXPECT_EQ(engine_->BundleVersion(), v3);
  EXPECT_EQ(engine_->ReadIssuer("default")->issuer_id, next->issuer.issuer_id);
  EXPECT_EQ(engine_->ReadIssuer("old")->state, IssuerState::kRetired);
}

TEST_F(PkiEngineTest, ForcedRetireIgnoresLiveLeaves) {
  MustRoot("old");
  MustRole(WebRole());
  MustIssue(Svid());
  RootRequest next_req;
  next_req.common_name = "next";
  next_req.issuer_name = "next";
  ASSERT_TRUE(engine_->PrepareNext(next_req).ok());
  ASSERT_TRUE(engine_->Activate("next").ok());
  EXPECT_EQ(engine_->Retire("old", false).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(engine_->Retire("old", true).ok());
}

TEST_F(PkiEngineTest, JwksHasTheSpiffeShape) {
  MustRoot("r1");
  RootRequest next_req;
  next_req.common_name = "next";
  next_req.issuer_name = "next";
  ASSERT_TRUE(engine_->PrepareNext(next_req).ok());
  json::object set = json::parse(engine_->TrustBundleJwks()).as_object();
  EXPECT_EQ(set.at("spiffe_sequence").as_int64(), static_cast<int64_t>(engine_->BundleVersion()));
  EXPECT_EQ(set.at("spiffe_refresh_hint").as_int64(), 300);
  const json::array& keys = set.at("keys").as_array();
  ASSERT_EQ(keys.size(), 2u);
  for (const json::value& k : keys) {
    const json::object& jwk = k.as_object();
    EXPECT_EQ(jwk.at("use").as_string(), "x509-svid");
    EXPECT_EQ(jwk.at("kty").as_string(), "EC");
    EXPECT_EQ(jwk.at("crv").as_string(), "P-256");
    EXPECT_TRUE(jwk.contains("x"));
    EXPECT_TRUE(jwk.contains("y"));
    EXPECT_FALSE(jwk.contains("kid"));
    EXPECT_EQ(jwk.at("x5c").as_array().size(), 1u);
  }
}

TEST_F(PkiEngineTest, RolesPersistAndList) {
  MustRole(WebRole(), "web");
  MustRole(WebRole(), "api");
  EXPECT_THAT(engine_->ListRoles(), ElementsAre("api", "web"));
  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  auto role = engine_->ReadRole("web");
  ASSERT_TRUE(role.ok());
  EXPECT_THAT(role->allowed_uri_sans, ElementsAre("spiffe://example.org/ns/*/sa/*"));
  ASSERT_TRUE(engine_->DeleteRole("web").ok());
  EXPECT_EQ(engine_->ReadRole("web").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PkiEngineTest, SealedBarrierIsUnavailable) {
  MustRoot("r1");
  MustRole(WebRole());
  barrier_->Seal();
  EXPECT_EQ(engine_->Issue("web", Svid()).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(PkiEngineTest, ConcurrentIssuanceAndRotation) {
  MustRoot("old");
  MustRole(WebRole());
  RootRequest next_req;
  next_req.common_name = "next";
  next_req.issuer_name = "next";
  ASSERT_TRUE(engine_->PrepareNext(next_req).ok());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (engine_->Issue("web", Svid()).ok()) ++ok;
        (void)engine_->TrustBundlePem();
      }
    });
  }
  ASSERT_TRUE(engine_->Activate("next").ok());
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(engine_->ListCertificates().size(), 20u);
}

TEST_F(PkiEngineTest, OpensslCliVerifiesAnIssuedSvid) {
  // scripts/install-deps.sh installs the openssl CLI; its absence is a broken setup.
  ASSERT_EQ(std::system("openssl version > /dev/null 2>&1"), 0) << "the openssl CLI is missing";
  GeneratedIssuer root = MustRoot("r1", absl::Hours(24 * 30));
  MustRole(WebRole());
  // The CLI verifies at the real time: issue against a clock at now.
  clock_.Set(absl::Now());
  RootRequest req;
  req.common_name = "Now Root";
  req.issuer_name = "now";
  ASSERT_TRUE(engine_->GenerateRoot(req).ok());
  IssueRequest svid = Svid();
  svid.issuer_ref = "now";
  IssuedCertificate leaf = MustIssue(svid);
  core::TempDir dir;
  std::ofstream(dir.Join("ca.pem")) << leaf.issuing_ca;
  std::ofstream(dir.Join("leaf.pem")) << leaf.certificate;
  std::string cmd =
      "openssl verify -CAfile " + dir.Join("ca.pem") + " " + dir.Join("leaf.pem") + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[512];
  std::string output;
  while (fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_THAT(output, HasSubstr(": OK"));
  cmd = "openssl x509 -noout -ext subjectAltName,basicConstraints,keyUsage -in " +
        dir.Join("leaf.pem") + " 2>&1";
  pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  output.clear();
  while (fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  pclose(pipe);
  EXPECT_THAT(output, HasSubstr("URI:spiffe://example.org/ns/prod/sa/web"));
  EXPECT_THAT(output, HasSubstr("CA:FALSE"));
  EXPECT_THAT(output, HasSubstr("Digital Signature"));
}

// ---- pki/config/crl and the scheduled rebuild ---------------------------------------------

size_t CrlEntries(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  EXPECT_NE(crl, nullptr);
  if (crl == nullptr) return 0;
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  return revoked == nullptr ? 0 : static_cast<size_t>(sk_X509_REVOKED_num(revoked));
}

CrlConfig MustParseCrlConfig(const json::object& params, const CrlConfig& base = {}) {
  auto c = ParseCrlConfig(params, base);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : CrlConfig{};
}

TEST_F(PkiEngineTest, CrlConfigDefaultsPersistAndSetTheCrlLifetime) {
  MustRoot("r1");
  CrlConfig initial = engine_->GetCrlConfig();
  EXPECT_EQ(initial.expiry, "72h");
  EXPECT_FALSE(initial.auto_rebuild);
  EXPECT_EQ(initial.auto_rebuild_grace_period, "12h");

  auto stored = engine_->SetCrlConfig(MustParseCrlConfig(
      {{"expiry", "48h"}, {"auto_rebuild", true}, {"auto_rebuild_grace_period", "6h"}}));
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->expiry, "48h");
  ASSERT_TRUE(engine_->RebuildCrls().ok());
  auto times = engine_->CrlTimes();
  ASSERT_TRUE(times.ok()) << times.status();
  EXPECT_EQ(times->first, clock_.Now());
  EXPECT_EQ(times->second, clock_.Now() + absl::Hours(48));

  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  CrlConfig reopened = engine_->GetCrlConfig();
  EXPECT_EQ(reopened.expiry, "48h");
  EXPECT_TRUE(reopened.auto_rebuild);
  EXPECT_EQ(reopened.auto_rebuild_grace_period_duration, absl::Hours(6));
  EXPECT_EQ(engine_->CrlTimes()->second, times->second);  // loaded from the stored CRL
}

TEST_F(PkiEngineTest, RebuildDueCrlsDoesNothingWithoutAutoRebuild) {
  MustRoot("r1");
  clock_.Advance(absl::Hours(100));  // the CRL has expired
  auto rebuilt = engine_->RebuildDueCrls();
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_EQ(*rebuilt, 0u);
  EXPECT_LT(engine_->CrlTimes()->second, clock_.Now());
}

TEST_F(PkiEngineTest, AutoRebuildReSignsOnlyCrlsWithinTheGracePeriod) {
  MustRoot("r1");
  clock_.Advance(absl::Hours(1));
  RootRequest next;
  next.common_name = "Next";
  next.issuer_name = "r2";
  ASSERT_TRUE(engine_->PrepareNext(next).ok());
  IntermediateRequest pending;
  pending.common_name = "Pending";
  ASSERT_TRUE(engine_->GenerateIntermediate(pending).ok());  // no certificate: never a CRL
  ASSERT_TRUE(engine_->SetCrlConfig(MustParseCrlConfig({{"auto_rebuild", true}})).ok());
  const auto r1_before = *engine_->CrlTimes("r1");
  const auto r2_before = *engine_->CrlTimes("r2");

  clock_.Advance(absl::Hours(59));  // r1: 12h before nextUpdate; r2: 13h before
  EXPECT_EQ(*engine_->RebuildDueCrls(), 1u);
  EXPECT_EQ(engine_->CrlTimes("r1")->second, clock_.Now() + absl::Hours(72));
  EXPECT_EQ(*engine_->CrlTimes("r2"), r2_before);
  EXPECT_NE(*engine_->CrlTimes("r1"), r1_before);
  EXPECT_EQ(*engine_->RebuildDueCrls(), 0u);  // nothing due any more
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(*engine_->RebuildDueCrls(), 1u);  // now r2
  EXPECT_EQ(engine_->CrlTimes("r2")->second, clock_.Now() + absl::Hours(72));
}

TEST_F(PkiEngineTest, AutoRebuildKeepsTheCrlValidForAMonthAndKeepsRevocations) {
  MustRoot("r1");
  MustRole(WebRole());
  IssuedCertificate leaf = MustIssue(Svid());
  ASSERT_TRUE(engine_->Revoke(leaf.serial_number).ok());
  ASSERT_TRUE(
      engine_
          ->SetCrlConfig(MustParseCrlConfig(
              {{"expiry", "24h"}, {"auto_rebuild", true}, {"auto_rebuild_grace_period", "2h"}}))
          .ok());
  size_t rebuilds = 0;
  for (int minute = 0; minute < 30 * 24 * 60; minute += 10) {  // the server polls every minute
    clock_.Advance(absl::Minutes(10));
    auto rebuilt = engine_->RebuildDueCrls();
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
    rebuilds += *rebuilt;
    ASSERT_GT(engine_->CrlTimes()->second, clock_.Now() + absl::Hours(1)) << minute;
  }
  EXPECT_GE(rebuilds, 30u);
  EXPECT_LE(rebuilds, 35u);  // once per (expiry - grace), not on every poll
  EXPECT_EQ(CrlEntries(*engine_->CrlDer()), 1u);
}

TEST_F(PkiEngineTest, DisabledCrlIsEmptyAndTogglingRebuilds) {
  MustRoot("r1");
  MustRole(WebRole());
  IssuedCertificate leaf = MustIssue(Svid());
  ASSERT_TRUE(engine_->Revoke(leaf.serial_number).ok());
  ASSERT_EQ(CrlEntries(*engine_->CrlDer()), 1u);

  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(engine_->SetCrlConfig(MustParseCrlConfig({{"disable", true}})).ok());
  EXPECT_EQ(CrlEntries(*engine_->CrlDer()), 0u);  // rebuilt at once, empty
  EXPECT_EQ(engine_->CrlTimes()->first, clock_.Now());
  IssuedCertificate other = MustIssue(Svid());
  ASSERT_TRUE(engine_->Revoke(other.serial_number).ok());
  EXPECT_EQ(CrlEntries(*engine_->CrlDer()), 0u);
  EXPECT_THAT(engine_->RevokedSerials(), Contains(other.serial_number));  // still recorded

  ASSERT_TRUE(engine_->SetCrlConfig(MustParseCrlConfig({{"disable", false}})).ok());
  EXPECT_EQ(CrlEntries(*engine_->CrlDer()), 2u);
}

TEST_F(PkiEngineTest, FailedCrlConfigWriteChangesNothing) {
  MustRoot("r1");
  const std::string crl = *engine_->CrlDer();
  barrier_->Seal();
  auto stored = engine_->SetCrlConfig(MustParseCrlConfig({{"disable", true}, {"expiry", "1h"}}));
  EXPECT_EQ(stored.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(engine_->GetCrlConfig().disable);
  EXPECT_EQ(engine_->GetCrlConfig().expiry, "72h");
  EXPECT_EQ(*engine_->CrlDer(), crl);
  EXPECT_EQ(engine_->DeleteIssuer("r1").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(engine_->ListIssuers().size(), 1u);
  EXPECT_EQ(engine_->SetCrlConfig(MustParseCrlConfig({{"auto_rebuild", true}})).status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(barrier_->Unseal(UnsealKey()).ok());
  clock_.Advance(absl::Hours(71));
  EXPECT_EQ(*engine_->RebuildDueCrls(), 0u);  // auto_rebuild was never stored
}

TEST_F(PkiEngineTest, SetCrlConfigRefusesDeltaAndChangesNothing) {
  MustRoot("r1");
  CrlConfig c;
  c.auto_rebuild = true;
  c.enable_delta = true;
  auto stored = engine_->SetCrlConfig(c);
  EXPECT_EQ(stored.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(engine_->GetCrlConfig().auto_rebuild);
}

// ---- not_after --------------------------------------------------------------------------------

TEST_F(PkiEngineTest, NotAfterIsExactAndBoundedByMaxTtlAndTheIssuer) {
  MustRoot("r1", absl::Hours(24 * 30));
  json::object params = WebRole();
  params["max_ttl"] = "72h";
  MustRole(params);
  IssueRequest req = Svid();
  req.not_after = clock_.Now() + absl::Hours(50);
  IssuedCertificate leaf = MustIssue(req);
  EXPECT_EQ(leaf.expiration, absl::ToUnixSeconds(clock_.Now() + absl::Hours(50)));
  EXPECT_THAT(leaf.warnings, IsEmpty());
  const size_t stored = engine_->ListCertificates().size();

  req.not_after = clock_.Now() + absl::Hours(73);
  auto too_long = engine_->Issue("web", req);
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_long.status().message(), HasSubstr("max_ttl of role web"));

  req.not_after = clock_.Now() - absl::Seconds(1);
  EXPECT_EQ(engine_->Issue("web", req).status().code(), absl::StatusCode::kInvalidArgument);

  // Past the issuer's notAfter: refused even though the role truncates ttl-based lifetimes.
  params["max_ttl"] = "2000h";
  MustRole(params);
  req.not_after = clock_.Now() + absl::Hours(24 * 31);
  auto past_ca = engine_->Issue("web", req);
  EXPECT_EQ(past_ca.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(past_ca.status().message(), HasSubstr("beyond the expiration of the CA"));
  EXPECT_EQ(engine_->ListCertificates().size(), stored);  // nothing issued by a refusal
}

TEST_F(PkiEngineTest, RootNotAfterIsExact) {
  RootRequest req;
  req.common_name = "Root";
  req.not_after = absl::FromUnixSeconds(253402300799);  // 9999-12-31T23:59:59Z (Vault's Y10K)
  auto root = engine_->GenerateRoot(req);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->issuer.not_after, *req.not_after);
  req.not_after = clock_.Now();
  EXPECT_EQ(engine_->GenerateRoot(req).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- DeleteIssuer -------------------------------------------------------------------------

TEST_F(PkiEngineTest, DeletingTheDefaultIssuerClearsTheDefaultAndTheBundle) {
  GeneratedIssuer root = MustRoot("r1");
  MustRole(WebRole());
  json::object pinned = WebRole();
  pinned["issuer_ref"] = "r1";
  MustRole(pinned, "pinned");
  IssuedCertificate leaf = MustIssue(Svid());
  IssuedCertificate other = MustIssue(Svid());
  ASSERT_TRUE(engine_->Revoke(leaf.serial_number).ok());
  const uint64_t sequence = engine_->BundleVersion();

  auto deleted = engine_->DeleteIssuer("r1");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->found);
  EXPECT_EQ(deleted->issuer_id, root.issuer.issuer_id);
  EXPECT_TRUE(deleted->was_default);
  EXPECT_THAT(deleted->roles, ElementsAre("pinned", "web"));
  EXPECT_THAT(engine_->ListIssuers(), IsEmpty());
  EXPECT_EQ(engine_->TrustBundlePem(), "");
  EXPECT_GT(engine_->BundleVersion(), sequence);
  EXPECT_EQ(engine_->CaPem().status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->CrlDer().status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->CrlDer(root.issuer.issuer_id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->Issue("web", Svid()).status().code(), absl::StatusCode::kNotFound);
  // Its records stay; revoking and tidying them touch no CRL and do not fail.
  EXPECT_TRUE(engine_->Revoke(other.serial_number).ok());
  EXPECT_TRUE(engine_->RebuildCrls().ok());
  clock_.Advance(absl::Hours(24 * 10));
  EXPECT_TRUE(engine_->Tidy(absl::ZeroDuration()).ok());
  EXPECT_TRUE(engine_->SetCrlConfig(MustParseCrlConfig({{"disable", true}})).ok());
  const uint64_t sequence_after = engine_->BundleVersion();

  // Durable, and the next root becomes the default.
  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  EXPECT_THAT(engine_->ListIssuers(), IsEmpty());
  EXPECT_EQ(engine_->BundleVersion(), sequence_after);
  GeneratedIssuer next = MustRoot("r2");
  EXPECT_TRUE(next.issuer.is_default);
  EXPECT_TRUE(engine_->Issue("web", Svid()).ok());
}

TEST_F(PkiEngineTest, DeletingAnotherIssuerKeepsTheDefault) {
  GeneratedIssuer root = MustRoot("r1");
  RootRequest next;
  next.common_name = "Next";
  next.issuer_name = "r2";
  ASSERT_TRUE(engine_->PrepareNext(next).ok());
  ASSERT_THAT(engine_->TrustBundlePem(), HasSubstr("CERTIFICATE"));
  const std::string bundle_with_both = engine_->TrustBundlePem();

  auto deleted = engine_->DeleteIssuer("r2");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_FALSE(deleted->was_default);
  EXPECT_THAT(deleted->roles, IsEmpty());
  EXPECT_EQ(engine_->TrustBundlePem(), root.issuer.certificate);
  EXPECT_NE(engine_->TrustBundlePem(), bundle_with_both);
  EXPECT_EQ(*engine_->CaPem(), root.issuer.certificate);

  auto unknown = engine_->DeleteIssuer("r2");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->found);
}

TEST_F(PkiEngineTest, IssuersModifiedMovesOnIssuerChangesOnly) {
  const absl::Time created = engine_->IssuersModified();
  EXPECT_EQ(created, clock_.Now());
  clock_.Advance(absl::Seconds(10));
  MustRoot("r1");
  const absl::Time after_root = engine_->IssuersModified();
  EXPECT_EQ(after_root, clock_.Now());
  clock_.Advance(absl::Seconds(10));
  MustRole(WebRole());
  MustIssue(Svid());
  ASSERT_TRUE(engine_->RebuildCrls().ok());
  EXPECT_EQ(engine_->IssuersModified(), after_root);
  ASSERT_TRUE(engine_->DeleteIssuer("r1").ok());
  EXPECT_EQ(engine_->IssuersModified(), clock_.Now());
}

}  // namespace
}  // namespace ward::pki
