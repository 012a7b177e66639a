#include "crypto/aead.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
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

// Encrypts `plaintext` on `ctx` with `nonce` into `body` (plaintext.size() bytes) and `tag`
// (kAeadTagSize bytes), authenticating `aad`. `key` is the raw key for a fresh context, or
// null for a context that already holds the keyed state (AeadKey): OpenSSL then keeps the
// cipher, the key schedule and the GHASH table and only resets the message state for the new
// nonce (EVP_EncryptInit_ex2 with a null cipher and key).
absl::Status SealWith(EVP_CIPHER_CTX* ctx, const uint8_t* key, const unsigned char* nonce,
                      std::string_view plaintext, std::string_view aad, unsigned char* body,
                      unsigned char* tag) {
  if (EVP_EncryptInit_ex2(ctx, key == nullptr ? nullptr : Aes256Gcm(), key, nonce, nullptr) != 1) {
    return absl::InternalError("AES-GCM encrypt init: " + LastOpenSslError());
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx, nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    return absl::InternalError("AES-GCM aad: " + LastOpenSslError());
  }
  if (!plaintext.empty() && EVP_EncryptUpdate(ctx, body, &len, Bytes(plaintext),
                                              static_cast<int>(plaintext.size())) != 1) {
    return absl::InternalError("AES-GCM encrypt: " + LastOpenSslError());
  }
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx, body + plaintext.size(), &final_len) != 1) {
    return absl::InternalError("AES-GCM encrypt final: " + LastOpenSslError());
  }
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAeadTagSize), tag) != 1) {
    return absl::InternalError("AES-GCM get tag: " + LastOpenSslError());
  }
  return absl::OkStatus();
}

// Decrypts `sealed` (nonce || ciphertext || tag, at least kAeadOverhead bytes) on `ctx` into
// `out`, which must hold sealed.size() - kAeadOverhead bytes. `key` as for SealWith. On
// failure `out` may hold unauthenticated plaintext; the caller must zero it.
absl::Status OpenWith(EVP_CIPHER_CTX* ctx, const uint8_t* key, std::string_view sealed,
                      std::string_view aad, uint8_t* out) {
  std::string_view nonce = sealed.substr(0, kAeadNonceSize);
  std::string_view ciphertext = sealed.substr(kAeadNonceSize, sealed.size() - kAeadOverhead);
  std::string_view tag = sealed.substr(sealed.size() - kAeadTagSize);

  if (EVP_DecryptInit_ex2(ctx, key == nullptr ? nullptr : Aes256Gcm(), key, Bytes(nonce),
                          nullptr) != 1) {
    return absl::InternalError("AES-GCM decrypt init: " + LastOpenSslError());
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx, nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    return absl::InternalError("AES-GCM aad: " + LastOpenSslError());
  }
  if (!ciphertext.empty() && EVP_DecryptUpdate(ctx, out, &len, Bytes(ciphertext),
                                               static_cast<int>(ciphertext.size())) != 1) {
    return absl::InternalError("AES-GCM decrypt: " + LastOpenSslError());
  }
  // The tag parameter is read-only for decryption; OpenSSL's signature just lacks const.
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAeadTagSize),
                          const_cast<char*>(tag.data())) != 1) {
    return absl::InternalError("AES-GCM set tag: " + LastOpenSslError());
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx, out + ciphertext.size(), &final_len) != 1) {
    ERR_clear_error();
    return absl::DataLossError("AES-GCM authentication failed");
  }
  return absl::OkStatus();
}

// Lays out prefix || nonce || ciphertext || tag around a fresh random nonce and runs `seal`
// (nonce, body, tag) -> absl::Status to fill in the ciphertext and tag.
template <typename SealFn>
absl::StatusOr<std::string> SealMessage(std::string_view plaintext, std::string_view aad,
                                        std::string_view prefix, SealFn seal) {
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
  if (absl::Status s = seal(nonce, body, tag); !s.ok()) return s;
  return out;
}

absl::Status CheckSealed(std::string_view sealed) {
  if (sealed.size() < kAeadOverhead) {
    return absl::InvalidArgumentError("sealed message is " + std::to_string(sealed.size()) +
                                      " bytes, shorter than nonce and tag");
  }
  if (sealed.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("message too large for AES-GCM");
  }
  if (Aes256Gcm() == nullptr) return absl::InternalError("AES-256-GCM unavailable");
  return absl::OkStatus();
}

// Zero-filled output buffers for OpenMessage.
template <typename Out>
Out Buffer(size_t size);
template <>
std::string Buffer<std::string>(size_t size) {
  return std::string(size, '\0');
}
template <>
core::SecureBytes Buffer<core::SecureBytes>(size_t size) {
  return core::SecureBytes(size);
}

// Opens `sealed` into a fresh Out (std::string or core::SecureBytes) with `open`
// (out) -> absl::Status; zeroes the output if `open` fails.
template <typename Out, typename OpenFn>
absl::StatusOr<Out> OpenMessage(std::string_view sealed, OpenFn open) {
  if (absl::Status s = CheckSealed(sealed); !s.ok()) return s;
  Out out = Buffer<Out>(sealed.size() - kAeadOverhead);
  if (absl::Status s = open(reinterpret_cast<uint8_t*>(out.data())); !s.ok()) {
    core::SecureZero(out.data(), out.size());
    return s;
  }
  return out;
}

// A fresh context per call, keyed from the raw key (the free functions).
absl::Status OpenFresh(const core::SecureBytes& key, std::string_view sealed, std::string_view aad,
                       uint8_t* out) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return absl::InternalError("EVP_CIPHER_CTX_new: " + LastOpenSslError());
  return OpenWith(ctx.get(), key.data(), sealed, aad, out);
}

// Enough for every thread that seals or opens at once under one key; more are freed after use.
constexpr size_t kIdleContexts = 64;

}  // namespace

absl::StatusOr<std::string> AeadSeal(const core::SecureBytes& key, std::string_view plaintext,
                                     std::string_view aad, std::string_view prefix) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  return SealMessage(plaintext, aad, prefix,
                     [&](const unsigned char* nonce, unsigned char* body, unsigned char* tag) {
                       EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
                       if (ctx == nullptr) {
                         return absl::InternalError("EVP_CIPHER_CTX_new: " + LastOpenSslError());
                       }
                       return SealWith(ctx.get(), key.data(), nonce, plaintext, aad, body, tag);
                     });
}

absl::StatusOr<std::string> AeadOpen(const core::SecureBytes& key, std::string_view sealed,
                                     std::string_view aad) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  return OpenMessage<std::string>(sealed,
                                  [&](uint8_t* out) { return OpenFresh(key, sealed, aad, out); });
}

absl::StatusOr<core::SecureBytes> AeadOpenSecret(const core::SecureBytes& key,
                                                 std::string_view sealed, std::string_view aad) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  return OpenMessage<core::SecureBytes>(
      sealed, [&](uint8_t* out) { return OpenFresh(key, sealed, aad, out); });
}

struct AeadKey::Prepared {
  // Keyed (cipher, key schedule, GHASH table), no nonce; never used for a message, only copied
  // when no idle context is left.
  EvpCipherCtxPtr keyed;
  // Contexts copied from `keyed` and finished with after a successful operation; each keeps
  // the keyed state, and the next operation only sets its nonce (and direction). Freed with
  // the key, so no copy of the key schedule outlives it.
  mutable absl::Mutex mu;
  mutable std::vector<EvpCipherCtxPtr> idle ABSL_GUARDED_BY(mu);

  // Runs `op` (EVP_CIPHER_CTX*) -> absl::Status on a keyed context: an idle one, or a new copy
  // of `keyed`. The context goes back to the pool only if `op` succeeded: after a failure
  // (tag mismatch, OpenSSL error) it is freed rather than trusted to be in a reusable state.
  template <typename Op>
  absl::Status WithContext(Op op) const {
    EvpCipherCtxPtr ctx;
    {
      absl::MutexLock lock(&mu);
      if (!idle.empty()) {
        ctx = std::move(idle.back());
        idle.pop_back();
      }
    }
    if (ctx == nullptr) {
      ctx.reset(EVP_CIPHER_CTX_new());
      if (ctx == nullptr || EVP_CIPHER_CTX_copy(ctx.get(), keyed.get()) != 1) {
        return absl::InternalError("AES-GCM context copy: " + LastOpenSslError());
      }
    }
    absl::Status status = op(ctx.get());
    if (!status.ok()) return status;
    absl::MutexLock lock(&mu);
    if (idle.size() < kIdleContexts) idle.push_back(std::move(ctx));
    return status;
  }
};

absl::StatusOr<AeadKey> AeadKey::Create(const core::SecureBytes& key) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (Aes256Gcm() == nullptr) return absl::InternalError("AES-256-GCM unavailable");
  auto prepared = std::make_shared<Prepared>();
  prepared->keyed.reset(EVP_CIPHER_CTX_new());
  // The direction does not matter: GCM uses the forward AES key schedule both ways, and every
  // use sets its direction when it sets the nonce.
  if (prepared->keyed == nullptr ||
      EVP_EncryptInit_ex2(prepared->keyed.get(), Aes256Gcm(), key.data(), nullptr, nullptr) != 1) {
    return absl::InternalError("AES-GCM key setup: " + LastOpenSslError());
  }
  return AeadKey(std::move(prepared));
}

absl::StatusOr<std::string> AeadKey::Seal(std::string_view plaintext, std::string_view aad,
                                          std::string_view prefix) const {
  return SealMessage(plaintext, aad, prefix,
                     [&](const unsigned char* nonce, unsigned char* body, unsigned char* tag) {
                       return prepared_->WithContext([&](EVP_CIPHER_CTX* ctx) {
                         return SealWith(ctx, nullptr, nonce, plaintext, aad, body, tag);
                       });
                     });
}

absl::StatusOr<std::string> AeadKey::Open(std::string_view sealed, std::string_view aad) const {
  return OpenMessage<std::string>(sealed, [&](uint8_t* out) {
    return prepared_->WithContext(
        [&](EVP_CIPHER_CTX* ctx) { return OpenWith(ctx, nullptr, sealed, aad, out); });
  });
}

absl::StatusOr<core::SecureBytes> AeadKey::OpenSecret(std::string_view sealed,
                                                      std::string_view aad) const {
  return OpenMessage<core::SecureBytes>(sealed, [&](uint8_t* out) {
    return prepared_->WithContext(
        [&](EVP_CIPHER_CTX* ctx) { return OpenWith(ctx, nullptr, sealed, aad, out); });
  });
}

size_t AeadKey::IdleContexts() const {
  absl::MutexLock lock(&prepared_->mu);
  return prepared_->idle.size();
}

}  // namespace ward::crypto
