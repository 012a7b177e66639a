#pragma once

// TLS contexts for Ward's HTTP server and client: OpenSSL SSL_CTX objects configured once with
// Ward's policy and then shared, immutable, by every connection that uses them.
//
// Policy (both sides): TLS 1.2 minimum, TLS 1.3 preferred (the highest common version wins);
// for TLS 1.2 only ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305); key
// exchange groups X25519 and P-256; no compression; no renegotiation. Servers resume sessions
// in one of two ways (TlsServerOptions::session_cache):
// - stateless tickets (TLS 1.3 and 1.2), encrypted with keys from a TicketKeyRing so that
//   several contexts (reloads) and several servers can share them;
// - a node-local SessionCache (net/session_cache.h) shared by the contexts of one server: TLS
//   1.3 tickets that carry only a session id, TLS 1.2 session ids. Cheaper (the session is
//   found decoded), but a session resumes only on the server that holds it.
//
// Mutual TLS (server side): when the context trusts at least one client CA it asks every client
// for a certificate (optional unless require_client_cert). A certificate that is presented must
// chain to a trusted client CA, be valid now, carry no purpose that forbids client use, and not
// be revoked by a configured CRL; otherwise the handshake fails. A resumed session is accepted
// only if its client certificate still passes those checks against the *current* context.
//
// This header exposes OpenSSL types but no Boost types.

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/secure_bytes.h"
#include "crypto/openssl_handles.h"
#include "net/session_cache.h"

namespace ward::net {

using SslCtxPtr = std::unique_ptr<SSL_CTX, crypto::Deleter<&SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, crypto::Deleter<&SSL_free>>;

// What a client context trusts and presents.
struct ClientTlsOptions {
  std::string ca_file;    // PEM bundle of trusted CAs; "" = the system trust store
  std::string cert_file;  // optional client certificate chain (PEM), for mutual TLS
  std::string key_file;   // its private key (PEM); required if and only if cert_file is set
  // Disables verification of the server's certificate chain and name. For development only.
  bool skip_verify = false;
};

// One session ticket key: a 16-byte name, a 32-byte AES-256-CBC key and a 32-byte HMAC-SHA256
// key, in that order (the 80-byte layout of nginx's ssl_session_ticket_key files). Tickets
// carry the key name, so a server can decrypt tickets made with any key it still holds.
// Move-only; the bytes zero themselves.
struct TicketKey {
  static constexpr size_t kNameSize = 16;
  static constexpr size_t kSize = 80;

  // A fresh random key. Errors: kInternal if the random generator fails.
  static absl::StatusOr<TicketKey> Generate();

  // Wraps kSize bytes (e.g. read back from storage shared by several nodes).
  // Errors: kInvalidArgument if `bytes` is not exactly kSize bytes long.
  static absl::StatusOr<TicketKey> FromBytes(core::SecureBytes bytes);

  std::string_view name() const { return bytes.view().substr(0, kNameSize); }

  core::SecureBytes bytes;  // kSize bytes: name | AES key | HMAC key
};

// The ticket keys of one server: keys()[0] encrypts new tickets, every key decrypts. A ticket
// made with a key other than the first is accepted and replaced by a fresh one (renewed).
// Shared (std::shared_ptr) by every TlsContext a server creates, so that replacing the
// certificate or the trust store keeps sessions resumable.
//
// Thread-safe: Set may run while handshakes use the keys.
class TicketKeyRing {
 public:
  // Starts with one random key. Errors: kInternal if the random generator fails.
  static absl::StatusOr<std::shared_ptr<TicketKeyRing>> Create();

  // Replaces the keys. Errors: kInvalidArgument if `keys` is empty or two keys share a name.
  absl::Status Set(std::vector<TicketKey> keys);

  // The number of keys held.
  size_t size() const;

  // For the OpenSSL ticket callback (tls.cc): encrypts (enc=1) or finds the key for
  // `key_name` and decrypts (enc=0). Returns OpenSSL's codes: -1 error, 0 no ticket / unknown
  // key, 1 done, 2 done and the ticket should be renewed.
  int Crypt(unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
            int enc) const;

 private:
  TicketKeyRing() = default;

  mutable absl::Mutex mu_;
  std::shared_ptr<const std::vector<TicketKey>> keys_ ABSL_GUARDED_BY(mu_);
};

// What a server context presents, whom it trusts for client certificates, and what it revokes.
// Files are read when the context is created; to pick up changes, create a new context (see
// HttpServer::ReloadTls).
struct TlsServerOptions {
  std::string cert_file;  // required: PEM certificate chain, leaf first
  std::string key_file;   // required: its PEM private key, unencrypted
  // CAs trusted for client certificates: the PEM bundle in client_ca_file plus the PEM bundle
  // in client_ca_pem (certificates supplied by Ward itself, e.g. its own PKI's trust bundle).
  // When both are empty the server asks for no client certificate.
  std::string client_ca_file;
  std::string client_ca_pem;
  // Certificate revocation lists applied to client certificates (the leaf only): crl_file and
  // crl_pem_or_der each hold any number of PEM CRLs or exactly one DER CRL. A CRL must be
  // signed by the trusted CA it names as its issuer; a client CA without a CRL revokes nothing;
  // a CRL past its nextUpdate still applies (a stale list is better than none or than refusing
  // every client), so keep the files fresh.
  std::string crl_file;
  std::string crl_pem_or_der;
  // false: a client certificate is requested but optional; true: a client without one fails
  // the handshake (REQUIRES: some client CA).
  bool require_client_cert = false;
  // How sessions resume. nullptr: stateless session tickets, encrypted with ticket_keys.
  // Otherwise: sessions are kept in this cache (TLS 1.3 tickets that are only a session id, TLS
  // 1.2 session ids; ticket_keys unused); share one cache between the contexts of a server (as
  // for ticket_keys) so that sessions survive a reload. Either way a session resumes only if its
  // client certificate passes this context's checks, as in a full handshake.
  std::shared_ptr<SessionCache> session_cache;
  // Session ticket keys; nullptr = a random key of this context alone (no resumption across
  // reloads or servers).
  std::shared_ptr<TicketKeyRing> ticket_keys;
  // The time used to judge certificate validity; nullptr = core::RealClock. Borrowed; must
  // outlive the context.
  const core::Clock* clock = nullptr;
  // A client certificate that verified is remembered (keyed by the SHA-256 of its DER, per
  // context) for this long, capped by the earliest notAfter in its chain, so that clients
  // reconnecting skip the chain verification. Zero disables the cache.
  absl::Duration verify_cache_ttl = absl::Minutes(5);
};

// Why a client certificate was refused (for statistics).
enum class ClientCertFailure { kNone, kExpired, kRevoked, kUntrusted, kOther };

// Classifies an X509_V_ERR_* code (as from SSL_get_verify_result): kNone for X509_V_OK;
// kExpired for an expired or not yet valid certificate; kRevoked; kUntrusted when no chain
// to a trusted CA could be built; kOther for anything else.
ClientCertFailure ClassifyVerifyError(long x509_error);

// The client certificate chain of a server-side connection whose handshake completed (also a
// resumed one), leaf first, each DER-encoded; empty if the client presented none. A resumed
// session yields at least the leaf.
std::vector<std::string> PeerCertificatesDer(SSL* ssl);

// An SSL_CTX configured with Ward's TLS policy.
//
// Immutable after creation and thread-safe to share (hold it as
// std::shared_ptr<const TlsContext>): connections create their SSL objects from it, and each
// SSL object keeps its own reference to the SSL_CTX.
class TlsContext {
 public:
  // A server context (see TlsServerOptions).
  // Errors: kInvalidArgument, naming the file, if a file cannot be read or holds no valid
  // certificate / key / CRL, if the key does not match the certificate, or if
  // require_client_cert is set without any client CA.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> CreateServer(
      const TlsServerOptions& options);

  // A server context from PEM text already in memory (e.g. certificates made by
  // crypto/x509.h), asking for no client certificate.
  // Errors: kInvalidArgument if the PEM does not parse or the key does not match.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> CreateServerFromPem(
      std::string_view cert_pem, const core::SecureBytes& key_pem);

  // A client context. Unless options.skip_verify, it verifies the server's chain against
  // options.ca_file (or the system store); the server's name is checked per connection by
  // SetPeerName.
  // Errors: kInvalidArgument, naming the file, if the CA file or client certificate/key
  // cannot be loaded, or if only one of cert_file and key_file is set.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> CreateClient(
      const ClientTlsOptions& options);

  // Prepares the client connection `ssl` (created from this context) to talk to `host`, a DNS
  // name or an IP address literal (IPv6 without brackets): sends SNI for DNS names and, when
  // verifying, requires the server certificate to name `host` (DNS SAN or IP SAN).
  // Errors: kInvalidArgument if `host` is empty; kInternal if OpenSSL refuses the name.
  absl::Status SetPeerName(SSL* ssl, std::string_view host) const;

  // The configured SSL_CTX. Use it to create SSL objects; never change its configuration.
  SSL_CTX* native_handle() const { return ctx_.get(); }

  // Client contexts: whether the server's certificate is verified. Server contexts: whether
  // client certificates are requested (any client CA configured).
  bool verifies_peer() const { return verify_peer_; }

  // Server contexts: whether a client certificate is required.
  bool requires_client_cert() const { return require_client_cert_; }

 private:
  TlsContext(SslCtxPtr ctx, bool verify_peer, bool require_client_cert = false)
      : ctx_(std::move(ctx)),
        verify_peer_(verify_peer),
        require_client_cert_(require_client_cert) {}

  SslCtxPtr ctx_;
  bool verify_peer_;
  bool require_client_cert_;
};

}  // namespace ward::net
