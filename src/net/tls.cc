#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace ward::net {
namespace {

// TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 suites are all AEAD.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr char kTls13Ciphersuites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr char kGroups[] = "X25519:P-256";
// Distinguishes this application's cached sessions from any other's sharing the cache.
constexpr unsigned char kSessionIdContext[] = "ward";

using Asn1OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING, crypto::Deleter<&ASN1_OCTET_STRING_free>>;

// Reads a whole file. Errors: kInvalidArgument naming `what` and the file.
absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view what) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(core::ToAbsl(what), " file is not set"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", core::ToAbsl(what), " file \"",
                                                   path, "\": ", std::strerror(errno)));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", core::ToAbsl(what), " file \"", path, "\""));
  }
  return std::move(out).str();
}

// Applies the protocol policy shared by server and client contexts.
absl::Status ApplyPolicy(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return absl::InternalError("cannot set TLS versions: " + crypto::LastOpenSslError());
  }
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, kTls13Ciphersuites) != 1) {
    return absl::InternalError("cannot set TLS ciphers: " + crypto::LastOpenSslError());
  }
  if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    return absl::InternalError("cannot set TLS groups: " + crypto::LastOpenSslError());
  }
  return absl::OkStatus();
}

// Installs the chain in `cert_pem` (leaf first) and `key_pem` on `ctx`. `cert_label` and
// `key_label` name the sources in error messages.
absl::Status UseCertificateAndKey(SSL_CTX* ctx, std::string_view cert_pem, std::string_view key_pem,
                                  std::string_view cert_label, std::string_view key_label) {
  ERR_clear_error();
  crypto::BioPtr cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  if (cert_bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  crypto::X509Ptr leaf(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (leaf == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        core::ToAbsl(cert_label), " holds no PEM certificate: ", crypto::LastOpenSslError()));
  }
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("cannot use the certificate in ",
                                                   core::ToAbsl(cert_label), ": ",
                                                   crypto::LastOpenSslError()));
  }
  SSL_CTX_clear_chain_certs(ctx);
  for (;;) {
    crypto::X509Ptr extra(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    if (extra == nullptr) break;
    if (SSL_CTX_add1_chain_cert(ctx, extra.get()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("cannot use a chain certificate in ",
                                                     core::ToAbsl(cert_label), ": ",
                                                     crypto::LastOpenSslError()));
    }
  }
  // The loop ends on "no start line" at the end of the input: not an error.
  ERR_clear_error();

  crypto::BioPtr key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  if (key_bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  // An empty passphrase callback makes an encrypted key fail instead of prompting on a tty.
  crypto::EvpPkeyPtr key(PEM_read_bio_PrivateKey(
      key_bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (key == nullptr) {
    // Not LastOpenSslError(): the key file's contents have no place in a message.
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(core::ToAbsl(key_label), " holds no unencrypted PEM private key"));
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("the private key in ", core::ToAbsl(key_label),
                                                   " does not match the certificate in ",
                                                   core::ToAbsl(cert_label)));
  }
  return absl::OkStatus();
}

absl::StatusOr<SslCtxPtr> NewServerContext() {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) {
    return absl::InternalError("SSL_CTX_new failed: " + crypto::LastOpenSslError());
  }
  WARD_RETURN_IF_ERROR(ApplyPolicy(ctx.get()));
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  if (SSL_CTX_set_session_id_context(ctx.get(), kSessionIdContext, sizeof(kSessionIdContext) - 1) !=
      1) {
    return absl::InternalError("cannot set the session id context");
  }
  return ctx;
}

std::string Quoted(const std::string& path) { return absl::StrCat("\"", path, "\""); }

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::CreateServer(
    const std::string& cert_file, const std::string& key_file) {
  WARD_ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(cert_file, "TLS certificate"));
  WARD_ASSIGN_OR_RETURN(std::string key_text, ReadFile(key_file, "TLS key"));
  core::SecureBytes key_pem(key_text);
  core::SecureZero(key_text);
  WARD_ASSIGN_OR_RETURN(SslCtxPtr ctx, NewServerContext());
  WARD_RETURN_IF_ERROR(UseCertificateAndKey(ctx.get(), cert_pem, key_pem.view(),
                                            "TLS certificate file " + Quoted(cert_file),
                                            "TLS key file " + Quoted(key_file)));
  return std::shared_ptr<const TlsContext>(new TlsContext(std::move(ctx), false));
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::CreateServerFromPem(
    std::string_view cert_pem, const core::SecureBytes& key_pem) {
  WARD_ASSIGN_OR_RETURN(SslCtxPtr ctx, NewServerContext());
  WARD_RETURN_IF_ERROR(UseCertificateAndKey(ctx.get(), cert_pem, key_pem.view(),
                                            "the TLS certificate PEM", "the TLS key PEM"));
  return std::shared_ptr<const TlsContext>(new TlsContext(std::move(ctx), false));
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::CreateClient(
    const ClientTlsOptions& options) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) {
    return absl::InternalError("SSL_CTX_new failed: " + crypto::LastOpenSslError());
  }
  WARD_RETURN_IF_ERROR(ApplyPolicy(ctx.get()));
  if (options.skip_verify) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (options.ca_file.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
        return absl::InvalidArgumentError("cannot load the system CA store: " +
                                          crypto::LastOpenSslError());
      }
    } else {
      // Read it ourselves first for a precise "cannot read" message.
      WARD_ASSIGN_OR_RETURN(std::string ca_pem, ReadFile(options.ca_file, "CA"));
      ERR_clear_error();
      if (SSL_CTX_load_verify_file(ctx.get(), options.ca_file.c_str()) != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("CA file ", Quoted(options.ca_file),
                         " holds no PEM certificate: ", crypto::LastOpenSslError()));
      }
    }
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate file and a client key file must be given together");
  }
  if (!options.cert_file.empty()) {
    WARD_ASSIGN_OR_RETURN(std::string cert_pem,
                          ReadFile(options.cert_file, "TLS client certificate"));
    WARD_ASSIGN_OR_RETURN(std::string key_text, ReadFile(options.key_file, "TLS client key"));
    core::SecureBytes key_pem(key_text);
    core::SecureZero(key_text);
    WARD_RETURN_IF_ERROR(
        UseCertificateAndKey(ctx.get(), cert_pem, key_pem.view(),
                             "TLS client certificate file " + Quoted(options.cert_file),
                             "TLS client key file " + Quoted(options.key_file)));
  }
  return std::shared_ptr<const TlsContext>(new TlsContext(std::move(ctx), !options.skip_verify));
}

absl::Status TlsContext::SetPeerName(SSL* ssl, std::string_view host) const {
  if (host.empty()) return absl::InvalidArgumentError("the TLS peer name is empty");
  std::string name(host);
  // a2i_IPADDRESS accepts exactly the IPv4 and IPv6 literals; anything else is a DNS name.
  Asn1OctetStringPtr ip(a2i_IPADDRESS(name.c_str()));
  ERR_clear_error();
  if (ip == nullptr) {
    // SNI is for DNS names only (RFC 6066 section 3).
    if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
      return absl::InternalError("cannot set TLS server name: " + crypto::LastOpenSslError());
    }
  }
  if (!verify_peer_) return absl::OkStatus();
  if (ip == nullptr) {
    if (SSL_set1_host(ssl, name.c_str()) != 1) {
      return absl::InternalError("cannot set the expected TLS peer name: " +
                                 crypto::LastOpenSslError());
    }
  } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1) {
    return absl::InternalError("cannot set the expected TLS peer address: " +
                               crypto::LastOpenSslError());
  }
  return absl::OkStatus();
}

}  // namespace ward::net
