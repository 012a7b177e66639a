#include "auth/policy_store.h"

#include <algorithm>

#include <boost/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace ward::auth {

// Vault's default policy, verbatim. Rules naming identity templates ("{{...}}") never match in
// Ward (there is no identity store), and rules for routes Ward does not have yet are harmless.
const std::string_view kDefaultPolicyText = R"(# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}


# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow checking the status of a Control Group request if the user has the
# accessor
path "sys/control-group/request" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
)";

namespace {

constexpr size_t kListPageSize = 256;

std::string Record(std::string_view name, std::string_view text) {
  return boost::json::serialize(boost::json::object{
      {"name", boost::json::string_view(name.data(), name.size())},
      {"policy", boost::json::string_view(text.data(), text.size())}});
}

absl::StatusOr<StoredPolicy> ParseRecord(std::string_view key, std::string_view value) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(boost::json::string_view(value.data(), value.size()), ec);
  if (ec || !v.is_object()) {
    return absl::DataLossError(absl::StrCat("malformed policy record at ", core::ToAbsl(key)));
  }
  const boost::json::object& o = v.get_object();
  const boost::json::value* name = o.if_contains("name");
  const boost::json::value* text = o.if_contains("policy");
  if (name == nullptr || !name->is_string() || text == nullptr || !text->is_string()) {
    return absl::DataLossError(absl::StrCat("malformed policy record at ", core::ToAbsl(key)));
  }
  return StoredPolicy{std::string(name->get_string()), std::string(text->get_string())};
}

}  // namespace

PolicyStore::PolicyStore(barrier::Barrier& barrier) : barrier_(barrier) {
  snapshot_.store(std::make_shared<const PolicySet>());
}

std::string PolicyStore::NormaliseName(std::string_view name) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(core::ToAbsl(name)));
}

absl::StatusOr<std::unique_ptr<PolicyStore>> PolicyStore::Create(barrier::Barrier& barrier) {
  std::unique_ptr<PolicyStore> store(new PolicyStore(barrier));
  auto set = std::make_shared<PolicySet>();
  std::string after;
  while (true) {
    WARD_ASSIGN_OR_RETURN(storage::ListPage page,
                          barrier.List(kPolicyStoragePrefix, after, kListPageSize));
    for (const std::string& key : page.keys) {
      WARD_ASSIGN_OR_RETURN(std::string value, barrier.Get(key));
      WARD_ASSIGN_OR_RETURN(StoredPolicy stored, ParseRecord(key, value));
      auto compiled = CompiledPolicy::Compile(stored.name, std::move(stored.text));
      if (!compiled.ok()) {
        return absl::DataLossError(absl::StrCat("stored policy \"", stored.name,
                                                "\" no longer parses: ", compiled.status().message()));
      }
      set->policies[stored.name] = std::move(*compiled);
    }
    if (!page.more || page.keys.empty()) break;
    after = page.keys.back();
  }
  if (!set->policies.contains("default")) {
    WARD_ASSIGN_OR_RETURN(auto compiled,
                          CompiledPolicy::Compile("default", std::string(kDefaultPolicyText)));
    WARD_RETURN_IF_ERROR(
        barrier.Put(absl::StrCat(core::ToAbsl(kPolicyStoragePrefix), "default"), Record("default", kDefaultPolicyText))
            .status());
    set->policies["default"] = std::move(compiled);
  }
  store->Publish(std::move(set));
  return store;
}

std::shared_ptr<const PolicySet> PolicyStore::Snapshot() const { return snapshot_.load(); }

void PolicyStore::Publish(std::shared_ptr<const PolicySet> set) { snapshot_.store(std::move(set)); }

Acl PolicyStore::AclFor(const std::vector<std::string>& policy_names) const {
  return Acl(Snapshot(), policy_names);
}

absl::StatusOr<StoredPolicy> PolicyStore::Get(std::string_view name) const {
  std::string n = NormaliseName(name);
  if (n == "root") return StoredPolicy{"root", ""};
  std::shared_ptr<const PolicySet> set = Snapshot();
  const CompiledPolicy* p = set->Find(n);
  if (p == nullptr) return absl::NotFoundError(absl::StrCat("no policy named \"", n, "\""));
  return StoredPolicy{p->name(), p->text()};
}

std::vector<std::string> PolicyStore::List() const {
  std::shared_ptr<const PolicySet> set = Snapshot();
  std::vector<std::string> names;
  names.reserve(set->policies.size() + 1);
  for (const auto& [name, policy] : set->policies) names.push_back(name);
  std::sort(names.begin(), names.end());
  names.emplace_back("root");
  return names;
}

absl::Status PolicyStore::Put(std::string_view name, std::string_view text) {
  std::string n = NormaliseName(name);
  if (n.empty()) return absl::InvalidArgumentError("policy name must be provided in the URL");
  if (n.find('/') != std::string::npos) {
    return absl::InvalidArgumentError("policy name must not contain '/'");
  }
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<const CompiledPolicy> compiled,
                        CompiledPolicy::Compile(n, std::string(text)));
  if (n == "root") return absl::InvalidArgumentError("cannot update root policy");
  absl::MutexLock lock(&write_mu_);
  WARD_RETURN_IF_ERROR(
      barrier_.Put(absl::StrCat(core::ToAbsl(kPolicyStoragePrefix), n), Record(n, text)).status());
  auto next = std::make_shared<PolicySet>(*Snapshot());
  next->policies[n] = std::move(compiled);
  Publish(std::move(next));
  return absl::OkStatus();
}

absl::Status PolicyStore::Delete(std::string_view name) {
  std::string n = NormaliseName(name);
  if (n == "root") return absl::InvalidArgumentError("cannot delete root policy");
  if (n == "default") return absl::InvalidArgumentError("cannot delete default policy");
  if (n.empty() || n.find('/') != std::string::npos) return absl::OkStatus();
  absl::MutexLock lock(&write_mu_);
  std::shared_ptr<const PolicySet> current = Snapshot();
  if (!current->policies.contains(n)) return absl::OkStatus();
  WARD_RETURN_IF_ERROR(barrier_.Delete(absl::StrCat(core::ToAbsl(kPolicyStoragePrefix), n)).status());
  auto next = std::make_shared<PolicySet>(*current);
  next->policies.erase(n);
  Publish(std::move(next));
  return absl::OkStatus();
}

}  // namespace ward::auth
