#pragma once

// Shared by the login routes of every auth method (auth_routes.cc, cert_routes.cc).

#include <optional>
#include <string>

#include "api/core.h"
#include "auth/auth_mounts.h"
#include "auth/token_store.h"
#include "net/http.h"

namespace ward::api::internal {

// Closes the race between a login and the disabling of its auth mount (docs/approle.md):
// disabling revokes the mount's tokens, but a login that passed its credential check just
// before may create its token after that sweep. Call right after creating the token: if
// `mount` (matched at the start of the login) is no longer in the table, or the path now
// holds another mount, the token is revoked, `issued.token` zeroed, and the 404 a login to an
// unmounted path gets is returned; otherwise nullopt. A failed revocation is logged (the token
// was never sent, so nobody can use it).
std::optional<net::HttpResponse> RevokeIfUnmounted(const UnsealedState& state,
                                                   const auth::AuthMountEntry& mount,
                                                   auth::IssuedToken& issued,
                                                   const std::string& request_path);

}  // namespace ward::api::internal
