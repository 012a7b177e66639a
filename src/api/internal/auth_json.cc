#include "api/internal/auth_json.h"

#include "api/internal/json.h"

namespace ward::api::internal {

boost::json::object AuthJson(std::string_view token, const auth::TokenEntry& e, absl::Time now) {
  json::array policies = StringsToJson(e.policies);
  json::value metadata = e.meta.empty() ? json::value(nullptr) : StringMapToJson(e.meta);
  return json::object{{"client_token", json::string_view(token.data(), token.size())},
                      {"accessor", e.accessor},
                      {"policies", policies},
                      {"token_policies", policies},
                      {"metadata", metadata},
                      {"lease_duration", absl::ToInt64Seconds(e.RemainingTtl(now))},
                      {"renewable", e.renewable},
                      {"entity_id", ""},
                      {"token_type", e.type},
                      {"orphan", e.orphan},
                      {"mfa_requirement", nullptr},
                      {"num_uses", e.num_uses}};
}

}  // namespace ward::api::internal
