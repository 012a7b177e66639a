#include "crypto/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "crypto/openssl_handles.h"

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

std::string Sha256(std::string_view data) {
  // The one-shot SHA256() fetches the algorithm on every call (OpenSSL 3): fetch it once. The
  // audit chain hashes every line it writes.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char out[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1 ||
      len != sizeof(out)) {
    // Out of memory inside OpenSSL: fall back to the one-shot call, which fails only likewise.
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
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
