#include "auth/token_store.h"

#include <algorithm>
#include <boost/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "auth/approle_cidr.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "crypto/hmac.h"
#include "crypto/random.h"

namespace ward::auth {
namespace {

namespace json = boost::json;

// Storage layout (docs/token-format.md). Keys are not encrypted by the barrier, so they hold
// only hashes.
constexpr std::string_view kHmacKeyPath = "core/token/hmac-key";
constexpr std::string_view kIdPrefix = "core/token/id/";
constexpr std::string_view kAccessorPrefix = "core/token/accessor/";
constexpr std::string_view kParentPrefix = "core/token/parent/";

constexpr size_t kHmacKeySize = 32;
constexpr size_t kTokenRandomChars = 24;
constexpr size_t kAccessorChars = 24;
constexpr size_t kMaxCustomIdSize = 256;
constexpr size_t kListPageSize = 1000;
// Tokens revoked per commit by RevokeByPathPrefix (three deletes each).
constexpr size_t kRevokeBatch = 256;
constexpr int64_t kEntryFormatVersion = 1;
constexpr std::string_view kServiceTokenPrefix = "hvs.";

std::string IdKey(std::string_view id_hash) {
  return absl::StrCat(core::ToAbsl(kIdPrefix), core::ToAbsl(id_hash));
}

std::string AccessorKey(std::string_view accessor) {
  return absl::StrCat(core::ToAbsl(kAccessorPrefix), crypto::HexEncode(crypto::Sha256(accessor)));
}

std::string ParentKey(std::string_view parent_hash, std::string_view child_hash) {
  return absl::StrCat(core::ToAbsl(kParentPrefix), core::ToAbsl(parent_hash), "/",
                      core::ToAbsl(child_hash));
}

// Vault's policyutil.SanitizePolicies: trims and lower-cases names, drops empty ones, lets
// "root" replace everything else, optionally adds "default", sorts and removes duplicates.
std::vector<std::string> SanitizePolicies(const std::vector<std::string>& in, bool add_default) {
  std::vector<std::string> out;
  bool default_found = false;
  for (const std::string& raw : in) {
    size_t begin = raw.find_first_not_of(" \t\r\n");
    if (begin == std::string::npos) continue;
    size_t end = raw.find_last_not_of(" \t\r\n");
    std::string name = raw.substr(begin, end - begin + 1);
    for (char& c : name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (name == "root") return {"root"};
    if (name == "default") default_found = true;
    out.push_back(std::move(name));
  }
  if (add_default && !default_found) out.push_back("default");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool IsSubset(const std::vector<std::string>& super, const std::vector<std::string>& sub) {
  for (const std::string& p : sub) {
    if (std::find(super.begin(), super.end(), p) == super.end()) return false;
  }
  return true;
}

// Vault: "token-" + name, characters outside [A-Za-z0-9-] replaced by '-', one trailing '-'
// removed.
std::string TokenDisplayName(std::string_view requested) {
  std::string full = absl::StrCat("token-", core::ToAbsl(requested));
  for (char& c : full) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) c = '-';
  }
  if (!full.empty() && full.back() == '-') full.pop_back();
  return full;
}

absl::Status ValidateCustomId(std::string_view id) {
  if (id.find('.') != std::string_view::npos) {
    return absl::InvalidArgumentError("custom token ID cannot have a '.' in the value");
  }
  if (id.empty() || id.size() > kMaxCustomIdSize) {
    return absl::InvalidArgumentError("custom token ID must be 1 to 256 characters");
  }
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "custom token ID must be printable ASCII characters without spaces");
    }
  }
  return absl::OkStatus();
}

bool Expired(const TokenEntry& entry, absl::Time now) { return entry.expire_time <= now; }

// Times and durations are stored as integer nanoseconds; "never" as null.
json::value TimeToJson(absl::Time t) {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) return nullptr;
  return absl::ToUnixNanos(t);
}

std::string SerializeEntry(const TokenEntry& e) {
  json::object o;
  o["version"] = kEntryFormatVersion;
  o["accessor"] = e.accessor;
  o["parent_hash"] = e.parent_hash;
  json::array policies;
  for (const std::string& p : e.policies) policies.emplace_back(p);
  o["policies"] = std::move(policies);
  json::object meta;
  for (const auto& [k, v] : e.meta) meta[k] = v;
  o["meta"] = std::move(meta);
  o["display_name"] = e.display_name;
  o["path"] = e.path;
  o["creation_time_ns"] = absl::ToUnixNanos(e.creation_time);
  o["creation_ttl_ns"] = absl::ToInt64Nanoseconds(e.creation_ttl);
  o["expire_time_ns"] = TimeToJson(e.expire_time);
  o["explicit_max_ttl_ns"] = absl::ToInt64Nanoseconds(e.explicit_max_ttl);
  o["num_uses"] = e.num_uses;
  o["renewable"] = e.renewable;
  o["orphan"] = e.orphan;
  o["type"] = e.type;
  o["last_renewal_time_ns"] = TimeToJson(e.last_renewal_time);
  json::array cidrs;
  for (const std::string& c : e.bound_cidrs) cidrs.emplace_back(c);
  o["bound_cidrs"] = std::move(cidrs);
  return json::serialize(o);
}

// Field readers for ParseEntry; each returns false if the field is missing or mistyped.
bool ReadString(const json::object& o, std::string_view name, std::string& out) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_string()) return false;
  out = std::string(v->get_string());
  return true;
}
bool ReadInt(const json::object& o, std::string_view name, int64_t& out) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_int64()) return false;
  out = v->get_int64();
  return true;
}
bool ReadBool(const json::object& o, std::string_view name, bool& out) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_bool()) return false;
  out = v->get_bool();
  return true;
}
// A nullable time: null reads as `never`.
bool ReadTime(const json::object& o, std::string_view name, absl::Time never, absl::Time& out) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return false;
  if (v->is_null()) {
    out = never;
    return true;
  }
  if (!v->is_int64()) return false;
  out = absl::FromUnixNanos(v->get_int64());
  return true;
}

absl::StatusOr<TokenEntry> ParseEntry(std::string_view id_hash, std::string_view text) {
  auto malformed = [] { return absl::DataLossError("malformed token entry in storage"); };
  json::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return malformed();
  const json::object& o = root.get_object();
  int64_t version = 0;
  if (!ReadInt(o, "version", version) || version != kEntryFormatVersion) {
    return absl::DataLossError("token entry has an unknown format version");
  }
  TokenEntry e;
  e.id_hash = std::string(id_hash);
  int64_t creation_ns = 0, creation_ttl_ns = 0, explicit_max_ns = 0;
  if (!ReadString(o, "accessor", e.accessor) || !ReadString(o, "parent_hash", e.parent_hash) ||
      !ReadString(o, "display_name", e.display_name) || !ReadString(o, "path", e.path) ||
      !ReadString(o, "type", e.type) || !ReadInt(o, "creation_time_ns", creation_ns) ||
      !ReadInt(o, "creation_ttl_ns", creation_ttl_ns) ||
      !ReadInt(o, "explicit_max_ttl_ns", explicit_max_ns) || !ReadInt(o, "num_uses", e.num_uses) ||
      !ReadBool(o, "renewable", e.renewable) || !ReadBool(o, "orphan", e.orphan) ||
      !ReadTime(o, "expire_time_ns", absl::InfiniteFuture(), e.expire_time) ||
      !ReadTime(o, "last_renewal_time_ns", absl::InfinitePast(), e.last_renewal_time)) {
    return malformed();
  }
  e.creation_time = absl::FromUnixNanos(creation_ns);
  e.creation_ttl = absl::Nanoseconds(creation_ttl_ns);
  e.explicit_max_ttl = absl::Nanoseconds(explicit_max_ns);
  const json::value* policies = o.if_contains("policies");
  const json::value* meta = o.if_contains("meta");
  if (policies == nullptr || !policies->is_array() || meta == nullptr || !meta->is_object()) {
    return malformed();
  }
  for (const json::value& p : policies->get_array()) {
    if (!p.is_string()) return malformed();
    e.policies.emplace_back(p.get_string());
  }
  for (const auto& kv : meta->get_object()) {
    if (!kv.value().is_string()) return malformed();
    e.meta.emplace(std::string(kv.key()), std::string(kv.value().get_string()));
  }
  // Optional: entries written before bound CIDRs existed have none.
  if (const json::value* cidrs = o.if_contains("bound_cidrs")) {
    if (!cidrs->is_array()) return malformed();
    for (const json::value& c : cidrs->get_array()) {
      if (!c.is_string()) return malformed();
      e.bound_cidrs.emplace_back(c.get_string());
    }
  }
  return e;
}

// Loads the HMAC key, creating it on first use. The create commit checks that the key is still
// absent, so two stores starting on empty storage agree on one key.
absl::StatusOr<core::SecureBytes> LoadOrCreateKey(barrier::Barrier& barrier) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<std::string> stored = barrier.Get(kHmacKeyPath);
    if (stored.ok()) {
      core::SecureBytes key(*stored);
      core::SecureZero(*stored);
      if (key.size() != kHmacKeySize) return absl::DataLossError("token HMAC key has wrong size");
      return key;
    }
    if (!absl::IsNotFound(stored.status())) return stored.status();
    WARD_ASSIGN_OR_RETURN(core::SecureBytes key, crypto::RandomBytes(kHmacKeySize));
    std::vector<storage::Op> ops;
    ops.push_back(storage::Op::Check(std::string(kHmacKeyPath), 0));
    ops.push_back(storage::Op::Put(std::string(kHmacKeyPath), std::string(key.view())));
    absl::StatusOr<uint64_t> committed = barrier.Commit(std::move(ops));
    if (committed.ok()) return key;
    if (!absl::IsAborted(committed.status())) return committed.status();
    // Another store created the key first: read theirs.
  }
  return absl::AbortedError("token HMAC key changed while being created");
}

}  // namespace

absl::Duration TokenEntry::RemainingTtl(absl::Time now) const {
  if (expire_time == absl::InfiniteFuture()) return absl::InfiniteDuration();
  return std::max(expire_time - now, absl::ZeroDuration());
}

bool TokenEntry::HasPolicy(std::string_view policy) const {
  return std::find(policies.begin(), policies.end(), policy) != policies.end();
}

bool TokenEntry::AllowsSource(std::string_view remote_address) const {
  if (bound_cidrs.empty()) return true;
  absl::StatusOr<std::vector<Cidr>> parsed = ParseCidrs(bound_cidrs);
  return parsed.ok() && AddressAllowed(*parsed, remote_address);
}

TokenStore::TokenStore(barrier::Barrier& barrier, core::Clock& clock, Options options,
                       core::SecureBytes key)
    : barrier_(barrier), clock_(clock), options_(options), key_(crypto::HmacSha256Key::Create(key)) {}

TokenStore::~TokenStore() = default;

absl::StatusOr<std::unique_ptr<TokenStore>> TokenStore::Create(barrier::Barrier& barrier,
                                                               core::Clock& clock,
                                                               Options options) {
  if (options.default_ttl <= absl::ZeroDuration() || options.max_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("token default_ttl and max_ttl must be positive");
  }
  if (options.default_ttl > options.max_ttl) {
    return absl::InvalidArgumentError("token default_ttl must not exceed max_ttl");
  }
  WARD_ASSIGN_OR_RETURN(core::SecureBytes key, LoadOrCreateKey(barrier));
  std::unique_ptr<TokenStore> store(new TokenStore(barrier, clock, options, std::move(key)));
  WARD_RETURN_IF_ERROR(store->Load());
  return store;
}

absl::Status TokenStore::Load() {
  std::vector<TokenEntry> loaded;
  std::string after;
  while (true) {
    WARD_ASSIGN_OR_RETURN(storage::ListPage page, barrier_.List(kIdPrefix, after, kListPageSize));
    for (const std::string& key : page.keys) {
      WARD_ASSIGN_OR_RETURN(std::string value, barrier_.Get(key));
      WARD_ASSIGN_OR_RETURN(TokenEntry entry,
                            ParseEntry(std::string_view(key).substr(kIdPrefix.size()), value));
      loaded.push_back(std::move(entry));
    }
    if (!page.more || page.keys.empty()) break;
    after = page.keys.back();
  }
  absl::MutexLock lock(&mu_);
  for (TokenEntry& entry : loaded) InsertLocked(std::move(entry));
  return absl::OkStatus();
}

absl::StatusOr<std::string> TokenStore::HashToken(std::string_view token) const {
  if (!key_.ok()) return key_.status();
  WARD_ASSIGN_OR_RETURN(std::string mac, key_->Mac(token));
  return crypto::HexEncode(mac);
}

const TokenEntry* TokenStore::FindValidLocked(std::string_view id_hash, absl::Time now) const {
  auto it = entries_.find(core::ToAbsl(id_hash));
  if (it == entries_.end() || Expired(it->second, now)) return nullptr;
  // A token dies with its parent: one whose ancestor has expired (but is not yet revoked) is
  // as dead as if the revocation had happened. The step bound guards against a corrupt cycle.
  const TokenEntry* current = &it->second;
  for (size_t steps = 0; !current->parent_hash.empty(); ++steps) {
    auto parent = entries_.find(current->parent_hash);
    if (parent == entries_.end() || Expired(parent->second, now) || steps > entries_.size()) {
      return nullptr;
    }
    current = &parent->second;
  }
  return &it->second;
}

void TokenStore::InsertLocked(TokenEntry entry) {
  auto existing = entries_.find(entry.id_hash);
  if (existing != entries_.end() && !existing->second.parent_hash.empty()) {
    auto siblings = children_.find(existing->second.parent_hash);
    if (siblings != children_.end()) {
      siblings->second.erase(entry.id_hash);
      if (siblings->second.empty()) children_.erase(siblings);
    }
  }
  if (!entry.parent_hash.empty()) children_[entry.parent_hash].insert(entry.id_hash);
  by_accessor_[entry.accessor] = entry.id_hash;
  std::string id_hash = entry.id_hash;
  entries_.insert_or_assign(std::move(id_hash), std::move(entry));
}

void TokenStore::EraseLocked(const std::string& id_hash) {
  auto it = entries_.find(id_hash);
  if (it == entries_.end()) return;
  const TokenEntry& entry = it->second;
  if (!entry.parent_hash.empty()) {
    auto siblings = children_.find(entry.parent_hash);
    if (siblings != children_.end()) {
      siblings->second.erase(id_hash);
      if (siblings->second.empty()) children_.erase(siblings);
    }
  }
  by_accessor_.erase(entry.accessor);
  children_.erase(id_hash);
  entries_.erase(it);
}

std::vector<std::string> TokenStore::SubtreeLocked(const std::string& id_hash) const {
  std::vector<std::string> out;
  if (!entries_.contains(id_hash)) return out;
  out.push_back(id_hash);
  for (size_t i = 0; i < out.size(); ++i) {
    auto kids = children_.find(out[i]);
    if (kids == children_.end()) continue;
    for (const std::string& child : kids->second) {
      if (entries_.contains(child)) out.push_back(child);
    }
  }
  return out;
}

void TokenStore::AppendRevokeOpsLocked(const std::string& id_hash,
                                       std::vector<storage::Op>& ops) const {
  const TokenEntry& entry = entries_.at(id_hash);
  ops.push_back(storage::Op::Delete(IdKey(id_hash)));
  ops.push_back(storage::Op::Delete(AccessorKey(entry.accessor)));
  if (!entry.parent_hash.empty()) {
    ops.push_back(storage::Op::Delete(ParentKey(entry.parent_hash, id_hash)));
  }
}

absl::StatusOr<size_t> TokenStore::RevokeTree(const std::string& id_hash) {
  std::vector<storage::Op> ops;
  std::vector<std::string> subtree;
  {
    absl::ReaderMutexLock lock(&mu_);
    subtree = SubtreeLocked(id_hash);
    for (const std::string& hash : subtree) AppendRevokeOpsLocked(hash, ops);
  }
  if (subtree.empty()) return 0;
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  // Children first is not needed: EraseLocked tolerates a missing parent or child.
  for (const std::string& hash : subtree) EraseLocked(hash);
  return subtree.size();
}

absl::StatusOr<IssuedToken> TokenStore::Issue(std::string token, TokenEntry entry,
                                              std::vector<std::string> warnings) {
  auto fail = [&token](absl::Status status) {
    core::SecureZero(token);
    return status;
  };
  absl::StatusOr<std::string> id_hash = HashToken(token);
  if (!id_hash.ok()) return fail(id_hash.status());
  entry.id_hash = *std::move(id_hash);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (entries_.contains(entry.id_hash)) {
      return fail(absl::AlreadyExistsError("a token with that ID already exists"));
    }
  }
  // Accessors are random; a clash with an existing one is astronomically unlikely, but cheap
  // to rule out.
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::string> accessor = crypto::RandomAlphanumeric(kAccessorChars);
    if (!accessor.ok()) return fail(accessor.status());
    absl::ReaderMutexLock lock(&mu_);
    if (!by_accessor_.contains(*accessor)) {
      entry.accessor = *std::move(accessor);
      break;
    }
    if (attempt == 3) return fail(absl::InternalError("could not generate a unique accessor"));
  }

  std::vector<storage::Op> ops;
  ops.push_back(storage::Op::Check(IdKey(entry.id_hash), 0));
  ops.push_back(storage::Op::Put(IdKey(entry.id_hash), SerializeEntry(entry)));
  ops.push_back(storage::Op::Put(AccessorKey(entry.accessor), entry.id_hash));
  if (!entry.parent_hash.empty()) {
    ops.push_back(storage::Op::Put(ParentKey(entry.parent_hash, entry.id_hash), ""));
  }
  absl::StatusOr<uint64_t> committed = barrier_.Commit(std::move(ops));
  if (!committed.ok()) {
    if (absl::IsAborted(committed.status())) {
      return fail(absl::AlreadyExistsError("a token with that ID already exists"));
    }
    return fail(committed.status());
  }
  {
    absl::MutexLock lock(&mu_);
    InsertLocked(entry);
  }
  return IssuedToken{std::move(token), std::move(entry), std::move(warnings)};
}

absl::StatusOr<IssuedToken> TokenStore::CreateRootToken(std::string_view id) {
  std::string token;
  if (id.empty()) {
    WARD_ASSIGN_OR_RETURN(std::string random, crypto::RandomAlphanumeric(kTokenRandomChars));
    token = absl::StrCat(core::ToAbsl(kServiceTokenPrefix), random);
    core::SecureZero(random);
  } else {
    WARD_RETURN_IF_ERROR(ValidateCustomId(id));
    token = std::string(id);
  }
  TokenEntry entry;
  entry.policies = {"root"};
  entry.display_name = "root";
  entry.path = "auth/token/root";
  entry.creation_time = clock_.Now();
  entry.orphan = true;
  entry.renewable = false;
  return Issue(std::move(token), std::move(entry), {});  // no parent: no write_mu_ needed
}

absl::StatusOr<IssuedToken> TokenStore::CreateToken(const TokenEntry* parent_arg,
                                                    const CreateTokenRequest& request) {
  if (request.num_uses < 0) {
    return absl::InvalidArgumentError("number of uses cannot be negative");
  }
  if (request.explicit_max_ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("explicit_max_ttl must be positive");
  }
  if (request.ttl.has_value() && *request.ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl must be positive");
  }
  if (!request.id.empty()) WARD_RETURN_IF_ERROR(ValidateCustomId(request.id));
  WARD_RETURN_IF_ERROR(ParseCidrs(request.bound_cidrs).status());

  absl::ReleasableMutexLock write(&write_mu_);
  const absl::Time now = clock_.Now();

  // Work from the stored parent, not the caller's copy: it may have been revoked, used up or
  // renewed since the caller looked it up.
  std::optional<TokenEntry> parent;
  if (parent_arg != nullptr) {
    absl::ReaderMutexLock lock(&mu_);
    const TokenEntry* stored = FindValidLocked(parent_arg->id_hash, now);
    if (stored == nullptr) return absl::PermissionDeniedError("parent token is no longer valid");
    parent = *stored;
  }
  if (parent.has_value() && parent->num_uses != 0) {
    // Otherwise a use-limited token could escape its limit through children.
    return absl::InvalidArgumentError("restricted use token cannot generate child tokens");
  }
  const bool sudo = request.caller_has_sudo || (parent.has_value() && parent->IsRoot());

  TokenEntry entry;
  entry.meta = request.meta;
  entry.num_uses = request.num_uses;
  entry.creation_time = now;
  entry.explicit_max_ttl = request.explicit_max_ttl;
  entry.path = request.path.empty() ? "auth/token/create" : request.path;
  entry.bound_cidrs = request.bound_cidrs;
  if (!parent.has_value()) {
    entry.display_name = request.display_name.empty() ? "token" : request.display_name;
  } else {
    entry.display_name =
        request.display_name.empty() ? "token" : TokenDisplayName(request.display_name);
  }

  if (!request.id.empty() && !sudo) {
    return absl::InvalidArgumentError("root or sudo privileges required to specify token id");
  }

  // Policies, following Vault's handleCreateCommon.
  std::vector<std::string> policies;
  bool add_default = false;
  if (!parent.has_value()) {
    policies = request.policies;
    add_default = !request.no_default_policy;
  } else if (request.policies.empty()) {
    // Inherit; "default" only if the parent has it.
    policies = SanitizePolicies(parent->policies, false);
  } else if (!sudo) {
    policies = SanitizePolicies(request.policies, false);
    if (!IsSubset(SanitizePolicies(parent->policies, false), policies)) {
      return absl::InvalidArgumentError("child policies must be subset of parent");
    }
    add_default = !request.no_default_policy && parent->HasPolicy("default");
  } else {
    policies = request.policies;
    add_default = !request.no_default_policy;
  }
  entry.policies = SanitizePolicies(policies, add_default);
  if (request.no_default_policy) {
    entry.policies.erase(std::remove(entry.policies.begin(), entry.policies.end(), "default"),
                         entry.policies.end());
  }
  const bool root_policy = entry.HasPolicy("root");
  if (root_policy && !(parent.has_value() && parent->IsRoot())) {
    return absl::InvalidArgumentError(
        "root tokens may not be created without parent token being root");
  }

  // Parentage.
  if (!parent.has_value()) {
    entry.orphan = true;
  } else if (request.no_parent) {
    if (!sudo) {
      return absl::InvalidArgumentError("root or sudo privileges required to create orphan token");
    }
    entry.orphan = true;
  } else {
    entry.orphan = request.orphan;
  }
  if (!entry.orphan) entry.parent_hash = parent->id_hash;

  // TTL, following Vault's framework.CalculateTTL for a new token.
  std::vector<std::string> warnings;
  absl::Duration ttl = request.ttl.value_or(absl::ZeroDuration());
  if (ttl > absl::ZeroDuration() || !root_policy) {
    absl::Duration max = options_.max_ttl;
    if (request.explicit_max_ttl > absl::ZeroDuration() && request.explicit_max_ttl < max) {
      max = request.explicit_max_ttl;
    }
    if (ttl == absl::ZeroDuration()) ttl = options_.default_ttl;
    if (ttl > max) {
      warnings.push_back(absl::StrCat(
          "TTL of \"", core::FormatGoDuration(ttl), "\" exceeded the effective max_ttl of \"",
          core::FormatGoDuration(max), "\"; TTL value is capped accordingly"));
      ttl = max;
    }
  }
  // Root tokens are still bound by an explicit max ttl.
  if (ttl == absl::ZeroDuration() && request.explicit_max_ttl > absl::ZeroDuration()) {
    ttl = request.explicit_max_ttl;
  }
  bool renewable = request.renewable.value_or(true);
  if (ttl == absl::ZeroDuration()) {
    if (parent.has_value() && parent->expire_time != absl::InfiniteFuture()) {
      return absl::InvalidArgumentError(
          "expiring root tokens cannot create non-expiring root tokens");
    }
    renewable = false;  // a token that never expires has nothing to renew
  }
  // A child is revoked with its parent, so it may as well not claim a longer life.
  if (parent.has_value() && !entry.orphan && !parent->IsRoot() &&
      parent->expire_time != absl::InfiniteFuture()) {
    absl::Duration remaining = parent->expire_time - now;
    if (ttl == absl::ZeroDuration() || ttl > remaining) {
      warnings.push_back(absl::StrCat("TTL of \"", core::FormatGoDuration(ttl),
                                      "\" exceeded the parent token's remaining TTL of \"",
                                      core::FormatGoDuration(remaining),
                                      "\"; TTL value is capped accordingly"));
      ttl = remaining;
    }
  }
  entry.creation_ttl = ttl;
  entry.expire_time = ttl == absl::ZeroDuration() ? absl::InfiniteFuture() : now + ttl;
  entry.renewable = renewable;

  std::string token;
  if (request.id.empty()) {
    WARD_ASSIGN_OR_RETURN(std::string random, crypto::RandomAlphanumeric(kTokenRandomChars));
    token = absl::StrCat(core::ToAbsl(kServiceTokenPrefix), random);
    core::SecureZero(random);
  } else {
    token = request.id;
  }
  // A token with a parent is committed under write_mu_, so that a concurrent revocation of the
  // parent (which collects the subtree under write_mu_) cannot miss it. A token without one
  // (every login) depends on no other entry: its commit runs outside write_mu_, concurrently
  // with other creations, so that the storage's group commit can cover many logins with one
  // fsync instead of one each.
  if (entry.parent_hash.empty()) write.Release();
  return Issue(std::move(token), std::move(entry), std::move(warnings));
}

absl::Status TokenStore::CheckUnsealed() const {
  // Lookups are served from memory, so without this check a sealed server would keep
  // accepting tokens until the store is destroyed.
  if (barrier_.Sealed()) return absl::UnavailableError("barrier is sealed");
  return absl::OkStatus();
}

template <typename Read>
auto TokenStore::ReadValid(std::string_view id_hash, const Read& read) const
    -> absl::StatusOr<decltype(read(std::declval<const TokenEntry&>()))> {
  WARD_RETURN_IF_ERROR(CheckUnsealed());
  const absl::Time now = clock_.Now();
  absl::ReaderMutexLock lock(&mu_);
  const TokenEntry* entry = FindValidLocked(id_hash, now);
  if (entry == nullptr) return absl::NotFoundError("token not found");
  return read(*entry);
}

absl::StatusOr<TokenEntry> TokenStore::Lookup(std::string_view token) const {
  WARD_RETURN_IF_ERROR(CheckUnsealed());
  WARD_ASSIGN_OR_RETURN(std::string id_hash, HashToken(token));
  return LookupHashed(id_hash);
}

absl::StatusOr<std::string> TokenStore::IdHash(std::string_view token) const {
  return HashToken(token);
}

absl::StatusOr<TokenEntry> TokenStore::LookupHashed(std::string_view id_hash) const {
  return ReadValid(id_hash, [](const TokenEntry& entry) { return entry; });
}

absl::StatusOr<bool> TokenStore::HasUnlimitedUses(std::string_view token) const {
  WARD_RETURN_IF_ERROR(CheckUnsealed());
  WARD_ASSIGN_OR_RETURN(std::string id_hash, HashToken(token));
  return ReadValid(id_hash, [](const TokenEntry& entry) { return entry.num_uses == 0; });
}

absl::StatusOr<TokenEntry> TokenStore::Use(std::string_view token) {
  WARD_RETURN_IF_ERROR(CheckUnsealed());
  WARD_ASSIGN_OR_RETURN(std::string id_hash, HashToken(token));
  {
    // Fast path: unlimited tokens (the common case) need neither storage nor write_mu_. A
    // token's num_uses never changes from 0, so this answer cannot go stale.
    absl::ReaderMutexLock lock(&mu_);
    const TokenEntry* entry = FindValidLocked(id_hash, clock_.Now());
    if (entry != nullptr && entry->num_uses == 0) return *entry;
    if (entry == nullptr && !entries_.contains(id_hash)) {
      return absl::NotFoundError("token not found");
    }
  }

  absl::MutexLock write(&write_mu_);
  std::optional<TokenEntry> entry;
  bool present = false;
  {
    absl::ReaderMutexLock lock(&mu_);
    const TokenEntry* found = FindValidLocked(id_hash, clock_.Now());
    if (found != nullptr) entry = *found;
    present = entries_.contains(id_hash);
  }
  if (!entry.has_value()) {
    if (present) {
      // Expired (itself or an ancestor): revoke it now rather than wait for the tidy job.
      absl::StatusOr<size_t> revoked = RevokeTree(id_hash);
      if (!revoked.ok()) {
        spdlog::warn("token revoke_expired_failed code={}",
                     absl::StatusCodeToString(revoked.status().code()));
      }
    }
    return absl::NotFoundError("token not found");
  }
  if (entry->num_uses == 0) return *entry;
  if (entry->num_uses == 1) {
    WARD_RETURN_IF_ERROR(RevokeTree(id_hash).status());
    entry->num_uses = -1;
    return *entry;
  }
  entry->num_uses -= 1;
  WARD_RETURN_IF_ERROR(barrier_.Put(IdKey(id_hash), SerializeEntry(*entry)).status());
  absl::MutexLock lock(&mu_);
  InsertLocked(*entry);
  return *entry;
}

absl::StatusOr<TokenEntry> TokenStore::LookupByAccessor(std::string_view accessor) const {
  WARD_RETURN_IF_ERROR(CheckUnsealed());
  const absl::Time now = clock_.Now();
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_accessor_.find(core::ToAbsl(accessor));
  const TokenEntry* entry = it == by_accessor_.end() ? nullptr : FindValidLocked(it->second, now);
  if (entry == nullptr) return absl::InvalidArgumentError("invalid accessor");
  return *entry;
}

absl::StatusOr<TokenEntry> TokenStore::Renew(std::string_view token, absl::Duration increment,
                                             std::vector<std::string>* warnings) {
  if (increment < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("increment must not be negative");
  }
  WARD_ASSIGN_OR_RETURN(std::string id_hash, HashToken(token));
  absl::MutexLock write(&write_mu_);
  const absl::Time now = clock_.Now();
  TokenEntry entry;
  {
    absl::ReaderMutexLock lock(&mu_);
    const TokenEntry* found = FindValidLocked(id_hash, now);
    if (found == nullptr) return absl::NotFoundError("token not found");
    entry = *found;
  }
  if (!entry.renewable || entry.expire_time == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError("lease is not renewable");
  }
  // Vault's framework.CalculateTTL for a renewal: the maximum is measured from creation.
  absl::Duration max = options_.max_ttl;
  if (entry.explicit_max_ttl > absl::ZeroDuration() && entry.explicit_max_ttl < max) {
    max = entry.explicit_max_ttl;
  }
  absl::Duration ttl = increment;
  if (ttl == absl::ZeroDuration()) ttl = entry.creation_ttl;
  if (ttl == absl::ZeroDuration()) ttl = options_.default_ttl;
  const absl::Duration max_valid = entry.creation_time + max - now;
  if (max_valid <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("past the max TTL, cannot renew");
  }
  if (ttl > max_valid) {
    if (warnings != nullptr) {
      warnings->push_back(absl::StrCat(
          "TTL of \"", core::FormatGoDuration(ttl), "\" exceeded the effective max_ttl of \"",
          core::FormatGoDuration(max_valid), "\"; TTL value is capped accordingly"));
    }
    ttl = max_valid;
  }
  entry.expire_time = now + ttl;
  entry.last_renewal_time = now;
  WARD_RETURN_IF_ERROR(barrier_.Put(IdKey(id_hash), SerializeEntry(entry)).status());
  absl::MutexLock lock(&mu_);
  InsertLocked(entry);
  return entry;
}

absl::Status TokenStore::Revoke(std::string_view token) {
  WARD_ASSIGN_OR_RETURN(std::string id_hash, HashToken(token));
  absl::MutexLock write(&write_mu_);
  return RevokeTree(id_hash).status();
}

absl::Status TokenStore::RevokeByAccessor(std::string_view accessor) {
  absl::MutexLock write(&write_mu_);
  std::string id_hash;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = by_accessor_.find(core::ToAbsl(accessor));
    if (it == by_accessor_.end()) return absl::InvalidArgumentError("invalid accessor");
    id_hash = it->second;
  }
  return RevokeTree(id_hash).status();
}

absl::Status TokenStore::RevokeOrphan(std::string_view token) {
  WARD_ASSIGN_OR_RETURN(std::string id_hash, HashToken(token));
  absl::MutexLock write(&write_mu_);
  std::vector<storage::Op> ops;
  std::vector<TokenEntry> orphaned;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = entries_.find(id_hash);
    if (it == entries_.end()) return absl::OkStatus();
    const TokenEntry& entry = it->second;
    ops.push_back(storage::Op::Delete(IdKey(id_hash)));
    ops.push_back(storage::Op::Delete(AccessorKey(entry.accessor)));
    if (!entry.parent_hash.empty()) {
      ops.push_back(storage::Op::Delete(ParentKey(entry.parent_hash, id_hash)));
    }
    auto kids = children_.find(id_hash);
    if (kids != children_.end()) {
      for (const std::string& child_hash : kids->second) {
        auto child = entries_.find(child_hash);
        if (child == entries_.end()) continue;
        TokenEntry updated = child->second;
        updated.parent_hash.clear();
        updated.orphan = true;
        ops.push_back(storage::Op::Put(IdKey(child_hash), SerializeEntry(updated)));
        ops.push_back(storage::Op::Delete(ParentKey(id_hash, child_hash)));
        orphaned.push_back(std::move(updated));
      }
    }
  }
  WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  absl::MutexLock lock(&mu_);
  EraseLocked(id_hash);
  for (TokenEntry& child : orphaned) InsertLocked(std::move(child));
  return absl::OkStatus();
}

absl::StatusOr<size_t> TokenStore::RevokeExpired() {
  absl::MutexLock write(&write_mu_);
  const absl::Time now = clock_.Now();
  // Roots of dead subtrees: expired tokens, and tokens whose parent is missing (which cannot
  // happen through this class, but would leave a dead token behind forever).
  std::vector<std::string> roots;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [hash, entry] : entries_) {
      if (Expired(entry, now) ||
          (!entry.parent_hash.empty() && !entries_.contains(entry.parent_hash))) {
        roots.push_back(hash);
      }
    }
  }
  size_t revoked = 0;
  for (const std::string& hash : roots) {
    // A root may already be gone as part of an earlier root's subtree; RevokeTree returns 0.
    WARD_ASSIGN_OR_RETURN(size_t n, RevokeTree(hash));
    revoked += n;
  }
  return revoked;
}

absl::StatusOr<size_t> TokenStore::RevokeByPathPrefix(std::string_view prefix) {
  if (prefix.empty()) return absl::InvalidArgumentError("token path prefix must not be empty");
  absl::MutexLock write(&write_mu_);
  // Every matching token and its descendants, each once, parents before their children.
  std::vector<std::string> doomed;
  {
    absl::ReaderMutexLock lock(&mu_);
    absl::flat_hash_set<std::string> seen;
    for (const auto& [hash, entry] : entries_) {
      if (!absl::StartsWith(entry.path, core::ToAbsl(prefix))) continue;
      for (std::string& h : SubtreeLocked(hash)) {
        if (seen.insert(h).second) doomed.push_back(std::move(h));
      }
    }
  }
  // write_mu_ keeps every other mutation out, so the doomed entries stay present until erased.
  for (size_t begin = 0; begin < doomed.size(); begin += kRevokeBatch) {
    const size_t end = std::min(doomed.size(), begin + kRevokeBatch);
    std::vector<storage::Op> ops;
    {
      absl::ReaderMutexLock lock(&mu_);
      for (size_t i = begin; i < end; ++i) AppendRevokeOpsLocked(doomed[i], ops);
    }
    WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
    absl::MutexLock lock(&mu_);
    for (size_t i = begin; i < end; ++i) EraseLocked(doomed[i]);
  }
  return doomed.size();
}

size_t TokenStore::Count() const {
  absl::ReaderMutexLock lock(&mu_);
  return entries_.size();
}

std::map<std::string, size_t> TokenStore::CountByPath() const {
  absl::ReaderMutexLock lock(&mu_);
  std::map<std::string, size_t> out;
  for (const auto& [hash, entry] : entries_) ++out[entry.path];
  return out;
}

}  // namespace ward::auth
