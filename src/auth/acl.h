#pragma once

#include <string_view>

#include "auth/token_store.h"

namespace ward::auth {

// The capabilities of Vault's ACL policy language.
enum class Capability { kCreate, kRead, kUpdate, kPatch, kDelete, kList, kSudo };

// The lowercase name Vault uses for `capability` ("create", "read", ..., "sudo").
std::string_view CapabilityName(Capability capability);

// Whether `entry` may perform `capability` on `path` (a request path without a leading '/' and
// without "v1/", e.g. "auth/token/lookup-self").
//
// A stop-gap authoriser until the ACL policy language lands: the "root" policy allows
// everything; the "default" policy allows exactly
//   auth/token/lookup-self    read, update
//   auth/token/renew-self     update
//   auth/token/revoke-self    update
//   sys/capabilities-self     update
//   sys/internal/ui/mounts/*  read   (any path under that prefix)
// and every other policy name grants nothing. Pure function; thread-safe.
bool Allowed(const TokenEntry& entry, std::string_view path, Capability capability);

}  // namespace ward::auth
