#include "crypto/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace ward::crypto {

absl::StatusOr<std::string> HmacSha256(const core::SecureBytes& key, std::string_view data) {
  // Fetching the algorithm by name is the expensive part of a one-shot HMAC in OpenSSL 3, and
  // tokens are hashed on every request: fetch once, keep it for the process.
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return absl::InternalError("HMAC unavailable: " + LastOpenSslError());
  EvpMacCtxPtr ctx(EVP_MAC_CTX_new(mac));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_construct_end()};
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t out_len = 0;
  if (ctx == nullptr || EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out, &out_len, sizeof(out)) != 1) {
    return absl::InternalError("HMAC-SHA256 failed: " + LastOpenSslError());
  }
  return std::string(reinterpret_cast<char*>(out), out_len);
}

struct HmacSha256Key::Prepared {
  EvpMacCtxPtr ctx;  // keyed; never updated, only duplicated
  // Contexts duplicated from `ctx` and finished with: each is re-initialised to the keyed state
  // (EVP_MAC_init without a key) for its next use, which allocates nothing, where a fresh
  // duplicate allocates a dozen objects. Freed with the key, so no copy of it outlives it.
  mutable absl::Mutex mu;
  mutable std::vector<EvpMacCtxPtr> idle ABSL_GUARDED_BY(mu);
};

namespace {
// Enough for every thread that MACs at once; more are freed after use.
constexpr size_t kIdleContexts = 64;
}  // namespace

absl::StatusOr<HmacSha256Key> HmacSha256Key::Create(const core::SecureBytes& key) {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return absl::InternalError("HMAC unavailable: " + LastOpenSslError());
  auto prepared = std::make_shared<Prepared>();
  prepared->ctx.reset(EVP_MAC_CTX_new(mac));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_construct_end()};
  if (prepared->ctx == nullptr ||
      EVP_MAC_init(prepared->ctx.get(), key.data(), key.size(), params) != 1) {
    return absl::InternalError("HMAC-SHA256 key setup failed: " + LastOpenSslError());
  }
  return HmacSha256Key(std::move(prepared));
}

absl::StatusOr<std::string> HmacSha256Key::Mac(std::string_view data) const {
  EvpMacCtxPtr ctx;
  {
    absl::MutexLock lock(&prepared_->mu);
    if (!prepared_->idle.empty()) {
      ctx = std::move(prepared_->idle.back());
      prepared_->idle.pop_back();
    }
  }
  if (ctx == nullptr) {
    ctx.reset(EVP_MAC_CTX_dup(prepared_->ctx.get()));  // keyed, ready for data
  } else if (EVP_MAC_init(ctx.get(), nullptr, 0, nullptr) != 1) {  // back to the keyed state
    ctx.reset();
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t out_len = 0;
  if (ctx == nullptr ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out, &out_len, sizeof(out)) != 1) {
    return absl::InternalError("HMAC-SHA256 failed: " + LastOpenSslError());
  }
  std::string mac(reinterpret_cast<char*>(out), out_len);
  OPENSSL_cleanse(out, sizeof(out));
  absl::MutexLock lock(&prepared_->mu);
  if (prepared_->idle.size() < kIdleContexts) prepared_->idle.push_back(std::move(ctx));
  return mac;
}

namespace {

// SHA-256, fetched once for the process. The one-shot SHA256() fetches the algorithm on every
// call (OpenSSL 3), and the audit chain hashes every line it writes.
const EVP_MD* Sha256Md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// OpenSSL could not allocate memory for a digest context.
[[noreturn]] void Sha256Failed(const char* what) {
  std::fprintf(stderr, "fatal: SHA-256 %s failed: %s\n", what, LastOpenSslError().c_str());
  std::abort();
}

}  // namespace

std::string Sha256(std::string_view data) {
  const EVP_MD* const md = Sha256Md();
  unsigned char out[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1 ||
      len != sizeof(out)) {
    // Out of memory inside OpenSSL: fall back to the one-shot call, which fails only likewise.
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  }
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  const EVP_MD* const md = Sha256Md();
  if (md == nullptr || ctx_ == nullptr || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1) {
    Sha256Failed("init");
  }
}

Sha256Stream::Sha256Stream(const Sha256Stream& other) : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_MD_CTX_copy_ex(ctx_.get(), other.ctx_.get()) != 1) {
    Sha256Failed("copy");
  }
}

Sha256Stream& Sha256Stream::operator=(const Sha256Stream& other) {
  if (this != &other) {
    if (ctx_ == nullptr) ctx_.reset(EVP_MD_CTX_new());
    // Reuses this stream's context object (the digest state itself is duplicated).
    if (ctx_ == nullptr || EVP_MD_CTX_copy_ex(ctx_.get(), other.ctx_.get()) != 1) {
      Sha256Failed("copy");
    }
  }
  return *this;
}

void Sha256Stream::Update(std::string_view data) {
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) Sha256Failed("update");
}

std::string Sha256Stream::Final() {
  unsigned char out[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), out, &len) != 1 || len != sizeof(out)) {
    Sha256Failed("final");
  }
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  char* o = out.data();
  for (unsigned char c : bytes) {
    *o++ = kHex[c >> 4];
    *o++ = kHex[c & 0xf];
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace ward::crypto
