#pragma once

// The barrier's keyring and its JSON form (docs/storage-format.md, "Keyring"). Private to the
// barrier module.

#include <cstdint>
#include <map>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/secure_bytes.h"

namespace ward::barrier::internal {

// One data key.
struct KeyringTerm {
  core::SecureBytes key;  // 32-byte AES-256-GCM key
  absl::Time install_time;
};

// Every data key ever installed, by term number, and which one encrypts new values.
// A value type; not thread-safe (the barrier guards its copy with its mutex).
struct Keyring {
  uint32_t active_term = 0;  // 0 only in an empty keyring
  std::map<uint32_t, KeyringTerm> terms;

  // Returns the term's entry, or nullptr if the keyring does not hold it.
  const KeyringTerm* Find(uint32_t term) const;
  // A deep copy (SecureBytes are move-only).
  Keyring Copy() const;
};

// The keyring as JSON text. The text holds the keys (base64), so it is returned in a buffer
// that zeroes itself. Never fails for a keyring whose keys are 32 bytes.
core::SecureBytes EncodeKeyring(const Keyring& keyring);

// Parses EncodeKeyring's output. Temporary buffers that held key material are zeroed.
// Errors: kDataLoss if `json` is not a well-formed version-1 keyring: bad JSON, a term of 0
// or above 2^32-1, a duplicated term, a key that is not 32 bytes of base64, an unparsable
// install time, or an active term missing from the terms.
absl::StatusOr<Keyring> DecodeKeyring(std::string_view json);

}  // namespace ward::barrier::internal
