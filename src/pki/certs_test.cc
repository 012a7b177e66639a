#include "pki/certs.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ward::pki {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

crypto::X509Ptr SelfSignedCa(EVP_PKEY* key, std::vector<std::string> uris = {}) {
  CertificateTemplate t;
  t.common_name = "Test CA";
  t.uri_sans = std::move(uris);
  t.not_before = kNow - kBackdate;
  t.not_after = kNow + absl::Hours(24);
  t.is_ca = true;
  auto cert = BuildCertificate(t, key, nullptr, key);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return cert.ok() ? *std::move(cert) : nullptr;
}

TEST(KeySpecTest, ParsesVaultNamesAndDefaults) {
  auto ec = ParseKeySpec("ec", 0);
  ASSERT_TRUE(ec.ok());
  EXPECT_EQ(ec->type, KeyType::kEc);
  EXPECT_EQ(ec->bits, 256);
  auto rsa = ParseKeySpec("rsa", 0);
  ASSERT_TRUE(rsa.ok());
  EXPECT_EQ(rsa->bits, 2048);
  EXPECT_TRUE(ParseKeySpec("rsa", 3072).ok());
  EXPECT_TRUE(ParseKeySpec("ed25519", 0).ok());
  EXPECT_EQ(ParseKeySpec("ec", 384).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKeySpec("rsa", 1024).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKeySpec("dsa", 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KeySpecTest, GeneratedKeysReportTheirSpec) {
  for (const KeySpec& spec :
       {KeySpec{KeyType::kEc, 256}, KeySpec{KeyType::kEd25519, 0}, KeySpec{KeyType::kRsa, 2048}}) {
    auto key = GenerateKey(spec);
    ASSERT_TRUE(key.ok()) << key.status();
    auto back = KeySpecOf(key->get());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->type, spec.type);
    EXPECT_EQ(back->bits, spec.bits);
    auto pem = PrivateKeyToPem(key->get());
    ASSERT_TRUE(pem.ok());
    EXPECT_THAT(std::string(pem->view()), HasSubstr("BEGIN PRIVATE KEY"));
    auto parsed = ParsePrivateKeyPem(pem->view());
    ASSERT_TRUE(parsed.ok());
    EXPECT_TRUE(SamePublicKey(parsed->get(), key->get()));
  }
}

TEST(SpiffeIdTest, AcceptsValidAndRejectsInvalidIds) {
  EXPECT_TRUE(ValidateSpiffeId("spiffe://example.org/ns/a/sa/b", true).ok());
  EXPECT_TRUE(ValidateSpiffeId("spiffe://example.org", false).ok());
  for (const char* bad :
       {"https://example.org/a", "spiffe://Example.org/a", "spiffe:///a", "spiffe://example.org/a/",
        "spiffe://example.org//a", "spiffe://example.org/a/../b", "spiffe://example.org/a?b",
        "spiffe://example.org/a%20b", "spiffe://example.org"}) {
    absl::Status s = ValidateSpiffeId(bad, true);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ValidateSpiffeId("spiffe://example.org/a", false).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TrustDomainOf("spiffe://example.org/ns/a"), "example.org");
}

TEST(SerialTest, NormalizesSeparatorsAndCase) {
  auto s = NormalizeSerial("0A-FF-01");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "0a:ff:01");
  EXPECT_EQ(*NormalizeSerial("00:0a:ff"), "0a:ff");
  EXPECT_EQ(NormalizeSerial("zz").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NormalizeSerial("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BuildCertificateTest, CaHasSpiffeSigningProfile) {
  auto key = GenerateKey(KeySpec{});
  ASSERT_TRUE(key.ok());
  crypto::X509Ptr ca = SelfSignedCa(key->get(), {"spiffe://example.org"});
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  int crit = -1;
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(ca.get(), NID_basic_constraints, &crit, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ(crit, 1);
  EXPECT_TRUE(bc->ca);
  BASIC_CONSTRAINTS_free(bc);
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(ca.get()), nullptr);
  EXPECT_THAT(NamesOf(ca.get()).uri_sans, ElementsAre("spiffe://example.org"));
  EXPECT_EQ(NotAfter(ca.get()), kNow + absl::Hours(24));
}

TEST(BuildCertificateTest, Ed25519AndRsaIssuersSign) {
  for (const KeySpec& spec : {KeySpec{KeyType::kEd25519, 0}, KeySpec{KeyType::kRsa, 2048}}) {
    auto key = GenerateKey(spec);
    ASSERT_TRUE(key.ok());
    crypto::X509Ptr ca = SelfSignedCa(key->get());
    ASSERT_NE(ca, nullptr);
    EXPECT_EQ(X509_verify(ca.get(), key->get()), 1);
  }
}

TEST(CsrTest, RoundTripsNamesAndVerifiesSignature) {
  auto key = GenerateKey(KeySpec{});
  ASSERT_TRUE(key.ok());
  auto pem = BuildCsr(key->get(), "web", {"spiffe://example.org/web"});
  ASSERT_TRUE(pem.ok()) << pem.status();
  auto csr = ParseCsr(*pem);
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->names.common_name, "web");
  EXPECT_THAT(csr->names.uri_sans, ElementsAre("spiffe://example.org/web"));
  EXPECT_TRUE(SamePublicKey(csr->public_key.get(), key->get()));
}

TEST(CsrTest, GarbageIsRefused) {
  auto csr =
      ParseCsr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
  EXPECT_EQ(csr.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(csr.status().message(), "csr is not a valid PEM certificate request");
}

TEST(CrlTest, BuildsSignedCrlWithEntriesAndNumber) {
  auto key = GenerateKey(KeySpec{});
  ASSERT_TRUE(key.ok());
  crypto::X509Ptr ca = SelfSignedCa(key->get());
  auto crl = BuildCrl(ca.get(), key->get(), {{"0a:0b", kNow}}, kNow, kNow + absl::Hours(72), 7);
  ASSERT_TRUE(crl.ok()) << crl.status();
  auto der = CrlToDer(crl->get());
  ASSERT_TRUE(der.ok());
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
  X509CrlPtr back(d2i_X509_CRL(nullptr, &p, static_cast<long>(der->size())));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(X509_CRL_verify(back.get(), key->get()), 1);
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(back.get());
  ASSERT_EQ(sk_X509_REVOKED_num(revoked), 1);
  const ASN1_INTEGER* serial = X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, 0));
  EXPECT_EQ(ASN1_INTEGER_get(serial), 0x0a0b);
  ASN1_INTEGER* number = static_cast<ASN1_INTEGER*>(
      X509_CRL_get_ext_d2i(back.get(), NID_crl_number, nullptr, nullptr));
  ASSERT_NE(number, nullptr);
  EXPECT_EQ(ASN1_INTEGER_get(number), 7);
  ASN1_INTEGER_free(number);
}

TEST(JwkTest, EcCaRendersSpiffeJwk) {
  auto key = GenerateKey(KeySpec{});
  ASSERT_TRUE(key.ok());
  crypto::X509Ptr ca = SelfSignedCa(key->get());
  auto jwk = SpiffeJwk(ca.get());
  ASSERT_TRUE(jwk.ok()) << jwk.status();
  boost::json::object o = boost::json::parse(*jwk).as_object();
  EXPECT_EQ(o.at("use").as_string(), "x509-svid");
  EXPECT_EQ(o.at("kty").as_string(), "EC");
  EXPECT_EQ(o.at("crv").as_string(), "P-256");
  EXPECT_EQ(o.at("x").as_string().size(), 43u);  // 32 bytes, base64url unpadded
  EXPECT_EQ(o.at("y").as_string().size(), 43u);
  EXPECT_FALSE(o.contains("kid"));
  ASSERT_EQ(o.at("x5c").as_array().size(), 1u);
}

TEST(PemBlockToDerTest, DecodesAnyBlockType) {
  auto key = GenerateKey(KeySpec{});
  ASSERT_TRUE(key.ok());
  auto key_pem = PrivateKeyToPem(key->get());
  ASSERT_TRUE(key_pem.ok());
  auto der = PemBlockToDer(key_pem->view());
  ASSERT_TRUE(der.ok()) << der.status();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der->view().data());
  crypto::EvpPkeyPtr parsed(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der->size())));
  ASSERT_NE(parsed, nullptr);
  EXPECT_TRUE(SamePublicKey(parsed.get(), key->get()));

  auto csr = BuildCsr(key->get(), "x", {});
  ASSERT_TRUE(csr.ok());
  auto csr_der = PemBlockToDer(*csr);
  ASSERT_TRUE(csr_der.ok());
  p = reinterpret_cast<const unsigned char*>(csr_der->view().data());
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr_der->size())));
  EXPECT_NE(req, nullptr);

  EXPECT_EQ(PemBlockToDer("not pem").status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- identity-perf: the encoder-free paths (SetLeafPublicKey, WriteP256Pkcs8Pem) ----

std::string PublicKeyDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len > 0 ? len : 0));
  OPENSSL_free(der);
  return out;
}

TEST(PrivateKeyPemTest, P256PemIsOpenSslsPkcs8ByteForByte) {
  for (int i = 0; i < 8; ++i) {  // scalars with leading zero bytes are padded, not shortened
    auto key = GenerateKey(KeySpec{KeyType::kEc, 256});
    ASSERT_TRUE(key.ok());
    auto ours = PrivateKeyToPem(key->get());
    ASSERT_TRUE(ours.ok()) << ours.status();
    crypto::BioPtr bio(BIO_new(BIO_s_mem()));
    ASSERT_EQ(
        PEM_write_bio_PrivateKey(bio.get(), key->get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
    char* data = nullptr;
    long size = BIO_get_mem_data(bio.get(), &data);
    EXPECT_EQ(std::string(ours->view()), std::string(data, static_cast<size_t>(size)));
  }
}

TEST(KeySpecTest, EveryGeneratedEcKeyIsNew) {
  auto a = GenerateKey(KeySpec{KeyType::kEc, 256});
  auto b = GenerateKey(KeySpec{KeyType::kEc, 256});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(SamePublicKey(a->get(), b->get()));
}

TEST(BuildCertificateTest, LeafCarriesTheSubjectKeyExactlyAsOpenSslEncodesIt) {
  auto ca_key = GenerateKey(KeySpec{});
  ASSERT_TRUE(ca_key.ok());
  crypto::X509Ptr ca = SelfSignedCa(ca_key->get());
  ASSERT_NE(ca, nullptr);
  for (const KeySpec& spec :
       {KeySpec{KeyType::kEc, 256}, KeySpec{KeyType::kEd25519, 0}, KeySpec{KeyType::kRsa, 2048}}) {
    auto key = GenerateKey(spec);
    ASSERT_TRUE(key.ok());
    CertificateTemplate t;
    t.uri_sans = {"spiffe://example.org/ns/a/sa/b"};
    t.not_before = kNow - kBackdate;
    t.not_after = kNow + absl::Hours(1);
    t.client_auth = true;
    auto leaf = BuildCertificate(t, key->get(), ca.get(), ca_key->get());
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    auto pem = CertificateToPem(leaf->get());
    ASSERT_TRUE(pem.ok());
    auto parsed = ParseCertificatePem(*pem);
    ASSERT_TRUE(parsed.ok());
    EVP_PKEY* carried = X509_get0_pubkey(parsed->get());
    ASSERT_NE(carried, nullptr);
    EXPECT_TRUE(SamePublicKey(carried, key->get()));
    EXPECT_EQ(PublicKeyDer(carried), PublicKeyDer(key->get()));
    EXPECT_EQ(X509_verify(parsed->get(), ca_key->get()), 1);
    // The subject key identifier is the SHA-1 of the key's bit string (RFC 5280 4.2.1.2 (1)).
    const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(parsed->get());
    ASSERT_NE(skid, nullptr);
    const unsigned char* bits = nullptr;
    int bits_len = 0;
    ASSERT_EQ(X509_PUBKEY_get0_param(nullptr, &bits, &bits_len, nullptr,
                                     X509_get_X509_PUBKEY(parsed->get())),
              1);
    unsigned char sha1[20];
    unsigned int sha1_len = 0;
    ASSERT_EQ(EVP_Digest(bits, static_cast<size_t>(bits_len), sha1, &sha1_len, EVP_sha1(), nullptr),
              1);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(skid)),
                          static_cast<size_t>(ASN1_STRING_length(skid))),
              std::string(reinterpret_cast<const char*>(sha1), sha1_len));
  }
}

}  // namespace
}  // namespace ward::pki
