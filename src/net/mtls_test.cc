// Mutual TLS on HttpServer: client certificate requests and requirements, trust, expiry,
// revocation (CRLs), reloading the TLS context, and session resumption with shared ticket keys
// or with a node-local session cache.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/testing/fake_clock.h"
#include "core/testing/temp_dir.h"
#include "crypto/openssl_handles.h"
#include "crypto/testing/test_pki.h"
#include "crypto/x509.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/testing/loopback.h"
#include "net/tls.h"

namespace ward::net {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using X509CrlPtr = std::unique_ptr<X509_CRL, crypto::Deleter<&X509_CRL_free>>;

void WriteFile(const std::string& path, std::string_view data) {
  absl::Status written = crypto::testing::WriteFile(path, data);
  ASSERT_TRUE(written.ok()) << written;
}

std::string DerOf(std::string_view pem) {
  absl::StatusOr<std::string> der = crypto::testing::CertificateDer(pem);
  EXPECT_TRUE(der.ok()) << der.status();
  return der.ok() ? *der : "";
}

// A PEM CRL signed by `ca` that revokes the certificates in `revoked_pems`, valid for an hour
// from `now`.
std::string MakeCrl(const crypto::PemKeyPair& ca, const std::vector<std::string>& revoked_pems,
                    absl::Time now) {
  absl::StatusOr<std::string> crl =
      crypto::testing::MakeCrlPem(ca, revoked_pems, now - absl::Minutes(1), now + absl::Hours(1));
  EXPECT_TRUE(crl.ok()) << crl.status();
  return crl.ok() ? *crl : "";
}

// The outcome of one request over a fresh raw OpenSSL connection.
struct Exchange {
  bool served = false;    // a 200 response arrived
  bool reused = false;    // the handshake resumed the offered session
  std::string response;   // what the server sent
  SslSessionPtr session;  // the session after the exchange (with the server's ticket)
};

// How Fetch ends its connection.
enum class Ending {
  kClose,                // "Connection: close"; the client sends close_notify after the response
  kCloseWithoutNotify,   // likewise, but the client closes its socket without a TLS shutdown
  kKeepAlive,            // a keep-alive request: after the whole response the client sends
                         // close_notify and closes, so the server frees its connection without
                         // sending one (OpenSSL then calls the server's session "bad")
};

// Connects to 127.0.0.1:port with `ctx`, offering `session` if not null, and sends one GET. In
// TLS 1.3 the client's handshake completes before the server has checked the client
// certificate, so a refused certificate shows as a connection that ends without a response.
Exchange Fetch(uint16_t port, SSL_CTX* ctx, SSL_SESSION* session, Ending ending) {
  Exchange result;
  const int fd = testing::ConnectLoopback(port);
  if (fd < 0) {
    ADD_FAILURE() << "connect failed";
    return result;
  }
  const bool keep_alive = ending == Ending::kKeepAlive;
  SslPtr ssl(SSL_new(ctx));
  SSL_set_fd(ssl.get(), fd);
  if (session != nullptr) SSL_set_session(ssl.get(), session);
  if (SSL_connect(ssl.get()) == 1) {
    result.reused = SSL_session_reused(ssl.get()) == 1;
    std::string request = "GET /who HTTP/1.1\r\nHost: x\r\n";
    if (!keep_alive) request += "Connection: close\r\n";
    request += "\r\n";
    if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) > 0) {
      char buf[4096];
      // Until the server closes, or (keep-alive) until the body ("certs=N") has arrived.
      while (!keep_alive || result.response.find("certs=") == std::string::npos ||
             result.response.back() == '=') {
        const int n = SSL_read(ssl.get(), buf, sizeof(buf));
        if (n <= 0) break;
        result.response.append(buf, static_cast<size_t>(n));
      }
    }
    result.session.reset(SSL_get1_session(ssl.get()));
    // Without a shutdown, SSL_free marks the session not resumable.
    if (ending != Ending::kCloseWithoutNotify) SSL_shutdown(ssl.get());
  }
  ERR_clear_error();
  result.served = result.response.rfind("HTTP/1.1 200", 0) == 0;
  ssl.reset();
  ::close(fd);
  return result;
}

// One GET with "Connection: close" (Fetch); `close_notify` false: kCloseWithoutNotify.
Exchange Get(uint16_t port, SSL_CTX* ctx, SSL_SESSION* session = nullptr,
             bool close_notify = true) {
  return Fetch(port, ctx, session, close_notify ? Ending::kClose : Ending::kCloseWithoutNotify);
}

// One keep-alive GET (Fetch, Ending::kKeepAlive).
Exchange GetKeepAlive(uint16_t port, SSL_CTX* ctx, SSL_SESSION* session = nullptr) {
  return Fetch(port, ctx, session, Ending::kKeepAlive);
}

// Counts the NewSessionTicket messages the clients of `ctx` receive, in `*count`.
void CountTickets(SSL_CTX* ctx, int* count) {
  SSL_CTX_set_msg_callback_arg(ctx, count);
  SSL_CTX_set_msg_callback(ctx, [](int write_p, int, int content_type, const void* buf,
                                   size_t len, SSL*, void* arg) {
    if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        static_cast<const unsigned char*>(buf)[0] == SSL3_MT_NEWSESSION_TICKET) {
      ++*static_cast<int*>(arg);
    }
  });
}

std::string SessionId(SSL_SESSION* session) {
  unsigned int length = 0;
  const unsigned char* id = SSL_SESSION_get_id(session, &length);
  return std::string(reinterpret_cast<const char*>(id), length);
}

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ = absl::Now();
    auto server = crypto::testing::WriteLocalhostTls(dir_.path(), now_);
    ASSERT_TRUE(server.ok()) << server.status();
    for (const char* name : {"client-ca", "team-ca", "rogue-ca"}) {
      auto ca = crypto::testing::WriteCa(dir_.path(), name, now_, absl::Hours(2));
      ASSERT_TRUE(ca.ok()) << ca.status();
      cas_.emplace(name, std::move(*ca));
    }
    Issue("alice", "client-ca", now_, absl::Hours(1));
    Issue("bob", "client-ca", now_, absl::Hours(1));
    Issue("carol", "team-ca", now_, absl::Hours(1));
    Issue("mallory", "rogue-ca", now_, absl::Hours(1));
    Issue("expired", "client-ca", now_ - absl::Hours(3), absl::Hours(1));
  }

  void TearDown() override {
    for (auto& server : servers_) server->Shutdown(absl::Seconds(5));
  }

  // Issues a client certificate `name` signed by CA `ca` and writes name.pem / name.key.
  void Issue(const std::string& name, const std::string& ca, absl::Time not_before,
             absl::Duration validity) {
    auto cert = crypto::testing::WriteClientCertificate(dir_.path(), cas_.at(ca), name, not_before,
                                                        validity);
    ASSERT_TRUE(cert.ok()) << cert.status();
    certs_[name] = cert->cert_pem;
  }

  TlsServerOptions Tls(bool require = false) {
    TlsServerOptions tls;
    tls.cert_file = dir_.Join("server.pem");
    tls.key_file = dir_.Join("server.key");
    tls.client_ca_file = dir_.Join("client-ca.pem");
    tls.require_client_cert = require;
    tls.clock = &clock_;
    tls.session_cache = session_cache_;
    return tls;
  }

  // Starts a server; its handler answers "certs=N" with N the length of the client chain it
  // was given, and records the chain.
  HttpServer& StartServer(TlsServerOptions tls) {
    HttpServerOptions options;
    options.port = 0;
    options.tls = std::move(tls);
    options.io_threads = 1;
    options.worker_threads = 1;
    auto server = HttpServer::Create(std::move(options), [this](const HttpRequest& request) {
      absl::MutexLock lock(&mu_);
      last_chain_ = request.peer_certificates_der;
      return HttpResponse{200, {}, absl::StrCat("certs=", request.peer_certificates_der.size())};
    });
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) std::abort();
    servers_.push_back(std::move(*server));
    servers_.back()->Start();
    return *servers_.back();
  }

  std::vector<std::string> LastChain() {
    absl::MutexLock lock(&mu_);
    return last_chain_;
  }

  // An OpenSSL client context trusting the server CA, presenting certificate `name` (none if
  // empty), TLS `version` only.
  SslCtxPtr ClientCtx(const std::string& name, int version = TLS1_3_VERSION) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), version);
    SSL_CTX_set_max_proto_version(ctx.get(), version);
    SSL_CTX_load_verify_file(ctx.get(), dir_.Join("server-ca.pem").c_str());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (!name.empty()) {
      EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx.get(), dir_.Join(name + ".pem").c_str()), 1);
      EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx.get(), dir_.Join(name + ".key").c_str(),
                                            SSL_FILETYPE_PEM),
                1);
    }
    return ctx;
  }

  std::unique_ptr<HttpClient> Client(const HttpServer& server, const std::string& name) {
    HttpClientOptions options;
    options.address = absl::StrCat("https://127.0.0.1:", server.port());
    options.ca_file = dir_.Join("server-ca.pem");
    if (!name.empty()) {
      options.client_cert_file = dir_.Join(name + ".pem");
      options.client_key_file = dir_.Join(name + ".key");
    }
    options.timeout = absl::Seconds(30);
    auto client = HttpClient::Create(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  static bool Eventually(const std::function<bool()>& condition) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!condition()) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return true;
  }

  // Given to every server Tls() configures: null for stateless tickets.
  std::shared_ptr<SessionCache> session_cache_;
  core::TempDir dir_;
  absl::Time now_;
  core::FakeClock clock_{absl::Now()};
  std::map<std::string, crypto::PemKeyPair> cas_;
  std::map<std::string, std::string> certs_;  // client name -> certificate PEM
  std::vector<std::unique_ptr<HttpServer>> servers_;
  absl::Mutex mu_;
  std::vector<std::string> last_chain_ ABSL_GUARDED_BY(mu_);
};

// Resumption behaviour both ways sessions resume: GetParam() false = stateless tickets, true = a
// node-local session cache shared by the server's contexts.
class MtlsResumptionTest : public MtlsTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    MtlsTest::SetUp();
    if (GetParam()) session_cache_ = NewCache(1000);
  }

  std::shared_ptr<SessionCache> NewCache(size_t capacity) {
    auto cache = SessionCache::Create(capacity, &clock_);
    EXPECT_TRUE(cache.ok()) << cache.status();
    return cache.ok() ? *cache : nullptr;
  }

  // Reloads `server` with a CRL that revokes alice, then offers `session` (alice's) again: it
  // must neither resume nor be served.
  void RevokeAliceThenOffer(HttpServer& server, SSL_CTX* ctx, SSL_SESSION* session) {
    TlsServerOptions tls = Tls();
    tls.crl_pem_or_der = MakeCrl(cas_.at("client-ca"), {certs_["alice"]}, now_);
    ASSERT_TRUE(server.ReloadTls(tls).ok());
    Exchange after = Get(server.port(), ctx, session);
    EXPECT_FALSE(after.reused);
    EXPECT_FALSE(after.served) << after.response;
  }
};

INSTANTIATE_TEST_SUITE_P(Modes, MtlsResumptionTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("NodeCache") : std::string("Tickets");
                         });

// Like MtlsResumptionTest with the session cache only.
class MtlsSessionCacheTest : public MtlsResumptionTest {};
INSTANTIATE_TEST_SUITE_P(NodeCache, MtlsSessionCacheTest, ::testing::Values(true));

TEST_F(MtlsTest, CertificateIsRequestedNotRequiredByDefault) {
  HttpServer& server = StartServer(Tls());
  auto anonymous = Client(server, "");
  auto response = anonymous->Send("GET", "/", {}, "");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "certs=0");

  auto alice = Client(server, "alice");
  response = alice->Send("GET", "/", {}, "");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "certs=1");
  std::vector<std::string> chain = LastChain();
  ASSERT_EQ(chain.size(), 1u);
  EXPECT_EQ(chain[0], DerOf(certs_["alice"]));
  // Every request on the connection carries the chain.
  response = alice->Send("GET", "/again", {}, "");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "certs=1");
  EXPECT_EQ(alice->connections_opened(), 1);
  EXPECT_EQ(server.Stats().handshakes_full, 2u);
}

TEST_F(MtlsTest, NoClientCaMeansNoCertificateRequest) {
  TlsServerOptions tls = Tls();
  tls.client_ca_file.clear();
  HttpServer& server = StartServer(tls);
  // Alice offers her certificate, but the server never asks for one.
  auto alice = Client(server, "alice");
  auto response = alice->Send("GET", "/", {}, "");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "certs=0");
}

TEST_F(MtlsTest, RequiredCertificateRefusesClientWithoutOne) {
  HttpServer& server = StartServer(Tls(/*require=*/true));
  auto anonymous = Client(server, "");
  auto response = anonymous->Send("GET", "/", {}, "");
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
  Exchange raw = Get(server.port(), ClientCtx("").get());
  EXPECT_FALSE(raw.served) << raw.response;
  EXPECT_TRUE(Eventually([&] { return server.Stats().tls_handshake_failures == 2; }));
  EXPECT_EQ(server.Stats().client_cert_untrusted, 0u);

  auto alice = Client(server, "alice");
  response = alice->Send("GET", "/", {}, "");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "certs=1");
}

TEST_F(MtlsTest, CertificateFromUntrustedCaIsRefused) {
  HttpServer& server = StartServer(Tls());
  Exchange raw = Get(server.port(), ClientCtx("mallory").get());
  EXPECT_FALSE(raw.served) << raw.response;
  EXPECT_TRUE(Eventually([&] { return server.Stats().client_cert_untrusted == 1; }));
  EXPECT_EQ(server.Stats().tls_handshake_failures, 1u);
}

TEST_F(MtlsTest, ExpiredCertificateIsRefused) {
  HttpServer& server = StartServer(Tls());
  Exchange raw = Get(server.port(), ClientCtx("expired").get());
  EXPECT_FALSE(raw.served) << raw.response;
  EXPECT_TRUE(Eventually([&] { return server.Stats().client_cert_expired == 1; }));
}

TEST_F(MtlsTest, RevokedCertificateIsRefusedOthersAreNot) {
  TlsServerOptions tls = Tls();
  // Two client CAs (one from the file, one in memory); a CRL for one of them only.
  tls.client_ca_pem = cas_.at("team-ca").cert_pem;
  WriteFile(dir_.Join("crl.pem"), MakeCrl(cas_.at("client-ca"), {certs_["bob"]}, now_));
  tls.crl_file = dir_.Join("crl.pem");
  HttpServer& server = StartServer(tls);

  Exchange bob = Get(server.port(), ClientCtx("bob").get());
  EXPECT_FALSE(bob.served) << bob.response;
  EXPECT_TRUE(Eventually([&] { return server.Stats().client_cert_revoked == 1; }));
  EXPECT_TRUE(Get(server.port(), ClientCtx("alice").get()).served);
  // The team CA has no CRL: its certificates are not revoked (and not refused for it).
  EXPECT_TRUE(Get(server.port(), ClientCtx("carol").get()).served);
  EXPECT_EQ(server.Stats().tls_handshake_failures, 1u);
}

TEST_F(MtlsTest, DerCrlInMemoryIsApplied) {
  TlsServerOptions tls = Tls();
  std::string pem = MakeCrl(cas_.at("client-ca"), {certs_["alice"]}, now_);
  crypto::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  unsigned char* der = nullptr;
  const int len = i2d_X509_CRL(crl.get(), &der);
  tls.crl_pem_or_der.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  HttpServer& server = StartServer(tls);
  EXPECT_FALSE(Get(server.port(), ClientCtx("alice").get()).served);
  EXPECT_TRUE(Get(server.port(), ClientCtx("bob").get()).served);
}

TEST_F(MtlsTest, ReloadAppliesToNewConnectionsOnly) {
  HttpServer& server = StartServer(Tls());
  auto alice = Client(server, "alice");
  auto response = alice->Send("GET", "/", {}, "");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "certs=1");

  // From now on only the team CA is trusted.
  TlsServerOptions tls = Tls();
  tls.client_ca_file = dir_.Join("team-ca.pem");
  ASSERT_TRUE(server.ReloadTls(tls).ok());

  // Alice's open connection keeps working on its old context.
  response = alice->Send("GET", "/still", {}, "");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "certs=1");
  EXPECT_EQ(alice->connections_opened(), 1);
  // New connections use the new trust store.
  EXPECT_FALSE(Get(server.port(), ClientCtx("alice").get()).served);
  EXPECT_TRUE(Eventually([&] { return server.Stats().client_cert_untrusted == 1; }));
  EXPECT_TRUE(Get(server.port(), ClientCtx("carol").get()).served);
}

TEST_F(MtlsTest, FailedReloadKeepsTheOldContext) {
  HttpServer& server = StartServer(Tls());
  TlsServerOptions tls = Tls();
  tls.client_ca_file = dir_.Join("missing.pem");
  absl::Status status = server.ReloadTls(tls);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("missing.pem"));
  EXPECT_TRUE(Get(server.port(), ClientCtx("alice").get()).served);
}

TEST_F(MtlsTest, SessionResumesOnTheSameServerAndAcrossServersSharingTicketKeys) {
  auto key = TicketKey::Generate();
  ASSERT_TRUE(key.ok());
  auto key_bytes = key->bytes.Copy();
  HttpServer& a = StartServer(Tls());
  HttpServer& b = StartServer(Tls());
  std::vector<TicketKey> keys_a;
  keys_a.push_back(std::move(*key));
  ASSERT_TRUE(a.SetTicketKeys(std::move(keys_a)).ok());
  auto same = TicketKey::FromBytes(std::move(key_bytes));
  ASSERT_TRUE(same.ok());
  std::vector<TicketKey> keys_b;
  keys_b.push_back(std::move(*same));
  ASSERT_TRUE(b.SetTicketKeys(std::move(keys_b)).ok());

  SslCtxPtr ctx = ClientCtx("alice");
  Exchange first = Get(a.port(), ctx.get());
  ASSERT_TRUE(first.served) << first.response;
  ASSERT_FALSE(first.reused);
  ASSERT_NE(first.session, nullptr);

  Exchange again = Get(a.port(), ctx.get(), first.session.get());
  EXPECT_TRUE(again.served) << again.response;
  EXPECT_TRUE(again.reused);
  EXPECT_THAT(again.response, HasSubstr("certs=1"));

  Exchange other = Get(b.port(), ctx.get(), first.session.get());
  EXPECT_TRUE(other.served) << other.response;
  EXPECT_TRUE(other.reused);
  // A resumed connection still hands the client certificate to the handler.
  ASSERT_EQ(LastChain().size(), 1u);
  EXPECT_EQ(LastChain()[0], DerOf(certs_["alice"]));
  EXPECT_EQ(a.Stats().handshakes_resumed, 1u);
  EXPECT_EQ(b.Stats().handshakes_resumed, 1u);
  EXPECT_EQ(b.Stats().handshakes_full, 0u);
}

TEST_F(MtlsTest, ServerWithOtherTicketKeysFallsBackToAFullHandshake) {
  HttpServer& a = StartServer(Tls());
  HttpServer& b = StartServer(Tls());  // its own random key
  SslCtxPtr ctx = ClientCtx("alice");
  Exchange first = Get(a.port(), ctx.get());
  ASSERT_TRUE(first.served);
  Exchange other = Get(b.port(), ctx.get(), first.session.get());
  EXPECT_TRUE(other.served) << other.response;
  EXPECT_FALSE(other.reused);
}

TEST_F(MtlsTest, RotatedOutKeyStillDecryptsUntilDropped) {
  HttpServer& server = StartServer(Tls());
  auto k1 = TicketKey::Generate();
  auto k2 = TicketKey::Generate();
  ASSERT_TRUE(k1.ok() && k2.ok());
  auto k1_copy = TicketKey::FromBytes(k1->bytes.Copy());
  std::vector<TicketKey> keys;
  keys.push_back(std::move(*k1));
  ASSERT_TRUE(server.SetTicketKeys(std::move(keys)).ok());
  SslCtxPtr ctx = ClientCtx("alice");
  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served);

  // Rotate: k2 encrypts, k1 still decrypts.
  auto k2_copy = TicketKey::FromBytes(k2->bytes.Copy());
  keys.clear();
  keys.push_back(std::move(*k2));
  keys.push_back(std::move(*k1_copy));
  ASSERT_TRUE(server.SetTicketKeys(std::move(keys)).ok());
  EXPECT_TRUE(Get(server.port(), ctx.get(), first.session.get()).reused);

  // k1 dropped: its tickets no longer resume.
  keys.clear();
  keys.push_back(std::move(*k2_copy));
  ASSERT_TRUE(server.SetTicketKeys(std::move(keys)).ok());
  Exchange late = Get(server.port(), ctx.get(), first.session.get());
  EXPECT_TRUE(late.served);
  EXPECT_FALSE(late.reused);
}

// Each ticket costs the server a serialisation round trip of the session, client certificate
// included (tls.cc NewServerContext), so a full handshake issues one, and that one ticket
// resumes any number of times without the server issuing more (no renewal unless the ticket
// key rotated).
TEST_F(MtlsTest, FullHandshakeIssuesOneReusableTicketAndResumptionIssuesNone) {
  HttpServer& server = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("alice");
  // Counts the NewSessionTicket messages the client receives.
  int tickets = 0;
  SSL_CTX_set_msg_callback_arg(ctx.get(), &tickets);
  SSL_CTX_set_msg_callback(ctx.get(), [](int write_p, int, int content_type, const void* buf,
                                         size_t len, SSL*, void* arg) {
    if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        static_cast<const unsigned char*>(buf)[0] == SSL3_MT_NEWSESSION_TICKET) {
      ++*static_cast<int*>(arg);
    }
  });

  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served) << first.response;
  ASSERT_FALSE(first.reused);
  EXPECT_EQ(tickets, 1);
  // Resume with the session of the previous connection (as clients that treat TLS 1.3
  // tickets as single-use do), which carries the same ticket when the server sent none.
  SslSessionPtr session = std::move(first.session);
  for (int i = 0; i < 3; ++i) {
    Exchange again = Get(server.port(), ctx.get(), session.get());
    EXPECT_TRUE(again.served) << again.response;
    EXPECT_TRUE(again.reused) << "resumption " << i;
    ASSERT_NE(again.session, nullptr);
    session = std::move(again.session);
  }
  EXPECT_EQ(tickets, 1);
  EXPECT_EQ(server.Stats().handshakes_full, 1u);
  EXPECT_EQ(server.Stats().handshakes_resumed, 3u);
}

TEST_P(MtlsResumptionTest, ResumptionSurvivesReload) {
  HttpServer& server = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("alice");
  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served);
  ASSERT_TRUE(server.ReloadTls(Tls()).ok());
  Exchange again = Get(server.port(), ctx.get(), first.session.get());
  EXPECT_TRUE(again.served) << again.response;
  EXPECT_TRUE(again.reused);
}

TEST_P(MtlsResumptionTest, ResumptionIsRefusedOnceTheCertificateIsRevoked) {
  HttpServer& server = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("alice");
  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served);
  ASSERT_TRUE(Get(server.port(), ctx.get(), first.session.get()).reused);

  RevokeAliceThenOffer(server, ctx.get(), first.session.get());
  EXPECT_TRUE(Eventually([&] { return server.Stats().client_cert_revoked == 1; }));
  EXPECT_EQ(server.Stats().handshakes_resumed, 1u);
}

TEST_P(MtlsResumptionTest, ResumptionIsRefusedOnceTheCertificateHasExpired) {
  HttpServer& server = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("alice");
  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served);
  ASSERT_TRUE(Get(server.port(), ctx.get(), first.session.get()).reused);

  clock_.Advance(absl::Hours(2));  // past alice's notAfter (the verified-chain cache too)
  Exchange after = Get(server.port(), ctx.get(), first.session.get());
  EXPECT_FALSE(after.reused);
  EXPECT_FALSE(after.served) << after.response;
  EXPECT_TRUE(Eventually([&] { return server.Stats().client_cert_expired == 1; }));
}

TEST_P(MtlsResumptionTest, SessionWithoutCertificateIsNotResumedOnceOneIsRequired) {
  HttpServer& server = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("");
  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served);
  ASSERT_TRUE(Get(server.port(), ctx.get(), first.session.get()).reused);
  ASSERT_TRUE(server.ReloadTls(Tls(/*require=*/true)).ok());
  Exchange after = Get(server.port(), ctx.get(), first.session.get());
  EXPECT_FALSE(after.reused);
  EXPECT_FALSE(after.served) << after.response;
}

TEST_P(MtlsResumptionTest, SessionResumesWithItsClientCertificate) {
  HttpServer& server = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("alice");
  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served) << first.response;
  ASSERT_FALSE(first.reused);
  Exchange again = Get(server.port(), ctx.get(), first.session.get());
  EXPECT_TRUE(again.served) << again.response;
  EXPECT_TRUE(again.reused);
  EXPECT_THAT(again.response, HasSubstr("certs=1"));
  ASSERT_EQ(LastChain().size(), 1u);
  EXPECT_EQ(LastChain()[0], DerOf(certs_["alice"]));
  EXPECT_EQ(server.Stats().handshakes_full, 1u);
  EXPECT_EQ(server.Stats().handshakes_resumed, 1u);
}

TEST_P(MtlsResumptionTest, Tls12SessionResumesAndIsRefusedOnceTheCertificateIsRevoked) {
  HttpServer& server = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("alice", TLS1_2_VERSION);
  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served) << first.response;
  Exchange again = Get(server.port(), ctx.get(), first.session.get());
  EXPECT_TRUE(again.served) << again.response;
  EXPECT_TRUE(again.reused);
  EXPECT_THAT(again.response, HasSubstr("certs=1"));

  RevokeAliceThenOffer(server, ctx.get(), first.session.get());
  EXPECT_EQ(server.Stats().handshakes_resumed, 1u);
}

// OpenSSL marks the session of a connection freed without a close_notify sent as bad; a
// keep-alive connection the client ends is one. Its ticket must still resume.
TEST_P(MtlsResumptionTest, SessionResumesAfterTheServerClosedWithoutCloseNotify) {
  HttpServer& server = StartServer(Tls());
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SslCtxPtr ctx = ClientCtx("alice", version);
    Exchange first = GetKeepAlive(server.port(), ctx.get());
    ASSERT_TRUE(first.served) << first.response;
    ASSERT_TRUE(Eventually([&] { return server.Stats().connections_active == 0; }));
    Exchange again = GetKeepAlive(server.port(), ctx.get(), first.session.get());
    EXPECT_TRUE(again.served) << again.response;
    EXPECT_TRUE(again.reused) << version;
    ASSERT_TRUE(Eventually([&] { return server.Stats().connections_active == 0; }));
    Exchange third = GetKeepAlive(server.port(), ctx.get(), again.session.get());
    EXPECT_TRUE(third.reused) << version;
  }
}

// With the session cache every handshake, resumed ones included, ends with a new ticket (a new
// session id); the newest ticket always resumes, and a ticket already used resumes only within
// SessionCache::kReuseWindow.
TEST_P(MtlsSessionCacheTest, EveryHandshakeIssuesANewTicketAndUsedOnesLapse) {
  HttpServer& server = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("alice");
  int tickets = 0;
  CountTickets(ctx.get(), &tickets);
  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served) << first.response;
  EXPECT_EQ(tickets, 1);
  SslSessionPtr session = std::move(first.session);
  SslSessionPtr oldest(session.get());
  SSL_SESSION_up_ref(oldest.get());
  for (int i = 0; i < 3; ++i) {
    Exchange again = Get(server.port(), ctx.get(), session.get());
    EXPECT_TRUE(again.served) << again.response;
    EXPECT_TRUE(again.reused) << "resumption " << i;
    ASSERT_NE(again.session, nullptr);
    EXPECT_NE(SessionId(again.session.get()), SessionId(session.get()));
    session = std::move(again.session);
  }
  EXPECT_EQ(tickets, 4);
  EXPECT_EQ(session_cache_->Stats().inserted, 4u);

  // A client that reuses a ticket (several connections at once) resumes within the window...
  EXPECT_TRUE(Get(server.port(), ctx.get(), oldest.get()).reused);
  // ...and not after it; the newest ticket, never used, still resumes.
  clock_.Advance(SessionCache::kReuseWindow);
  EXPECT_FALSE(Get(server.port(), ctx.get(), oldest.get()).reused);
  EXPECT_TRUE(Get(server.port(), ctx.get(), session.get()).reused);
  EXPECT_EQ(server.Stats().handshakes_resumed, 5u);
}

TEST_P(MtlsSessionCacheTest, SessionResumesOnlyOnTheServerThatHoldsIt) {
  HttpServer& a = StartServer(Tls());
  HttpServer& b = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("alice");
  Exchange first = Get(a.port(), ctx.get());
  ASSERT_TRUE(first.served);
  // b shares a's cache object here, so it resumes; a server with its own cache does not.
  EXPECT_TRUE(Get(b.port(), ctx.get(), first.session.get()).reused);
  session_cache_ = NewCache(10);
  HttpServer& c = StartServer(Tls());
  Exchange other = Get(c.port(), ctx.get(), first.session.get());
  EXPECT_TRUE(other.served) << other.response;
  EXPECT_FALSE(other.reused);
}

TEST_P(MtlsSessionCacheTest, FullCacheEvictsTheOldestSession) {
  session_cache_ = NewCache(1);
  HttpServer& server = StartServer(Tls());
  SslCtxPtr alice = ClientCtx("alice");
  SslCtxPtr bob = ClientCtx("bob");
  Exchange alice_first = Get(server.port(), alice.get());
  Exchange bob_first = Get(server.port(), bob.get());
  ASSERT_TRUE(alice_first.served && bob_first.served);
  Exchange alice_again = Get(server.port(), alice.get(), alice_first.session.get());
  EXPECT_TRUE(alice_again.served);
  EXPECT_FALSE(alice_again.reused);
  EXPECT_GE(session_cache_->Stats().evicted, 1u);
  EXPECT_EQ(session_cache_->Stats().size, 1u);
}

TEST_P(MtlsSessionCacheTest, RefusedSessionIsDropped) {
  HttpServer& server = StartServer(Tls());
  SslCtxPtr ctx = ClientCtx("alice");
  Exchange first = Get(server.port(), ctx.get());
  ASSERT_TRUE(first.served);
  ASSERT_EQ(session_cache_->Stats().size, 1u);
  TlsServerOptions tls = Tls();
  tls.client_ca_file = dir_.Join("team-ca.pem");  // alice's CA no longer trusted
  ASSERT_TRUE(server.ReloadTls(tls).ok());
  Exchange after = Get(server.port(), ctx.get(), first.session.get());
  EXPECT_FALSE(after.reused);
  EXPECT_FALSE(after.served) << after.response;
  EXPECT_EQ(session_cache_->Stats().removed, 1u);
  EXPECT_EQ(session_cache_->Stats().size, 0u);
}

TEST_F(MtlsTest, InvalidClientVerificationSettingsAreRejected) {
  TlsServerOptions tls = Tls(/*require=*/true);
  tls.client_ca_file.clear();
  EXPECT_EQ(TlsContext::CreateServer(tls).status().code(), absl::StatusCode::kInvalidArgument);

  // A CRL that no trusted CA signed.
  tls = Tls();
  tls.crl_pem_or_der = MakeCrl(cas_.at("rogue-ca"), {certs_["mallory"]}, now_);
  auto context = TlsContext::CreateServer(tls);
  EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(context.status().message(), HasSubstr("not signed by any trusted client CA"));

  tls = Tls();
  WriteFile(dir_.Join("junk.pem"), "not a certificate");
  tls.client_ca_file = dir_.Join("junk.pem");
  context = TlsContext::CreateServer(tls);
  EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(context.status().message(), HasSubstr("junk.pem"));

  tls = Tls();
  tls.crl_file = dir_.Join("junk.pem");
  context = TlsContext::CreateServer(tls);
  EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(context.status().message(), HasSubstr("junk.pem"));
}

TEST(TicketKeyTest, KeysAreCheckedBeforeUse) {
  EXPECT_EQ(TicketKey::FromBytes(core::SecureBytes(79)).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto ring = TicketKeyRing::Create();
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ((*ring)->size(), 1u);
  EXPECT_EQ((*ring)->Set({}).code(), absl::StatusCode::kInvalidArgument);
  auto key = TicketKey::Generate();
  ASSERT_TRUE(key.ok());
  auto twin = TicketKey::FromBytes(key->bytes.Copy());
  std::vector<TicketKey> keys;
  keys.push_back(std::move(*key));
  keys.push_back(std::move(*twin));
  EXPECT_EQ((*ring)->Set(std::move(keys)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*ring)->size(), 1u);
}

TEST(ClassifyVerifyErrorTest, MapsReasons) {
  EXPECT_EQ(ClassifyVerifyError(X509_V_OK), ClientCertFailure::kNone);
  EXPECT_EQ(ClassifyVerifyError(X509_V_ERR_CERT_HAS_EXPIRED), ClientCertFailure::kExpired);
  EXPECT_EQ(ClassifyVerifyError(X509_V_ERR_CERT_REVOKED), ClientCertFailure::kRevoked);
  EXPECT_EQ(ClassifyVerifyError(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
            ClientCertFailure::kUntrusted);
  EXPECT_EQ(ClassifyVerifyError(X509_V_ERR_INVALID_PURPOSE), ClientCertFailure::kOther);
}

}  // namespace
}  // namespace ward::net
