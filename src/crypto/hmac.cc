#include "crypto/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>

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
};

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
  EvpMacCtxPtr ctx(EVP_MAC_CTX_dup(prepared_->ctx.get()));
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t out_len = 0;
  if (ctx == nullptr ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out, &out_len, sizeof(out)) != 1) {
    return absl::InternalError("HMAC-SHA256 failed: " + LastOpenSslError());
  }
  return std::string(reinterpret_cast<char*>(out), out_len);
}

std::string Sha256(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
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
