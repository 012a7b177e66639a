#include "net/tls.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/random.h"

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
using X509CrlPtr = std::unique_ptr<X509_CRL, crypto::Deleter<&X509_CRL_free>>;

// At most this many verified client certificates are remembered per context; when full, the
// expired entries go, and if that is not enough, all of them.
constexpr size_t kVerifyCacheLimit = 10000;

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

// A server context with Ward's policy. `stateful`: sessions resume through a SessionCache
// (CreateServer installs its callbacks); otherwise through stateless tickets.
absl::StatusOr<SslCtxPtr> NewServerContext(bool stateful) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) {
    return absl::InternalError("SSL_CTX_new failed: " + crypto::LastOpenSslError());
  }
  WARD_RETURN_IF_ERROR(ApplyPolicy(ctx.get()));
  if (stateful) {
    // SSL_OP_NO_TICKET makes OpenSSL's TLS 1.3 tickets stateful (the ticket is the session id,
    // looked up through the get callback) and TLS 1.2 use session ids. Only Ward's cache
    // (shared by every context of the server) holds sessions: OpenSSL's internal cache is per
    // SSL_CTX, so a reload would lose it.
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL |
                                                  SSL_SESS_CACHE_NO_AUTO_CLEAR);
  } else {
    // Resumption through tickets only: they work across contexts and servers sharing ticket
    // keys, and every resumption passes DecryptTicket's client certificate check.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  }
  // One TLS 1.3 ticket per full handshake instead of OpenSSL's default two. OpenSSL builds
  // each stateless ticket by an i2d + d2i + i2d of the session, and with a client certificate
  // the d2i decodes that certificate again through OpenSSL 3.0's provider decoders: the second
  // ticket cost about 1.6M of 10.3M instructions per full mutual-TLS handshake (callgrind).
  // Stateless tickets are not single-use on the server, so one is enough for a client to
  // resume; resumptions issue no new ticket unless DecryptTicket asks to renew one (after a
  // ticket key rotation). Stateful: each ticket is a cache entry, and OpenSSL sends a new one
  // after every resumption.
  if (SSL_CTX_set_num_tickets(ctx.get(), 1) != 1) {
    return absl::InternalError("cannot set the number of session tickets");
  }
  // Send exactly the configured chain. Otherwise, for a leaf-only certificate file, OpenSSL
  // would build (and verify) a chain from the client CA store on every handshake.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_NO_AUTO_CHAIN);
  if (SSL_CTX_set_session_id_context(ctx.get(), kSessionIdContext, sizeof(kSessionIdContext) - 1) !=
      1) {
    return absl::InternalError("cannot set the session id context");
  }
  return ctx;
}

std::string Quoted(const std::string& path) { return absl::StrCat("\"", path, "\""); }

absl::Time Asn1TimeToAbsl(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

// What a server context's callbacks need. Owned by the SSL_CTX (freed with it, see
// ServerStateIndex), so it lives as long as any connection made from the context.
struct ServerState {
  const core::Clock* clock = nullptr;
  std::shared_ptr<TicketKeyRing> ticket_keys;  // may be null: OpenSSL's own keys
  std::shared_ptr<SessionCache> session_cache;  // null: stateless tickets
  bool requests_cert = false;
  bool requires_cert = false;
  absl::Duration cache_ttl;

  // SHA-256 of a verified leaf's DER -> until when that verification may be reused.
  absl::Mutex mu;
  std::unordered_map<std::string, absl::Time> verified ABSL_GUARDED_BY(mu);

  // Whether `fingerprint` verified earlier and that result is still good at `now`.
  bool CachedOk(const std::string& fingerprint, absl::Time now) {
    absl::MutexLock lock(&mu);
    auto it = verified.find(fingerprint);
    return it != verified.end() && now < it->second;
  }

  void Remember(std::string fingerprint, absl::Time until, absl::Time now) {
    absl::MutexLock lock(&mu);
    if (verified.size() >= kVerifyCacheLimit) {
      std::erase_if(verified, [now](const auto& entry) { return entry.second <= now; });
      if (verified.size() >= kVerifyCacheLimit) verified.clear();
    }
    verified[std::move(fingerprint)] = until;
  }
};

void FreeServerState(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<ServerState*>(ptr);
}

int ServerStateIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &FreeServerState);
  return index;
}

ServerState* StateOf(SSL_CTX* ctx) {
  return static_cast<ServerState*>(SSL_CTX_get_ex_data(ctx, ServerStateIndex()));
}

std::string Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return std::string();
  return std::string(reinterpret_cast<const char*>(md), len);
}

// SSL_CTX_set_verify callback: OpenSSL's verdict, except that missing or out-of-date CRLs do
// not fail a handshake (see TlsServerOptions::crl_file).
int VerifyPolicy(int ok, X509_STORE_CTX* ctx) {
  if (ok == 1) return 1;
  switch (X509_STORE_CTX_get_error(ctx)) {
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
      X509_STORE_CTX_set_error(ctx, X509_V_OK);
      return 1;
    default:
      return 0;
  }
}

// Verifies the chain in `ctx` (initialised, with its leaf) at the state's clock time, or
// trusts an earlier verification of the same leaf by this context. Returns 1 if trusted.
int VerifyWithCache(ServerState& state, X509_STORE_CTX* ctx) {
  X509* leaf = X509_STORE_CTX_get0_cert(ctx);
  const absl::Time now = state.clock->Now();
  std::string fingerprint;
  if (state.cache_ttl > absl::ZeroDuration() && leaf != nullptr) {
    fingerprint = Fingerprint(leaf);
    if (!fingerprint.empty() && state.CachedOk(fingerprint, now)) return 1;
  }
  X509_STORE_CTX_set_time(ctx, 0, absl::ToTimeT(now));
  if (X509_verify_cert(ctx) != 1) return 0;
  if (!fingerprint.empty()) {
    absl::Time until = now + state.cache_ttl;
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
    for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
      until = std::min(until, Asn1TimeToAbsl(X509_get0_notAfter(sk_X509_value(chain, i))));
    }
    state.Remember(std::move(fingerprint), until, now);
  }
  return 1;
}

// SSL_CTX_set_cert_verify_callback: verification of a presented client chain.
int AppVerify(X509_STORE_CTX* ctx, void* arg) {
  return VerifyWithCache(*static_cast<ServerState*>(arg), ctx);
}

// Whether the client certificate of a session being resumed still passes verification against
// `ssl`'s (current) context. Only the leaf is known: a leaf that needed intermediates the client
// sent (and that the trust store lacks) is not resumed, but gets a full handshake.
bool SessionPeerStillValid(SSL* ssl, ServerState& state, X509* leaf) {
  // The common case, checked before paying for a store context.
  if (state.cache_ttl > absl::ZeroDuration()) {
    const std::string fingerprint = Fingerprint(leaf);
    if (!fingerprint.empty() && state.CachedOk(fingerprint, state.clock->Now())) return true;
  }
  crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)), leaf, nullptr) !=
          1 ||
      X509_STORE_CTX_set_default(ctx.get(), "ssl_client") != 1) {
    ERR_clear_error();
    return false;
  }
  X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(ctx.get()), SSL_get0_param(ssl));
  X509_STORE_CTX_set_verify_cb(ctx.get(), &VerifyPolicy);
  const bool ok = VerifyWithCache(state, ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

// Whether `session` (from a ticket or the session cache) may be resumed on `ssl`: not when its
// client certificate no longer verifies against the current context (expired, revoked, CA no
// longer trusted), nor when the context now requires a certificate and the session has none.
bool SessionMayResume(SSL* ssl, ServerState& state, SSL_SESSION* session) {
  X509* peer = SSL_SESSION_get0_peer(session);
  if (peer == nullptr) return !state.requires_cert;
  return state.requests_cert && SessionPeerStillValid(ssl, state, peer);
}

// SSL_CTX_set_session_ticket_cb decrypt callback: decides whether a decrypted ticket's session
// may be resumed (SessionMayResume); if not, a full handshake follows.
SSL_TICKET_RETURN DecryptTicket(SSL* ssl, SSL_SESSION* session, const unsigned char*, size_t,
                                SSL_TICKET_STATUS status, void* arg) {
  switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
      break;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
      return SSL_TICKET_RETURN_IGNORE_RENEW;
    default:
      return SSL_TICKET_RETURN_ABORT;
  }
  if (!SessionMayResume(ssl, *static_cast<ServerState*>(arg), session)) {
    return SSL_TICKET_RETURN_IGNORE_RENEW;
  }
  return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW : SSL_TICKET_RETURN_USE;
}

// The cache never shares a session object with a connection, so the sessions it holds are
// never written to: OpenSSL writes to a connection's session while resuming it (the PSK
// identity, with several connections resuming one TLS 1.3 ticket at once on different event
// loops), and when a connection is freed without a close_notify sent (the client closed first,
// an idle timeout) it marks that session not resumable, in the object itself, and would refuse
// to resume it later. Stateless tickets are immune (each resumption decodes a fresh object).
// SSL_SESSION_dup copies the fields and takes references to the certificates (about 1,500
// instructions): no encoding, no decoding.

// SSL_CTX_sess_set_new_cb: OpenSSL made a session to resume (TLS 1.3: one per ticket sent;
// TLS 1.2: one per full handshake). Returns 0: OpenSSL keeps its reference.
int NewSession(SSL* ssl, SSL_SESSION* session) {
  ServerState* state = StateOf(SSL_get_SSL_CTX(ssl));
  if (state == nullptr || state->session_cache == nullptr) return 0;
  SslSessionPtr copy(SSL_SESSION_dup(session));
  if (copy == nullptr) {
    ERR_clear_error();  // not cached: the client's ticket will not resume
    return 0;
  }
  state->session_cache->Insert(copy.get());
  return 0;
}

// SSL_CTX_sess_set_get_cb: the session a client offers (a TLS 1.3 stateful ticket or a TLS 1.2
// session id), if the cache holds it and it may resume here (SessionMayResume; a session that
// may not is dropped). Hands OpenSSL a copy of its own (*copy = 0).
SSL_SESSION* GetSession(SSL* ssl, const unsigned char* id, int length, int* copy) {
  *copy = 0;
  ServerState* state = StateOf(SSL_get_SSL_CTX(ssl));
  if (state == nullptr || state->session_cache == nullptr || length <= 0) return nullptr;
  const std::string_view key(reinterpret_cast<const char*>(id), static_cast<size_t>(length));
  SslSessionPtr session = state->session_cache->Find(key);
  if (session == nullptr) return nullptr;
  if (!SessionMayResume(ssl, *state, session.get())) {
    state->session_cache->Remove(key);
    return nullptr;
  }
  SSL_SESSION* private_copy = SSL_SESSION_dup(session.get());
  if (private_copy == nullptr) ERR_clear_error();
  return private_copy;
}

int TicketKeyCallback(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                      EVP_MAC_CTX* mac, int enc) {
  ServerState* state = StateOf(SSL_get_SSL_CTX(ssl));
  if (state == nullptr || state->ticket_keys == nullptr) return -1;
  return state->ticket_keys->Crypt(key_name, iv, cipher, mac, enc);
}

// Parses every PEM certificate in `pem`. Errors: kInvalidArgument naming `label` if there is
// none or one does not parse.
absl::StatusOr<std::vector<crypto::X509Ptr>> ParseCertificates(std::string_view pem,
                                                               std::string_view label) {
  std::vector<crypto::X509Ptr> certs;
  crypto::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  ERR_clear_error();
  for (;;) {
    crypto::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  const unsigned long err = ERR_peek_last_error();
  const bool clean_end =
      ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  if (err != 0 && !clean_end) {
    return absl::InvalidArgumentError(absl::StrCat(
        core::ToAbsl(label), " holds an invalid PEM certificate: ", crypto::LastOpenSslError()));
  }
  ERR_clear_error();
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(core::ToAbsl(label), " holds no PEM certificate"));
  }
  return certs;
}

// Parses the CRLs in `text`: any number of PEM CRLs, or one DER CRL. Errors: kInvalidArgument
// naming `label` if there is none or one does not parse.
absl::StatusOr<std::vector<X509CrlPtr>> ParseCrls(std::string_view text, std::string_view label) {
  std::vector<X509CrlPtr> crls;
  crypto::BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  ERR_clear_error();
  if (text.find("-----BEGIN") == std::string_view::npos) {
    X509CrlPtr crl(d2i_X509_CRL_bio(bio.get(), nullptr));
    if (crl == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(core::ToAbsl(label),
                       " holds neither PEM CRLs nor a DER CRL: ", crypto::LastOpenSslError()));
    }
    crls.push_back(std::move(crl));
    return crls;
  }
  for (;;) {
    X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (crl == nullptr) break;
    crls.push_back(std::move(crl));
  }
  const unsigned long err = ERR_peek_last_error();
  const bool clean_end =
      ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  if ((err != 0 && !clean_end) || crls.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        core::ToAbsl(label), " holds an invalid or no PEM CRL: ", crypto::LastOpenSslError()));
  }
  ERR_clear_error();
  return crls;
}

// Installs client CAs and CRLs and the verification callbacks on a server context.
absl::Status ConfigureClientVerification(SSL_CTX* ctx, const TlsServerOptions& options,
                                         ServerState& state) {
  std::vector<crypto::X509Ptr> cas;
  if (!options.client_ca_file.empty()) {
    WARD_ASSIGN_OR_RETURN(std::string pem, ReadFile(options.client_ca_file, "TLS client CA"));
    WARD_ASSIGN_OR_RETURN(
        cas, ParseCertificates(pem, "TLS client CA file " + Quoted(options.client_ca_file)));
  }
  if (!options.client_ca_pem.empty()) {
    WARD_ASSIGN_OR_RETURN(std::vector<crypto::X509Ptr> more,
                          ParseCertificates(options.client_ca_pem, "the client CA PEM bundle"));
    for (auto& cert : more) cas.push_back(std::move(cert));
  }
  std::vector<std::pair<X509CrlPtr, std::string>> crls;  // with the label of their source
  for (const auto& [text, label, is_file] :
       {std::tuple{options.crl_file, std::string("TLS CRL file ") + Quoted(options.crl_file), true},
        std::tuple{options.crl_pem_or_der, std::string("the CRL bundle"), false}}) {
    if (text.empty()) continue;
    std::string data = text;
    if (is_file) {
      WARD_ASSIGN_OR_RETURN(data, ReadFile(options.crl_file, "TLS CRL"));
    }
    WARD_ASSIGN_OR_RETURN(std::vector<X509CrlPtr> parsed, ParseCrls(data, label));
    for (auto& crl : parsed) crls.emplace_back(std::move(crl), label);
  }
  if (cas.empty()) {
    if (options.require_client_cert) {
      return absl::InvalidArgumentError(
          "a client certificate is required but no client CA is configured");
    }
    if (!crls.empty()) {
      return absl::InvalidArgumentError("CRLs are configured but no client CA is");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return absl::OkStatus();
  }

  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const auto& ca : cas) {
    if (X509_STORE_add_cert(store, ca.get()) != 1 || SSL_CTX_add_client_CA(ctx, ca.get()) != 1) {
      // The same CA twice (file and bundle) is harmless.
      const unsigned long err = ERR_peek_last_error();
      if (ERR_GET_REASON(err) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        return absl::InternalError("cannot add a client CA: " + crypto::LastOpenSslError());
      }
      ERR_clear_error();
    }
  }
  for (const auto& [crl, label] : crls) {
    // Refuse a CRL no trusted CA signed: it would revoke nothing, silently.
    bool signed_by_ca = false;
    for (const auto& ca : cas) {
      if (X509_NAME_cmp(X509_get_subject_name(ca.get()), X509_CRL_get_issuer(crl.get())) == 0 &&
          X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) == 1) {
        signed_by_ca = true;
        break;
      }
    }
    ERR_clear_error();
    if (!signed_by_ca) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, " holds a CRL not signed by any trusted client CA"));
    }
    if (X509_STORE_add_crl(store, crl.get()) != 1) {
      return absl::InternalError("cannot add a CRL: " + crypto::LastOpenSslError());
    }
  }
  if (!crls.empty()) X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);

  state.requests_cert = true;
  state.requires_cert = options.require_client_cert;
  SSL_CTX_set_verify(
      ctx, SSL_VERIFY_PEER | (options.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
      &VerifyPolicy);
  SSL_CTX_set_cert_verify_callback(ctx, &AppVerify, &state);
  // The names of the trusted CAs go in the CertificateRequest (clients pick a certificate by
  // them); a chain longer than this cannot be a client's.
  SSL_CTX_set_verify_depth(ctx, 8);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TicketKey> TicketKey::Generate() {
  WARD_ASSIGN_OR_RETURN(core::SecureBytes bytes, crypto::RandomBytes(kSize));
  return TicketKey{std::move(bytes)};
}

absl::StatusOr<TicketKey> TicketKey::FromBytes(core::SecureBytes bytes) {
  if (bytes.size() != kSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("a session ticket key must be ", kSize, " bytes, not ", bytes.size()));
  }
  return TicketKey{std::move(bytes)};
}

absl::StatusOr<std::shared_ptr<TicketKeyRing>> TicketKeyRing::Create() {
  std::shared_ptr<TicketKeyRing> ring(new TicketKeyRing());
  WARD_ASSIGN_OR_RETURN(TicketKey key, TicketKey::Generate());
  std::vector<TicketKey> keys;
  keys.push_back(std::move(key));
  WARD_RETURN_IF_ERROR(ring->Set(std::move(keys)));
  return ring;
}

absl::Status TicketKeyRing::Set(std::vector<TicketKey> keys) {
  if (keys.empty()) return absl::InvalidArgumentError("no session ticket keys");
  std::set<std::string_view> names;
  for (const TicketKey& key : keys) {
    if (key.bytes.size() != TicketKey::kSize) {
      return absl::InvalidArgumentError("a session ticket key has the wrong size");
    }
    if (!names.insert(key.name()).second) {
      return absl::InvalidArgumentError("two session ticket keys share a name");
    }
  }
  auto snapshot = std::make_shared<const std::vector<TicketKey>>(std::move(keys));
  absl::MutexLock lock(&mu_);
  keys_ = std::move(snapshot);
  return absl::OkStatus();
}

size_t TicketKeyRing::size() const {
  absl::MutexLock lock(&mu_);
  return keys_ == nullptr ? 0 : keys_->size();
}

int TicketKeyRing::Crypt(unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                         EVP_MAC_CTX* mac, int enc) const {
  std::shared_ptr<const std::vector<TicketKey>> keys;
  {
    absl::MutexLock lock(&mu_);
    keys = keys_;
  }
  if (keys == nullptr || keys->empty()) return enc ? 0 : -1;
  const TicketKey* key = nullptr;
  bool current = false;
  if (enc) {
    key = &keys->front();
    current = true;
    if (RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_256_cbc())) != 1) return -1;
    std::memcpy(key_name, key->bytes.data(), TicketKey::kNameSize);
  } else {
    for (size_t i = 0; i < keys->size(); ++i) {
      if (std::memcmp(key_name, (*keys)[i].bytes.data(), TicketKey::kNameSize) == 0) {
        key = &(*keys)[i];
        current = i == 0;
        break;
      }
    }
    if (key == nullptr) return 0;  // unknown key: a full handshake
  }
  const unsigned char* aes_key = key->bytes.data() + TicketKey::kNameSize;
  unsigned char* hmac_key = const_cast<unsigned char*>(aes_key) + 32;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, hmac_key, 32),
                         OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  const int ok = enc ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, aes_key, iv)
                     : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, aes_key, iv);
  if (ok != 1) return -1;
  return current ? 1 : 2;
}

ClientCertFailure ClassifyVerifyError(long x509_error) {
  switch (x509_error) {
    case X509_V_OK:
      return ClientCertFailure::kNone;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return ClientCertFailure::kExpired;
    case X509_V_ERR_CERT_REVOKED:
      return ClientCertFailure::kRevoked;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return ClientCertFailure::kUntrusted;
    default:
      return ClientCertFailure::kOther;
  }
}

std::vector<std::string> PeerCertificatesDer(SSL* ssl) {
  std::vector<std::string> out;
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (leaf == nullptr) return out;
  auto der = [](X509* cert) {
    unsigned char* buf = nullptr;
    const int len = i2d_X509(cert, &buf);
    std::string bytes;
    if (len > 0) bytes.assign(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
    OPENSSL_free(buf);
    return bytes;
  };
  out.push_back(der(leaf));
  // On the server side the stack holds the certificates after the leaf (OpenSSL 3); skip the
  // leaf should it be there.
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    X509* cert = sk_X509_value(chain, i);
    if (X509_cmp(cert, leaf) == 0) continue;
    out.push_back(der(cert));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::CreateServer(
    const TlsServerOptions& options) {
  WARD_ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(options.cert_file, "TLS certificate"));
  WARD_ASSIGN_OR_RETURN(std::string key_text, ReadFile(options.key_file, "TLS key"));
  core::SecureBytes key_pem(key_text);
  core::SecureZero(key_text);
  WARD_ASSIGN_OR_RETURN(SslCtxPtr ctx, NewServerContext(options.session_cache != nullptr));
  WARD_RETURN_IF_ERROR(UseCertificateAndKey(ctx.get(), cert_pem, key_pem.view(),
                                            "TLS certificate file " + Quoted(options.cert_file),
                                            "TLS key file " + Quoted(options.key_file)));
  auto owned_state = std::make_unique<ServerState>();
  ServerState& state = *owned_state;
  state.clock = options.clock != nullptr ? options.clock : &core::RealClock::Get();
  state.ticket_keys = options.ticket_keys;
  state.session_cache = options.session_cache;
  state.cache_ttl = std::max(options.verify_cache_ttl, absl::ZeroDuration());
  if (SSL_CTX_set_ex_data(ctx.get(), ServerStateIndex(), owned_state.get()) != 1) {
    return absl::InternalError("SSL_CTX_set_ex_data failed");
  }
  owned_state.release();  // the SSL_CTX frees it (FreeServerState)
  WARD_RETURN_IF_ERROR(ConfigureClientVerification(ctx.get(), options, state));
  if (state.ticket_keys != nullptr &&
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx.get(), &TicketKeyCallback) != 1) {
    return absl::InternalError("cannot install the session ticket key callback");
  }
  if (SSL_CTX_set_session_ticket_cb(ctx.get(), nullptr, &DecryptTicket, &state) != 1) {
    return absl::InternalError("cannot install the session ticket callback");
  }
  if (state.session_cache != nullptr) {
    // No remove callback: OpenSSL "removes" the session of every connection freed without a
    // close_notify sent (a client that just closes its socket, an idle timeout), which would
    // void the ticket the client holds; stateless tickets ignore that too, and TLS 1.1 and
    // later do not require it. Sessions leave the cache by expiry, replacement (TLS 1.3) or
    // eviction, and when GetSession refuses them.
    SSL_CTX_sess_set_new_cb(ctx.get(), &NewSession);
    SSL_CTX_sess_set_get_cb(ctx.get(), &GetSession);
  }
  return std::shared_ptr<const TlsContext>(
      new TlsContext(std::move(ctx), state.requests_cert, state.requires_cert));
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::CreateServerFromPem(
    std::string_view cert_pem, const core::SecureBytes& key_pem) {
  WARD_ASSIGN_OR_RETURN(SslCtxPtr ctx, NewServerContext(/*stateful=*/false));
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
