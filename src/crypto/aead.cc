#include "crypto/aead.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstdint>
#include <cstring>

#include "crypto/openssl_handles.h"
#include "crypto/random.h"

namespace ward::crypto {
namespace {

// Fetched once: an implicit fetch through EVP_aes_256_gcm() on every call costs a provider
// lookup per message. Never freed (process lifetime).
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

absl::Status CheckKey(const core::SecureBytes& key) {
  if (key.size() != kAeadKeySize) {
    return absl::InvalidArgumentError("AES-256-GCM key must be 32 bytes, got " +
                                      std::to_string(key.size()));
  }
  return absl::OkStatus();
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Decrypts `sealed` into `out`, which must hold sealed.size() - kAeadOverhead bytes. On
// failure `out` may hold unauthenticated plaintext; the caller must zero it.
absl::Status OpenInto(const core::SecureBytes& key, std::string_view sealed, std::string_view aad,
                      uint8_t* out) {
  if (Aes256Gcm() == nullptr) return absl::InternalError("AES-256-GCM unavailable");
  std::string_view nonce = sealed.substr(0, kAeadNonceSize);
  std::string_view ciphertext = sealed.substr(kAeadNonceSize, sealed.size() - kAeadOverhead);
  std::string_view tag = sealed.substr(sealed.size() - kAeadTagSize);

  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return absl::InternalError("EVP_CIPHER_CTX_new: " + LastOpenSslError());
  if (EVP_DecryptInit_ex2(ctx.get(), Aes256Gcm(), key.data(), Bytes(nonce), nullptr) != 1) {
    return absl::InternalError("AES-GCM decrypt init: " + LastOpenSslError());
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    return absl::InternalError("AES-GCM aad: " + LastOpenSslError());
  }
  if (!ciphertext.empty() && EVP_DecryptUpdate(ctx.get(), out, &len, Bytes(ciphertext),
                                               static_cast<int>(ciphertext.size())) != 1) {
    return absl::InternalError("AES-GCM decrypt: " + LastOpenSslError());
  }
  // The tag parameter is read-only for decryption; OpenSSL's signature just lacks const.
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAeadTagSize),
                          const_cast<char*>(tag.data())) != 1) {
    return absl::InternalError("AES-GCM set tag: " + LastOpenSslError());
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), out + ciphertext.size(), &final_len) != 1) {
    ERR_clear_error();
    return absl::DataLossError("AES-GCM authentication failed");
  }
  return absl::OkStatus();
}

absl::Status CheckOpenArgs(const core::SecureBytes& key, std::string_view sealed) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (sealed.size() < kAeadOverhead) {
    return absl::InvalidArgumentError("sealed message is " + std::to_string(sealed.size()) +
                                      " bytes, shorter than nonce and tag");
  }
  if (sealed.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("message too large for AES-GCM");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> AeadSeal(const core::SecureBytes& key, std::string_view plaintext,
                                     std::string_view aad, std::string_view prefix) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (Aes256Gcm() == nullptr) return absl::InternalError("AES-256-GCM unavailable");
  if (plaintext.size() + prefix.size() > static_cast<size_t>(INT32_MAX) - kAeadOverhead ||
      aad.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("message too large for AES-GCM");
  }
  std::string out(prefix.size() + kAeadNonceSize + plaintext.size() + kAeadTagSize, '\0');
  if (!prefix.empty()) std::memcpy(out.data(), prefix.data(), prefix.size());
  unsigned char* nonce = reinterpret_cast<unsigned char*>(out.data()) + prefix.size();
  unsigned char* body = nonce + kAeadNonceSize;
  unsigned char* tag = body + plaintext.size();
  {
    absl::StatusOr<core::SecureBytes> random = RandomBytes(kAeadNonceSize);
    if (!random.ok()) return random.status();
    std::memcpy(nonce, random->data(), kAeadNonceSize);
  }

  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return absl::InternalError("EVP_CIPHER_CTX_new: " + LastOpenSslError());
  if (EVP_EncryptInit_ex2(ctx.get(), Aes256Gcm(), key.data(), nonce, nullptr) != 1) {
    return absl::InternalError("AES-GCM encrypt init: " + LastOpenSslError());
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    return absl::InternalError("AES-GCM aad: " + LastOpenSslError());
  }
  if (!plaintext.empty() && EVP_EncryptUpdate(ctx.get(), body, &len, Bytes(plaintext),
                                              static_cast<int>(plaintext.size())) != 1) {
    return absl::InternalError("AES-GCM encrypt: " + LastOpenSslError());
  }
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), body + plaintext.size(), &final_len) != 1) {
    return absl::InternalError("AES-GCM encrypt final: " + LastOpenSslError());
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAeadTagSize), tag) !=
      1) {
    return absl::InternalError("AES-GCM get tag: " + LastOpenSslError());
  }
  return out;
}

absl::StatusOr<std::string> AeadOpen(const core::SecureBytes& key, std::string_view sealed,
                                     std::string_view aad) {
  if (absl::Status s = CheckOpenArgs(key, sealed); !s.ok()) return s;
  std::string out(sealed.size() - kAeadOverhead, '\0');
  if (absl::Status s = OpenInto(key, sealed, aad, reinterpret_cast<uint8_t*>(out.data()));
      !s.ok()) {
    core::SecureZero(out);
    return s;
  }
  return out;
}

absl::StatusOr<core::SecureBytes> AeadOpenSecret(const core::SecureBytes& key,
                                                 std::string_view sealed, std::string_view aad) {
  if (absl::Status s = CheckOpenArgs(key, sealed); !s.ok()) return s;
  core::SecureBytes out(sealed.size() - kAeadOverhead);
  if (absl::Status s = OpenInto(key, sealed, aad, out.data()); !s.ok()) return s;
  return out;
}

}  // namespace ward::crypto
