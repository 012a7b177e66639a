#include "crypto/testing/test_pki.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "core/testing/temp_dir.h"
#include "crypto/openssl_handles.h"
#include "gtest/gtest.h"

namespace ward::crypto::testing {
namespace {

using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<&X509_CRL_free>>;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

X509CrlPtr ParseCrl(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509CrlPtr(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
}

TEST(TestPkiTest, LocalhostTlsFilesHoldAServerCertificateSignedByTheCa) {
  core::TempDir dir;
  absl::StatusOr<LocalhostTls> tls = WriteLocalhostTls(dir.path(), absl::Now());
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(ReadAll(dir.Join("server-ca.pem")), tls->ca.cert_pem);
  EXPECT_EQ(ReadAll(dir.Join("server.pem")), tls->server.cert_pem);
  EXPECT_EQ(ReadAll(dir.Join("server.key")), std::string(tls->server.key_pem.view()));

  absl::StatusOr<X509Ptr> ca = ParseCertificate(tls->ca.cert_pem);
  absl::StatusOr<X509Ptr> server = ParseCertificate(tls->server.cert_pem);
  ASSERT_TRUE(ca.ok() && server.ok());
  EXPECT_EQ(X509_check_issued(ca->get(), server->get()), X509_V_OK);
  EXPECT_EQ(X509_check_host(server->get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(server->get(), "127.0.0.1", 0), 1);
}

TEST(TestPkiTest, ClientCertificateIsWrittenUnderItsName) {
  core::TempDir dir;
  const absl::Time now = absl::Now();
  absl::StatusOr<PemKeyPair> ca = WriteCa(dir.path(), "client-ca", now, absl::Hours(2));
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(ReadAll(dir.Join("client-ca.pem")), ca->cert_pem);
  absl::StatusOr<PemKeyPair> alice =
      WriteClientCertificate(dir.path(), *ca, "alice", now, absl::Hours(1));
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(ReadAll(dir.Join("alice.pem")), alice->cert_pem);
  EXPECT_EQ(ReadAll(dir.Join("alice.key")), std::string(alice->key_pem.view()));
  absl::StatusOr<X509Ptr> cert = ParseCertificate(alice->cert_pem);
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(X509_check_host(cert->get(), "alice.client", 0, 0, nullptr), 1);
}

TEST(TestPkiTest, CertificateParsesFromPemAndDer) {
  absl::StatusOr<PemKeyPair> ca = GenerateSelfSignedCa("CA", absl::Now(), absl::Hours(1));
  ASSERT_TRUE(ca.ok());
  absl::StatusOr<std::string> der = CertificateDer(ca->cert_pem);
  ASSERT_TRUE(der.ok()) << der.status();
  EXPECT_EQ(der->front(), '\x30');  // a DER SEQUENCE
  absl::StatusOr<std::string> again = CertificateDer(*der);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *der);
  EXPECT_EQ(ParseCertificate("garbage").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CertificateDer("-----BEGIN CERTIFICATE-----\n").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TestPkiTest, CrlRevokesTheGivenCertificatesAndIsSignedByTheCa) {
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  absl::StatusOr<PemKeyPair> ca = GenerateSelfSignedCa("CA", now, absl::Hours(2));
  ASSERT_TRUE(ca.ok());
  absl::StatusOr<PemKeyPair> a = IssueServerCertificate(*ca, "a", {"a"}, {}, now, absl::Hours(1));
  absl::StatusOr<PemKeyPair> b = IssueServerCertificate(*ca, "b", {"b"}, {}, now, absl::Hours(1));
  ASSERT_TRUE(a.ok() && b.ok());
  absl::StatusOr<std::string> b_der = CertificateDer(b->cert_pem);
  ASSERT_TRUE(b_der.ok());

  absl::StatusOr<std::string> pem =
      MakeCrlPem(*ca, {a->cert_pem, *b_der}, now, now + absl::Hours(1));
  ASSERT_TRUE(pem.ok()) << pem.status();
  X509CrlPtr crl = ParseCrl(*pem);
  ASSERT_NE(crl, nullptr);
  absl::StatusOr<X509Ptr> ca_cert = ParseCertificate(ca->cert_pem);
  ASSERT_TRUE(ca_cert.ok());
  EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca_cert->get())), 1);
  EXPECT_EQ(X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca_cert->get())),
            0);
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl.get()), absl::ToTimeT(now)), 0);
  ASSERT_NE(X509_CRL_get0_nextUpdate(crl.get()), nullptr);
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl.get()),
                                 absl::ToTimeT(now + absl::Hours(1))),
            0);
  for (const absl::StatusOr<PemKeyPair>* revoked : {&a, &b}) {
    absl::StatusOr<X509Ptr> cert = ParseCertificate((*revoked)->cert_pem);
    ASSERT_TRUE(cert.ok());
    X509_REVOKED* entry = nullptr;
    EXPECT_EQ(X509_CRL_get0_by_cert(crl.get(), &entry, cert->get()), 1);
  }
  absl::StatusOr<PemKeyPair> c = IssueServerCertificate(*ca, "c", {"c"}, {}, now, absl::Hours(1));
  ASSERT_TRUE(c.ok());
  absl::StatusOr<X509Ptr> c_cert = ParseCertificate(c->cert_pem);
  ASSERT_TRUE(c_cert.ok());
  X509_REVOKED* entry = nullptr;
  EXPECT_EQ(X509_CRL_get0_by_cert(crl.get(), &entry, c_cert->get()), 0);
}

TEST(TestPkiTest, CrlWithoutNextUpdateAndBadInputs) {
  const absl::Time now = absl::Now();
  absl::StatusOr<PemKeyPair> ca = GenerateSelfSignedCa("CA", now, absl::Hours(2));
  ASSERT_TRUE(ca.ok());
  absl::StatusOr<std::string> pem = MakeCrlPem(*ca, {}, now);
  ASSERT_TRUE(pem.ok()) << pem.status();
  X509CrlPtr crl = ParseCrl(*pem);
  ASSERT_NE(crl, nullptr);
  EXPECT_EQ(X509_CRL_get0_nextUpdate(crl.get()), nullptr);
  const STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  EXPECT_TRUE(entries == nullptr || sk_X509_REVOKED_num(entries) == 0);  // none revoked

  EXPECT_EQ(MakeCrlPem(*ca, {"not a certificate"}, now).status().code(),
            absl::StatusCode::kInvalidArgument);
  PemKeyPair no_key{ca->cert_pem, core::SecureBytes(std::string("junk"))};
  EXPECT_EQ(MakeCrlPem(no_key, {}, now).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TestPkiTest, WriteFileReplacesAndFailsInAMissingDirectory) {
  core::TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Join("f"), "one").ok());
  ASSERT_TRUE(WriteFile(dir.Join("f"), "two").ok());
  EXPECT_EQ(ReadAll(dir.Join("f")), "two");
  EXPECT_EQ(WriteFile(dir.Join("missing/f"), "x").code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace ward::crypto::testing
