#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/secure_bytes.h"
#include "crypto/openssl_handles.h"

namespace ward::crypto {

// HMAC-SHA256 of `data` under `key`; returns the 32-byte MAC. Thread-safe.
// Errors: kInternal if OpenSSL fails.
absl::StatusOr<std::string> HmacSha256(const core::SecureBytes& key, std::string_view data);

// An HMAC-SHA256 key prepared once (algorithm fetched, key absorbed), for MACing many values
// under the same key: each Mac starts from the prepared state instead of setting the key up
// again, which is most of the cost of a short HmacSha256 call, and reuses contexts finished
// with by earlier calls (kept with the key, freed with it). Copies share the prepared state;
// thread-safe.
class HmacSha256Key {
 public:
  // Errors: kInternal if OpenSSL fails.
  static absl::StatusOr<HmacSha256Key> Create(const core::SecureBytes& key);

  // HMAC-SHA256 of `data`: the same 32 bytes as HmacSha256(key, data).
  // Errors: kInternal if OpenSSL fails.
  absl::StatusOr<std::string> Mac(std::string_view data) const;

 private:
  struct Prepared;
  explicit HmacSha256Key(std::shared_ptr<const Prepared> prepared)
      : prepared_(std::move(prepared)) {}
  std::shared_ptr<const Prepared> prepared_;
};

// SHA-256 of `data`; returns the 32-byte digest.
std::string Sha256(std::string_view data);

// SHA-256 of data that arrives in pieces: Sha256Stream s; s.Update(a); s.Update(b); s.Final()
// is Sha256(a + b). A copy carries on independently from the state it copied, so a common
// prefix can be hashed once and finished in several ways. Uses the algorithm Sha256 fetched
// once (no per-object fetch). OpenSSL fails here only when it cannot allocate memory, which
// aborts the process, as running out of memory anywhere else does.
//
// Not thread-safe (one object, one thread at a time); movable and copyable (a moved-from
// stream may only be assigned to or destroyed).
class Sha256Stream {
 public:
  Sha256Stream();
  Sha256Stream(const Sha256Stream& other);
  Sha256Stream& operator=(const Sha256Stream& other);
  Sha256Stream(Sha256Stream&&) noexcept = default;
  Sha256Stream& operator=(Sha256Stream&&) noexcept = default;
  ~Sha256Stream() = default;

  // Absorbs `data`. REQUIRES: Final has not been called.
  void Update(std::string_view data);

  // Returns the 32-byte digest of everything absorbed. Call once: the stream is spent after it
  // (copy it first to go on from the same state).
  std::string Final();

 private:
  EvpMdCtxPtr ctx_;  // null only in a moved-from stream
};

// Lower-case hex encoding.
std::string HexEncode(std::string_view bytes);

// Compares two byte strings in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace ward::crypto
