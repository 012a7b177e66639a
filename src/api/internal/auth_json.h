#pragma once

// The Vault "auth" object that every route issuing a token returns. Private to src/api.

#include <boost/json.hpp>
#include <string_view>

#include "absl/time/time.h"
#include "auth/token_store.h"

namespace ward::api::internal {

// Vault's HTTPAuth object for a freshly issued or renewed token: client_token, accessor, policies,
// token_policies, metadata (null when empty), lease_duration (seconds left at `now`), renewable,
// entity_id, token_type, orphan, mfa_requirement, num_uses.
boost::json::object AuthJson(std::string_view token, const auth::TokenEntry& e, absl::Time now);

}  // namespace ward::api::internal
