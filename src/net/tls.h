#pragma once

// TLS contexts for Ward's HTTP server and client: OpenSSL SSL_CTX objects configured once with
// Ward's policy and then shared, immutable, by every connection that uses them.
//
// Policy (both sides): TLS 1.2 minimum, TLS 1.3 preferred (the highest common version wins);
// for TLS 1.2 only ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305); key
// exchange groups X25519 and P-256; no compression; no renegotiation. Servers issue session
// tickets (TLS 1.3 and 1.2) and keep a session cache for resumption.
//
// This header exposes OpenSSL types but no Boost types.

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/secure_bytes.h"
#include "crypto/openssl_handles.h"

namespace ward::net {

using SslCtxPtr = std::unique_ptr<SSL_CTX, crypto::Deleter<&SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, crypto::Deleter<&SSL_free>>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, crypto::Deleter<&SSL_SESSION_free>>;

// What a client context trusts and presents.
struct ClientTlsOptions {
  std::string ca_file;    // PEM bundle of trusted CAs; "" = the system trust store
  std::string cert_file;  // optional client certificate chain (PEM), for mutual TLS
  std::string key_file;   // its private key (PEM); required if and only if cert_file is set
  // Disables verification of the server's certificate chain and name. For development only.
  bool skip_verify = false;
};

// An SSL_CTX configured with Ward's TLS policy.
//
// Immutable after creation and thread-safe to share (hold it as
// std::shared_ptr<const TlsContext>): connections create their SSL objects from it, and each
// SSL object keeps its own reference to the SSL_CTX.
class TlsContext {
 public:
  // A server context with the certificate chain in `cert_file` (leaf first, PEM) and the
  // private key in `key_file` (PEM, unencrypted).
  // Errors: kInvalidArgument, naming the file, if a file cannot be read or holds no valid
  // certificate / key, or if the key does not match the certificate.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> CreateServer(
      const std::string& cert_file, const std::string& key_file);

  // The same from PEM text already in memory (e.g. certificates made by crypto/x509.h).
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

  bool verifies_peer() const { return verify_peer_; }

 private:
  TlsContext(SslCtxPtr ctx, bool verify_peer) : ctx_(std::move(ctx)), verify_peer_(verify_peer) {}

  SslCtxPtr ctx_;
  bool verify_peer_;
};

}  // namespace ward::net
