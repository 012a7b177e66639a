#include "audit/keys.h"

#include <openssl/evp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/hmac.h"

namespace ward::audit {

struct Hasher::Memo {
  struct Entry {
    std::string text;
    // The identity's owner, if any. Weak: remembering must not keep a version's ciphertext
    // alive; it keeps the control block alive, so no other object can share it meanwhile.
    std::weak_ptr<const void> owner;
  };
  using Map = absl::flat_hash_map<std::string, Entry>;

  // The entry for `key` in `map` that may answer for `identity`, or null.
  static const Entry* Find(const Map& map, std::string_view key,
                           const std::shared_ptr<const void>& identity) {
    auto it = map.find(core::ToAbsl(key));
    if (it == map.end()) return nullptr;
    const std::weak_ptr<const void>& owner = it->second.owner;
    if (identity != nullptr && (owner.owner_before(identity) || identity.owner_before(owner))) {
      return nullptr;  // another object at the same address
    }
    return &it->second;
  }

  mutable absl::Mutex mu;
  // Two generations: entries are added to `newer`; when it is full it becomes `older` and the
  // previous `older` is forgotten. An entry found in `older` is added to `newer` again, so what
  // is in use survives.
  Map newer ABSL_GUARDED_BY(mu);
  Map older ABSL_GUARDED_BY(mu);
  size_t newer_bytes ABSL_GUARDED_BY(mu) = 0;  // keys and texts
};

Hasher::Hasher(const core::SecureBytes& salt)
    : key_(crypto::HmacSha256Key::Create(salt)), memo_(std::make_unique<Memo>()) {}
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher::~Hasher() = default;

bool Hasher::AppendRemembered(std::string_view key, std::string& out,
                              const std::shared_ptr<const void>& identity) const {
  std::string renewed;  // an older entry's text, to remember in the newer generation
  {
    absl::ReaderMutexLock lock(&memo_->mu);
    if (const Memo::Entry* e = Memo::Find(memo_->newer, key, identity)) {
      out.append(e->text);
      return true;
    }
    const Memo::Entry* e = Memo::Find(memo_->older, key, identity);
    if (e == nullptr) return false;
    out.append(e->text);
    renewed = e->text;
  }
  Remember(std::string(key), std::move(renewed), identity);
  return true;
}

void Hasher::Remember(std::string key, std::string text,
                      const std::shared_ptr<const void>& identity) const {
  const size_t size = key.size() + text.size();
  if (size > kMemoMaxEntryBytes) return;
  Memo::Entry entry{std::move(text), identity};
  Memo::Map forgotten;  // freed outside the lock
  absl::MutexLock lock(&memo_->mu);
  auto it = memo_->newer.find(key);
  if (it != memo_->newer.end()) {
    memo_->newer_bytes -= it->first.size() + it->second.text.size();
    memo_->newer.erase(it);
  }
  if (memo_->newer.size() >= kMemoCapacity / 2 ||
      memo_->newer_bytes + size > kMemoMaxBytes / 2) {
    forgotten.swap(memo_->older);
    memo_->older.swap(memo_->newer);
    memo_->newer_bytes = 0;
  }
  memo_->newer_bytes += size;
  memo_->newer.insert_or_assign(std::move(key), std::move(entry));
}

size_t Hasher::RememberedForTest() const {
  absl::ReaderMutexLock lock(&memo_->mu);
  size_t n = memo_->newer.size();
  for (const auto& [key, entry] : memo_->older) n += memo_->newer.contains(key) ? 0 : 1;
  return n;
}

absl::StatusOr<std::string> Hasher::Hash(std::string_view value) const {
  if (!key_.ok()) return key_.status();
  WARD_ASSIGN_OR_RETURN(std::string mac, key_->Mac(value));
  std::string out;
  out.reserve(kHashPrefix.size() + 2 * mac.size());
  out.append(kHashPrefix);
  out.append(crypto::HexEncode(mac));
  return out;
}

absl::StatusOr<CheckpointSigner> CheckpointSigner::Create(const core::SecureBytes& seed) {
  if (seed.size() != 32) return absl::InvalidArgumentError("checkpoint key must be 32 bytes");
  crypto::EvpPkeyPtr key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (key == nullptr) {
    return absl::InternalError(absl::StrCat("ed25519 key: ", crypto::LastOpenSslError()));
  }
  std::string pub(32, '\0');
  size_t pub_len = pub.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pub.data()),
                                  &pub_len) != 1 ||
      pub_len != 32) {
    return absl::InternalError(absl::StrCat("ed25519 public key: ", crypto::LastOpenSslError()));
  }
  return CheckpointSigner(std::move(key), crypto::HexEncode(pub));
}

absl::StatusOr<std::string> CheckpointSigner::Sign(std::string_view message) const {
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return absl::InternalError(absl::StrCat("ed25519 sign: ", crypto::LastOpenSslError()));
  }
  std::string sig(64, '\0');
  size_t sig_len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      sig_len != 64) {
    return absl::InternalError(absl::StrCat("ed25519 sign: ", crypto::LastOpenSslError()));
  }
  return crypto::HexEncode(sig);
}

absl::StatusOr<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return absl::InvalidArgumentError("hex string has odd length");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("not a hex string");
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

absl::StatusOr<bool> VerifyCheckpointSignature(std::string_view public_key_hex,
                                               std::string_view message,
                                               std::string_view signature_hex) {
  WARD_ASSIGN_OR_RETURN(std::string pub, HexDecode(public_key_hex));
  if (pub.size() != 32) return absl::InvalidArgumentError("public key must be 32 bytes of hex");
  absl::StatusOr<std::string> sig = HexDecode(signature_hex);
  if (!sig.ok() || sig->size() != 64) return false;  // a mangled signature simply fails
  crypto::EvpPkeyPtr key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(pub.data()), pub.size()));
  if (key == nullptr) return absl::InvalidArgumentError("not an Ed25519 public key");
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return absl::InternalError(absl::StrCat("ed25519 verify: ", crypto::LastOpenSslError()));
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                          sig->size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

}  // namespace ward::audit
