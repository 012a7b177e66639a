#include "auth/approle.h"

#include <algorithm>
#include <boost/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "auth/approle_cidr.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/hmac.h"
#include "crypto/random.h"

namespace ward::auth {
namespace {

namespace json = boost::json;

constexpr std::string_view kKeyName = "hmac-key";
constexpr std::string_view kRolePrefix = "role/";
constexpr std::string_view kSecretIdPrefix = "secret-id/";
constexpr size_t kKeySize = 32;
constexpr size_t kListPageSize = 1000;
constexpr int64_t kFormatVersion = 1;
constexpr std::string_view kInvalidCredentials = "invalid role or secret ID";

absl::Status InvalidCredentials() {
  return absl::InvalidArgumentError(std::string(kInvalidCredentials));
}

// Vault's role name rule: word characters, with '-', '.' and '@' allowed inside.
bool ValidRoleName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool inner = i > 0 && i + 1 < name.size();
    if (!word(c) && !(inner && (c == '-' || c == '.' || c == '@'))) return false;
  }
  return true;
}

json::array ToJson(const std::vector<std::string>& v) {
  json::array a;
  for (const std::string& s : v) a.emplace_back(s);
  return a;
}

json::object ToJson(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

int64_t Nanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

json::value TimeJson(absl::Time t) {
  if (t == absl::InfiniteFuture()) return nullptr;
  return absl::ToUnixNanos(t);
}

// Strict readers for stored JSON; each returns false if the field is missing or mistyped.
bool Read(const json::object& o, std::string_view k, std::string& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_string()) return false;
  out = std::string(v->get_string());
  return true;
}
bool Read(const json::object& o, std::string_view k, int64_t& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_int64()) return false;
  out = v->get_int64();
  return true;
}
bool Read(const json::object& o, std::string_view k, bool& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_bool()) return false;
  out = v->get_bool();
  return true;
}
bool Read(const json::object& o, std::string_view k, absl::Duration& out) {
  int64_t ns = 0;
  if (!Read(o, k, ns)) return false;
  out = absl::Nanoseconds(ns);
  return true;
}
bool Read(const json::object& o, std::string_view k, std::vector<std::string>& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_array()) return false;
  out.clear();
  for (const json::value& s : v->get_array()) {
    if (!s.is_string()) return false;
    out.emplace_back(s.get_string());
  }
  return true;
}
bool Read(const json::object& o, std::string_view k, std::map<std::string, std::string>& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_object()) return false;
  out.clear();
  for (const auto& kv : v->get_object()) {
    if (!kv.value().is_string()) return false;
    out.emplace(std::string(kv.key()), std::string(kv.value().get_string()));
  }
  return true;
}
bool ReadTime(const json::object& o, std::string_view k, absl::Time& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr) return false;
  if (v->is_null()) {
    out = absl::InfiniteFuture();
    return true;
  }
  if (!v->is_int64()) return false;
  out = absl::FromUnixNanos(v->get_int64());
  return true;
}

std::string SerializeRole(const AppRole& r) {
  json::object o{{"version", kFormatVersion},
                 {"name", r.name},
                 {"role_id", r.role_id},
                 {"bind_secret_id", r.bind_secret_id},
                 {"secret_id_bound_cidrs", ToJson(r.secret_id_bound_cidrs)},
                 {"token_bound_cidrs", ToJson(r.token_bound_cidrs)},
                 {"secret_id_num_uses", r.secret_id_num_uses},
                 {"secret_id_ttl_ns", Nanos(r.secret_id_ttl)},
                 {"token_policies", ToJson(r.token_policies)},
                 {"token_ttl_ns", Nanos(r.token_ttl)},
                 {"token_max_ttl_ns", Nanos(r.token_max_ttl)},
                 {"token_explicit_max_ttl_ns", Nanos(r.token_explicit_max_ttl)},
                 {"token_num_uses", r.token_num_uses},
                 {"token_type", r.token_type},
                 {"token_no_default_policy", r.token_no_default_policy}};
  return json::serialize(o);
}

absl::StatusOr<AppRole> ParseRole(std::string_view text) {
  json::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return absl::DataLossError("malformed approle role in storage");
  const json::object& o = root.get_object();
  AppRole r;
  int64_t version = 0;
  if (!Read(o, "version", version) || version != kFormatVersion || !Read(o, "name", r.name) ||
      !Read(o, "role_id", r.role_id) || !Read(o, "bind_secret_id", r.bind_secret_id) ||
      !Read(o, "secret_id_bound_cidrs", r.secret_id_bound_cidrs) ||
      !Read(o, "token_bound_cidrs", r.token_bound_cidrs) ||
      !Read(o, "secret_id_num_uses", r.secret_id_num_uses) ||
      !Read(o, "secret_id_ttl_ns", r.secret_id_ttl) ||
      !Read(o, "token_policies", r.token_policies) || !Read(o, "token_ttl_ns", r.token_ttl) ||
      !Read(o, "token_max_ttl_ns", r.token_max_ttl) ||
      !Read(o, "token_explicit_max_ttl_ns", r.token_explicit_max_ttl) ||
      !Read(o, "token_num_uses", r.token_num_uses) || !Read(o, "token_type", r.token_type) ||
      !Read(o, "token_no_default_policy", r.token_no_default_policy)) {
    return absl::DataLossError("malformed approle role in storage");
  }
  return r;
}

// Checks that every CIDR of `inner` lies inside one of `outer` (no constraint if `outer` is empty).
// Errors: kInvalidArgument for a malformed CIDR or one outside.
absl::Status CheckCidrSubset(const std::vector<std::string>& outer,
                             const std::vector<std::string>& inner, std::string_view what) {
  WARD_ASSIGN_OR_RETURN(std::vector<Cidr> parsed_outer, ParseCidrs(outer));
  WARD_ASSIGN_OR_RETURN(std::vector<Cidr> parsed_inner, ParseCidrs(inner));
  if (parsed_outer.empty()) return absl::OkStatus();
  for (const Cidr& c : parsed_inner) {
    bool covered = std::any_of(parsed_outer.begin(), parsed_outer.end(),
                               [&c](const Cidr& o) { return o.Covers(c); });
    if (!covered) {
      return absl::InvalidArgumentError(
          absl::StrCat("failed to verify the CIDR restrictions set on the ", core::ToAbsl(what),
                       ": ", c.text(), " is outside the role's bindings"));
    }
  }
  return absl::OkStatus();
}

// Whether `address` is inside the (already validated) CIDR list; malformed entries never match.
bool Allowed(const std::vector<std::string>& cidrs, std::string_view address) {
  absl::StatusOr<std::vector<Cidr>> parsed = ParseCidrs(cidrs);
  return parsed.ok() && AddressAllowed(*parsed, address);
}

absl::StatusOr<core::SecureBytes> LoadOrCreateKey(barrier::Barrier& barrier,
                                                  const std::string& path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<std::string> stored = barrier.Get(path);
    if (stored.ok()) {
      core::SecureBytes key(*stored);
      core::SecureZero(*stored);
      if (key.size() != kKeySize) return absl::DataLossError("approle HMAC key has wrong size");
      return key;
    }
    if (!absl::IsNotFound(stored.status())) return stored.status();
    WARD_ASSIGN_OR_RETURN(core::SecureBytes key, crypto::RandomBytes(kKeySize));
    std::vector<storage::Op> ops;
    ops.push_back(storage::Op::Check(path, 0));
    ops.push_back(storage::Op::Put(path, std::string(key.view())));
    absl::StatusOr<uint64_t> committed = barrier.Commit(std::move(ops));
    if (committed.ok()) return key;
    if (!absl::IsAborted(committed.status())) return committed.status();
  }
  return absl::AbortedError("approle HMAC key changed while being created");
}

}  // namespace

AppRoleStore::AppRoleStore(barrier::Barrier& barrier, core::Clock& clock, std::string prefix,
                           core::SecureBytes key)
    : barrier_(barrier), clock_(clock), prefix_(std::move(prefix)), key_(crypto::HmacSha256Key::Create(key)) {}

absl::StatusOr<std::unique_ptr<AppRoleStore>> AppRoleStore::Create(barrier::Barrier& barrier,
                                                                   core::Clock& clock,
                                                                   std::string prefix) {
  WARD_ASSIGN_OR_RETURN(core::SecureBytes key,
                        LoadOrCreateKey(barrier, absl::StrCat(prefix, core::ToAbsl(kKeyName))));
  std::unique_ptr<AppRoleStore> store(
      new AppRoleStore(barrier, clock, std::move(prefix), std::move(key)));
  WARD_RETURN_IF_ERROR(store->Load());
  return store;
}

std::string AppRoleStore::RoleKey(std::string_view name) const {
  return absl::StrCat(prefix_, core::ToAbsl(kRolePrefix), core::ToAbsl(name));
}

std::string AppRoleStore::SecretIdKey(std::string_view hash) const {
  return absl::StrCat(prefix_, core::ToAbsl(kSecretIdPrefix), core::ToAbsl(hash));
}

absl::StatusOr<std::string> AppRoleStore::Hash(std::string_view value) const {
  if (!key_.ok()) return key_.status();
  WARD_ASSIGN_OR_RETURN(std::string mac, key_->Mac(value));
  return crypto::HexEncode(mac);
}

absl::Status AppRoleStore::Load() {
  std::vector<std::string> keys;
  std::string after;
  while (true) {
    WARD_ASSIGN_OR_RETURN(storage::ListPage page, barrier_.List(prefix_, after, kListPageSize));
    for (std::string& k : page.keys) keys.push_back(std::move(k));
    if (!page.more || keys.empty()) break;
    after = keys.back();
  }
  const std::string role_prefix = absl::StrCat(prefix_, core::ToAbsl(kRolePrefix));
  const std::string secret_prefix = absl::StrCat(prefix_, core::ToAbsl(kSecretIdPrefix));
  absl::MutexLock lock(&mu_);
  for (const std::string& key : keys) {
    bool is_role = key.rfind(role_prefix, 0) == 0;
    bool is_secret = key.rfind(secret_prefix, 0) == 0;
    if (!is_role && !is_secret) continue;
    WARD_ASSIGN_OR_RETURN(std::string text, barrier_.Get(key));
    if (is_role) {
      WARD_ASSIGN_OR_RETURN(AppRole role, ParseRole(text));
      WARD_ASSIGN_OR_RETURN(std::string role_id_hash, Hash(role.role_id));
      by_role_id_[role_id_hash] = role.name;
      roles_[role.name] = std::move(role);
      continue;
    }
    json::error_code ec;
    json::value root = json::parse(text, ec);
    auto malformed = [] { return absl::DataLossError("malformed approle secret-id in storage"); };
    if (ec || !root.is_object()) return malformed();
    const json::object& o = root.get_object();
    SecretIdEntry e;
    int64_t version = 0;
    if (!Read(o, "version", version) || version != kFormatVersion || !Read(o, "role", e.role) ||
        !Read(o, "accessor", e.accessor) || !Read(o, "cidr_list", e.cidr_list) ||
        !Read(o, "token_bound_cidrs", e.token_bound_cidrs) || !Read(o, "metadata", e.metadata) ||
        !ReadTime(o, "creation_time_ns", e.creation_time) ||
        !ReadTime(o, "expiration_time_ns", e.expiration_time) ||
        !ReadTime(o, "last_updated_time_ns", e.last_updated_time) || !Read(o, "ttl_ns", e.ttl) ||
        !Read(o, "num_uses", e.num_uses)) {
      return malformed();
    }
    InsertSecretIdLocked(key.substr(secret_prefix.size()), std::move(e));
  }
  return absl::OkStatus();
}

namespace {
std::string SerializeSecretId(const std::string& role, const std::string& accessor,
                              const std::vector<std::string>& cidr_list,
                              const std::vector<std::string>& token_bound_cidrs,
                              const std::map<std::string, std::string>& metadata,
                              absl::Time creation, absl::Time expiration, absl::Time updated,
                              absl::Duration ttl, int64_t num_uses) {
  json::object o{{"version", kFormatVersion},
                 {"role", role},
                 {"accessor", accessor},
                 {"cidr_list", ToJson(cidr_list)},
                 {"token_bound_cidrs", ToJson(token_bound_cidrs)},
                 {"metadata", ToJson(metadata)},
                 {"creation_time_ns", TimeJson(creation)},
                 {"expiration_time_ns", TimeJson(expiration)},
                 {"last_updated_time_ns", TimeJson(updated)},
                 {"ttl_ns", Nanos(ttl)},
                 {"num_uses", num_uses}};
  return json::serialize(o);
}
}  // namespace

void AppRoleStore::InsertSecretIdLocked(const std::string& hash, SecretIdEntry e) {
  by_accessor_[e.accessor] = hash;
  by_role_[e.role].insert(hash);
  secret_ids_[hash] = std::move(e);
}

void AppRoleStore::EraseSecretIdLocked(const std::string& hash) {
  auto it = secret_ids_.find(hash);
  if (it == secret_ids_.end()) return;
  by_accessor_.erase(it->second.accessor);
  auto role_it = by_role_.find(it->second.role);
  if (role_it != by_role_.end()) {
    role_it->second.erase(hash);
    if (role_it->second.empty()) by_role_.erase(role_it);
  }
  secret_ids_.erase(it);
}

absl::Status AppRoleStore::CheckOpen() const {
  if (closed_.load(std::memory_order_acquire)) {
    return absl::FailedPreconditionError("auth mount is being disabled");
  }
  return absl::OkStatus();
}

absl::StatusOr<AppRole> AppRoleStore::WriteRole(std::string_view name,
                                                const AppRoleUpdate& update) {
  if (!ValidRoleName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid role name \"", core::ToAbsl(name), "\""));
  }
  absl::MutexLock write_lock(&write_mu_);
  WARD_RETURN_IF_ERROR(CheckOpen());
  AppRole role;
  bool exists = false;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = roles_.find(std::string(name));
    if (it != roles_.end()) {
      role = it->second;
      exists = true;
    }
  }
  role.name = std::string(name);
  if (update.bind_secret_id) role.bind_secret_id = *update.bind_secret_id;
  if (update.secret_id_bound_cidrs) role.secret_id_bound_cidrs = *update.secret_id_bound_cidrs;
  if (update.token_bound_cidrs) role.token_bound_cidrs = *update.token_bound_cidrs;
  if (update.secret_id_num_uses) role.secret_id_num_uses = *update.secret_id_num_uses;
  if (update.secret_id_ttl) role.secret_id_ttl = *update.secret_id_ttl;
  if (update.token_policies) role.token_policies = *update.token_policies;
  if (update.token_ttl) role.token_ttl = *update.token_ttl;
  if (update.token_max_ttl) role.token_max_ttl = *update.token_max_ttl;
  if (update.token_explicit_max_ttl) role.token_explicit_max_ttl = *update.token_explicit_max_ttl;
  if (update.token_num_uses) role.token_num_uses = *update.token_num_uses;
  if (update.token_type) role.token_type = *update.token_type;
  if (update.token_no_default_policy)
    role.token_no_default_policy = *update.token_no_default_policy;

  WARD_RETURN_IF_ERROR(ParseCidrs(role.secret_id_bound_cidrs).status());
  WARD_RETURN_IF_ERROR(ParseCidrs(role.token_bound_cidrs).status());
  if (role.secret_id_num_uses < 0) {
    return absl::InvalidArgumentError("secret_id_num_uses cannot be negative");
  }
  if (role.token_num_uses < 0)
    return absl::InvalidArgumentError("token_num_uses cannot be negative");
  for (absl::Duration d :
       {role.secret_id_ttl, role.token_ttl, role.token_max_ttl, role.token_explicit_max_ttl}) {
    if (d < absl::ZeroDuration()) return absl::InvalidArgumentError("durations cannot be negative");
  }
  if (role.token_max_ttl > absl::ZeroDuration() && role.token_ttl > role.token_max_ttl) {
    return absl::InvalidArgumentError("token_ttl should not be greater than token_max_ttl");
  }
  if (role.token_type.empty()) role.token_type = "default";
  if (role.token_type != "default" && role.token_type != "service") {
    return absl::InvalidArgumentError(absl::StrCat(
        "token_type \"", role.token_type, "\" is not supported: only service tokens exist"));
  }
  if (!role.bind_secret_id && role.secret_id_bound_cidrs.empty() &&
      role.token_bound_cidrs.empty()) {
    return absl::InvalidArgumentError(
        "at least one constraint should be enabled on the role: "
        "bind_secret_id, "
        "secret_id_bound_cidrs or token_bound_cidrs");
  }
  std::string old_role_id = role.role_id;
  if (update.role_id) {
    role.role_id = *update.role_id;
  } else if (!exists) {
    WARD_ASSIGN_OR_RETURN(role.role_id, crypto::RandomUuid());
  }
  if (role.role_id.empty()) return absl::InvalidArgumentError("missing role_id");
  WARD_ASSIGN_OR_RETURN(std::string role_id_hash, Hash(role.role_id));
  WARD_ASSIGN_OR_RETURN(std::string old_role_id_hash, Hash(old_role_id));
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = by_role_id_.find(role_id_hash);
    if (it != by_role_id_.end() && it->second != role.name) {
      return absl::InvalidArgumentError("role_id already in use");
    }
  }
  WARD_RETURN_IF_ERROR(barrier_.Put(RoleKey(role.name), SerializeRole(role)).status());
  absl::MutexLock lock(&mu_);
  if (exists && old_role_id_hash != role_id_hash) by_role_id_.erase(old_role_id_hash);
  by_role_id_[role_id_hash] = role.name;
  roles_[role.name] = role;
  return role;
}

absl::StatusOr<AppRole> AppRoleStore::ReadRole(std::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = roles_.find(std::string(name));
  if (it == roles_.end()) return absl::NotFoundError("role not found");
  return it->second;
}

std::vector<std::string> AppRoleStore::ListRoles() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, role] : roles_) out.push_back(name);
  return out;
}

std::string AppRoleStore::RoleNameForRoleId(std::string_view role_id) const {
  absl::StatusOr<std::string> role_id_hash = Hash(role_id);
  if (!role_id_hash.ok()) return "";
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_role_id_.find(*role_id_hash);
  return it == by_role_id_.end() ? "" : it->second;
}

absl::Status AppRoleStore::DeleteRole(std::string_view name_in) {
  std::string name(name_in);
  absl::MutexLock write_lock(&write_mu_);
  WARD_RETURN_IF_ERROR(CheckOpen());
  std::vector<std::string> hashes;
  std::string role_id;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto role = roles_.find(name);
    if (role == roles_.end()) return absl::OkStatus();
    role_id = role->second.role_id;
    auto it = by_role_.find(name);
    if (it != by_role_.end()) hashes.assign(it->second.begin(), it->second.end());
  }
  WARD_ASSIGN_OR_RETURN(std::string role_id_hash, Hash(role_id));
  std::vector<storage::Op> ops;
  ops.push_back(storage::Op::Delete(RoleKey(name)));
  for (const std::string& h : hashes) ops.push_back(storage::Op::Delete(SecretIdKey(h)));
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  for (const std::string& h : hashes) EraseSecretIdLocked(h);
  by_role_id_.erase(role_id_hash);
  roles_.erase(name);
  return absl::OkStatus();
}

absl::StatusOr<IssuedSecretId> AppRoleStore::GenerateSecretId(std::string_view role_name,
                                                              const SecretIdRequest& request) {
  absl::MutexLock write_lock(&write_mu_);
  WARD_RETURN_IF_ERROR(CheckOpen());
  WARD_ASSIGN_OR_RETURN(AppRole role, ReadRole(role_name));
  if (request.ttl && *request.ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl cannot be negative");
  }
  if (request.num_uses && *request.num_uses < 0) {
    return absl::InvalidArgumentError("num_uses cannot be negative");
  }
  absl::Duration ttl = request.ttl.value_or(absl::ZeroDuration());
  if (ttl == absl::ZeroDuration()) ttl = role.secret_id_ttl;
  if (role.secret_id_ttl > absl::ZeroDuration() && ttl > role.secret_id_ttl) {
    return absl::InvalidArgumentError("ttl cannot be longer than the role's secret_id_ttl");
  }
  int64_t num_uses = request.num_uses.value_or(0);
  if (num_uses == 0) num_uses = role.secret_id_num_uses;
  if (role.secret_id_num_uses > 0 && num_uses > role.secret_id_num_uses) {
    return absl::InvalidArgumentError(
        "num_uses cannot be higher than the role's secret_id_num_uses");
  }
  WARD_RETURN_IF_ERROR(CheckCidrSubset(role.secret_id_bound_cidrs, request.cidr_list, "secret ID"));
  WARD_RETURN_IF_ERROR(CheckCidrSubset(role.token_bound_cidrs, request.token_bound_cidrs, "token"));

  IssuedSecretId issued;
  WARD_ASSIGN_OR_RETURN(issued.secret_id, crypto::RandomUuid());
  WARD_ASSIGN_OR_RETURN(issued.accessor, crypto::RandomUuid());
  issued.ttl = ttl;
  issued.num_uses = num_uses;
  WARD_ASSIGN_OR_RETURN(std::string hash, Hash(issued.secret_id));

  SecretIdEntry e;
  e.role = role.name;
  e.accessor = issued.accessor;
  e.cidr_list = request.cidr_list;
  e.token_bound_cidrs = request.token_bound_cidrs;
  e.metadata = request.metadata;
  e.creation_time = clock_.Now();
  e.last_updated_time = e.creation_time;
  e.expiration_time = ttl > absl::ZeroDuration() ? e.creation_time + ttl : absl::InfiniteFuture();
  e.ttl = ttl;
  e.num_uses = num_uses;
  std::vector<storage::Op> ops;
  // The role must still exist when the secret-id lands (it cannot change: write_mu_ is held).
  ops.push_back(storage::Op::Put(
      SecretIdKey(hash), SerializeSecretId(e.role, e.accessor, e.cidr_list, e.token_bound_cidrs,
                                           e.metadata, e.creation_time, e.expiration_time,
                                           e.last_updated_time, e.ttl, e.num_uses)));
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  InsertSecretIdLocked(hash, std::move(e));
  return issued;
}

const AppRoleStore::SecretIdEntry* AppRoleStore::FindLocked(std::string_view role,
                                                            std::string_view hash,
                                                            absl::Time now) const {
  auto it = secret_ids_.find(std::string(hash));
  if (it == secret_ids_.end() || it->second.role != role) return nullptr;
  if (it->second.expiration_time <= now) return nullptr;
  return &it->second;
}

SecretIdInfo AppRoleStore::InfoOf(const SecretIdEntry& e) {
  SecretIdInfo info;
  info.accessor = e.accessor;
  info.cidr_list = e.cidr_list;
  info.token_bound_cidrs = e.token_bound_cidrs;
  info.metadata = e.metadata;
  info.creation_time = e.creation_time;
  info.expiration_time = e.expiration_time;
  info.last_updated_time = e.last_updated_time;
  info.ttl = e.ttl;
  info.num_uses = e.num_uses;
  return info;
}

absl::StatusOr<SecretIdInfo> AppRoleStore::LookupSecretId(std::string_view role,
                                                          std::string_view secret_id) const {
  WARD_ASSIGN_OR_RETURN(std::string hash, Hash(secret_id));
  absl::Time now = clock_.Now();
  absl::ReaderMutexLock lock(&mu_);
  if (roles_.find(std::string(role)) == roles_.end()) return absl::NotFoundError("role not found");
  const SecretIdEntry* e = FindLocked(role, hash, now);
  if (e == nullptr) return absl::NotFoundError("secret ID not found");
  return InfoOf(*e);
}

absl::StatusOr<SecretIdInfo> AppRoleStore::LookupSecretIdByAccessor(
    std::string_view role, std::string_view accessor) const {
  absl::Time now = clock_.Now();
  absl::ReaderMutexLock lock(&mu_);
  if (roles_.find(std::string(role)) == roles_.end()) return absl::NotFoundError("role not found");
  auto it = by_accessor_.find(std::string(accessor));
  const SecretIdEntry* e = it == by_accessor_.end() ? nullptr : FindLocked(role, it->second, now);
  if (e == nullptr) return absl::NotFoundError("secret ID accessor not found");
  return InfoOf(*e);
}

absl::Status AppRoleStore::DeleteSecretIdLocked(const std::string& hash) {
  WARD_RETURN_IF_ERROR(barrier_.Delete(SecretIdKey(hash)).status());
  absl::MutexLock lock(&mu_);
  EraseSecretIdLocked(hash);
  return absl::OkStatus();
}

absl::Status AppRoleStore::DestroySecretId(std::string_view role, std::string_view secret_id) {
  WARD_ASSIGN_OR_RETURN(std::string hash, Hash(secret_id));
  absl::MutexLock write_lock(&write_mu_);
  WARD_RETURN_IF_ERROR(CheckOpen());
  {
    absl::ReaderMutexLock lock(&mu_);
    if (roles_.find(std::string(role)) == roles_.end())
      return absl::NotFoundError("role not found");
    auto it = secret_ids_.find(hash);
    if (it == secret_ids_.end() || it->second.role != role) return absl::OkStatus();
  }
  return DeleteSecretIdLocked(hash);
}

absl::Status AppRoleStore::DestroySecretIdByAccessor(std::string_view role,
                                                     std::string_view accessor) {
  absl::MutexLock write_lock(&write_mu_);
  WARD_RETURN_IF_ERROR(CheckOpen());
  std::string hash;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (roles_.find(std::string(role)) == roles_.end())
      return absl::NotFoundError("role not found");
    auto it = by_accessor_.find(std::string(accessor));
    if (it == by_accessor_.end() || secret_ids_.at(it->second).role != role) {
      return absl::NotFoundError("secret ID accessor not found");
    }
    hash = it->second;
  }
  return DeleteSecretIdLocked(hash);
}

absl::StatusOr<std::vector<std::string>> AppRoleStore::ListSecretIdAccessors(
    std::string_view role) const {
  absl::Time now = clock_.Now();
  absl::ReaderMutexLock lock(&mu_);
  if (roles_.find(std::string(role)) == roles_.end()) return absl::NotFoundError("role not found");
  std::vector<std::string> out;
  auto it = by_role_.find(std::string(role));
  if (it != by_role_.end()) {
    for (const std::string& hash : it->second) {
      const SecretIdEntry& e = secret_ids_.at(hash);
      if (e.expiration_time > now) out.push_back(e.accessor);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void AppRoleStore::LogFailure(std::string_view role, std::string_view reason,
                              std::string_view remote_address) const {
  std::string role_tag = "-";
  if (!role.empty()) {
    absl::StatusOr<std::string> h = Hash(absl::StrCat("role-name:", core::ToAbsl(role)));
    if (h.ok()) role_tag = h->substr(0, 16);
  }
  spdlog::info(
      "event=approle_login_failed prefix={} role_hmac={} reason={} "
      "remote_address={}",
      prefix_, role_tag, reason, remote_address);
}

absl::StatusOr<AppRoleGrant> AppRoleStore::Login(std::string_view role_id,
                                                 std::string_view secret_id,
                                                 std::string_view remote_address) {
  if (role_id.empty()) return absl::InvalidArgumentError("missing role_id");
  // Logins run concurrently under the reader lock; only one that changes a secret-id (consumes
  // a use, deletes an expired one) takes write_mu_, and re-checks the entry under it.
  WARD_RETURN_IF_ERROR(CheckOpen());
  const absl::Time now = clock_.Now();
  // Looked up by HMAC, like secret-ids: the map compares keyed hashes, never the caller's bytes
  // with a stored credential.
  WARD_ASSIGN_OR_RETURN(std::string role_id_hash, Hash(role_id));
  AppRole role;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = by_role_id_.find(role_id_hash);
    if (it == by_role_id_.end()) {
      LogFailure("", "unknown_role_id", remote_address);
      return InvalidCredentials();
    }
    role = roles_.at(it->second);
  }
  if (!Allowed(role.secret_id_bound_cidrs, remote_address) ||
      !Allowed(role.token_bound_cidrs, remote_address)) {
    LogFailure(role.name, "role_cidr_mismatch", remote_address);
    return InvalidCredentials();
  }
  AppRoleGrant grant;
  if (role.bind_secret_id) {
    if (secret_id.empty()) return absl::InvalidArgumentError("missing secret_id");
    WARD_ASSIGN_OR_RETURN(std::string hash, Hash(secret_id));
    // Copies the entry of `hash` if it is one of this role's; false if not.
    auto find = [&](SecretIdEntry& out) {
      absl::ReaderMutexLock lock(&mu_);
      auto it = secret_ids_.find(hash);
      if (it == secret_ids_.end() || it->second.role != role.name) return false;
      out = it->second;
      return true;
    };
    SecretIdEntry entry;
    if (!find(entry)) {
      LogFailure(role.name, "unknown_secret_id", remote_address);
      return InvalidCredentials();
    }
    if (entry.expiration_time > now &&
        (!Allowed(entry.cidr_list, remote_address) ||
         !Allowed(entry.token_bound_cidrs, remote_address))) {
      LogFailure(role.name, "secret_id_cidr_mismatch", remote_address);
      return InvalidCredentials();
    }
    if (entry.expiration_time <= now || entry.num_uses > 0) {
      // The entry changes: serialise with other mutations and look again, since another login
      // may have consumed a use (or the last one) meanwhile.
      absl::MutexLock write_lock(&write_mu_);
      WARD_RETURN_IF_ERROR(CheckOpen());
      if (!find(entry)) {
        LogFailure(role.name, "unknown_secret_id", remote_address);
        return InvalidCredentials();
      }
      if (entry.expiration_time <= now) {
        LogFailure(role.name, "expired_secret_id", remote_address);
        WARD_RETURN_IF_ERROR(DeleteSecretIdLocked(hash));
        return InvalidCredentials();
      }
      if (entry.num_uses == 1) {
        WARD_RETURN_IF_ERROR(DeleteSecretIdLocked(hash));
      } else if (entry.num_uses > 1) {
        entry.num_uses -= 1;
        entry.last_updated_time = now;
        WARD_RETURN_IF_ERROR(
            barrier_
                .Put(SecretIdKey(hash),
                     SerializeSecretId(entry.role, entry.accessor, entry.cidr_list,
                                       entry.token_bound_cidrs, entry.metadata,
                                       entry.creation_time, entry.expiration_time,
                                       entry.last_updated_time, entry.ttl, entry.num_uses))
                .status());
        absl::MutexLock lock(&mu_);
        secret_ids_[hash] = entry;
      }
    }
    grant.metadata = std::move(entry.metadata);
    grant.token_bound_cidrs = std::move(entry.token_bound_cidrs);
  }
  grant.role_name = role.name;
  grant.metadata["role_name"] = role.name;
  grant.token_policies = std::move(role.token_policies);
  grant.token_ttl = role.token_ttl;
  absl::Duration cap = role.token_max_ttl;
  if (role.token_explicit_max_ttl > absl::ZeroDuration() &&
      (cap == absl::ZeroDuration() || role.token_explicit_max_ttl < cap)) {
    cap = role.token_explicit_max_ttl;
  }
  grant.token_max_ttl = cap;
  grant.token_num_uses = role.token_num_uses;
  grant.token_no_default_policy = role.token_no_default_policy;
  if (grant.token_bound_cidrs.empty()) grant.token_bound_cidrs = std::move(role.token_bound_cidrs);
  return grant;
}

void AppRoleStore::Close() {
  absl::MutexLock write_lock(&write_mu_);
  closed_.store(true, std::memory_order_release);
}

size_t AppRoleStore::SecretIdCount() const {
  absl::ReaderMutexLock lock(&mu_);
  return secret_ids_.size();
}

}  // namespace ward::auth
