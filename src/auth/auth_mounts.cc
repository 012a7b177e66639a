#include "auth/auth_mounts.h"

#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/random.h"

namespace ward::auth {
namespace {

namespace json = boost::json;

constexpr char kTableKey[] = "core/auth-mounts";
constexpr int64_t kFormatVersion = 1;
constexpr size_t kListPageSize = 1000;

std::string StoragePrefix(const AuthMountEntry& e) { return "auth/" + e.uuid + "/"; }

std::string Normalise(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::string out(path);
  if (!out.empty() && out.back() != '/') out.push_back('/');
  return out;
}

absl::StatusOr<AuthMountEntry> NewEntry(std::string path, std::string type,
                                        std::string description) {
  AuthMountEntry e;
  e.path = std::move(path);
  e.type = std::move(type);
  e.description = std::move(description);
  WARD_ASSIGN_OR_RETURN(e.uuid, crypto::RandomUuid());
  WARD_ASSIGN_OR_RETURN(std::string acc, crypto::RandomUuid());
  e.accessor = absl::StrCat("auth_", e.type, "_", acc.substr(0, 8));
  return e;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuthMountTable>> AuthMountTable::Create(barrier::Barrier& barrier,
                                                                       core::Clock& clock) {
  std::unique_ptr<AuthMountTable> table(new AuthMountTable(barrier, clock));
  std::map<std::string, AuthMountEntry> entries;
  absl::StatusOr<std::string> stored = barrier.Get(kTableKey);
  if (stored.ok()) {
    auto corrupt = [] { return absl::DataLossError("auth mount table is corrupt"); };
    json::error_code ec;
    json::value v = json::parse(*stored, ec);
    if (ec || !v.is_object()) return corrupt();
    const json::object& o = v.get_object();
    const json::value* version = o.if_contains("version");
    const json::value* mounts = o.if_contains("mounts");
    if (version == nullptr || !version->is_int64() || version->get_int64() != kFormatVersion ||
        mounts == nullptr || !mounts->is_array()) {
      return corrupt();
    }
    for (const json::value& item : mounts->get_array()) {
      if (!item.is_object()) return corrupt();
      const json::object& m = item.get_object();
      AuthMountEntry e;
      for (auto [name, field] : {std::pair<const char*, std::string*>{"path", &e.path},
                                 {"type", &e.type},
                                 {"description", &e.description},
                                 {"uuid", &e.uuid},
                                 {"accessor", &e.accessor}}) {
        const json::value* f = m.if_contains(name);
        if (f == nullptr || !f->is_string()) return corrupt();
        *field = std::string(f->get_string());
      }
      if (e.path.empty() || e.uuid.empty()) return corrupt();
      entries[e.path] = std::move(e);
    }
  } else if (absl::IsNotFound(stored.status())) {
    WARD_ASSIGN_OR_RETURN(AuthMountEntry token,
                          NewEntry("token/", "token", "token based credentials"));
    entries[token.path] = std::move(token);
    WARD_RETURN_IF_ERROR(table->Persist(entries));
  } else {
    return stored.status();
  }
  std::map<std::string, std::shared_ptr<AppRoleStore>> stores;
  std::map<std::string, std::shared_ptr<CertAuthStore>> cert_stores;
  for (const auto& [path, e] : entries) {
    if (e.type == "cert") {
      WARD_ASSIGN_OR_RETURN(std::unique_ptr<CertAuthStore> store,
                            CertAuthStore::Create(barrier, clock, StoragePrefix(e)));
      cert_stores[path] = std::move(store);
      continue;
    }
    if (e.type != "approle") continue;
    WARD_ASSIGN_OR_RETURN(std::unique_ptr<AppRoleStore> store,
                          AppRoleStore::Create(barrier, clock, StoragePrefix(e)));
    stores[path] = std::move(store);
  }
  absl::MutexLock lock(&table->mu_);
  table->entries_ = std::move(entries);
  table->approles_ = std::move(stores);
  table->certs_ = std::move(cert_stores);
  return table;
}

absl::Status AuthMountTable::Persist(const std::map<std::string, AuthMountEntry>& entries) {
  json::array mounts;
  for (const auto& [path, e] : entries) {
    mounts.push_back(json::object{{"path", e.path},
                                  {"type", e.type},
                                  {"description", e.description},
                                  {"uuid", e.uuid},
                                  {"accessor", e.accessor}});
  }
  json::object o{{"version", kFormatVersion}, {"mounts", std::move(mounts)}};
  return barrier_.Put(kTableKey, json::serialize(o)).status();
}

std::vector<AuthMountEntry> AuthMountTable::List() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<AuthMountEntry> out;
  for (const auto& [path, e] : entries_) out.push_back(e);
  return out;
}

std::optional<AuthMountEntry> AuthMountTable::Get(std::string_view path) const {
  std::string p = Normalise(path);
  absl::ReaderMutexLock lock(&mu_);
  auto it = entries_.find(p);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

std::optional<AppRoleMatch> AuthMountTable::FindAppRole(std::string_view path) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [mount_path, store] : approles_) {
    if (path.substr(0, mount_path.size()) != mount_path) continue;
    AppRoleMatch match;
    match.entry = entries_.at(mount_path);
    match.store = store;
    match.rest = std::string(path.substr(mount_path.size()));
    return match;
  }
  return std::nullopt;
}

std::optional<CertMount> AuthMountTable::FindCert(std::string_view path) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [mount_path, store] : certs_) {
    if (path.substr(0, mount_path.size()) != mount_path) continue;
    return CertMount{entries_.at(mount_path), store, std::string(path.substr(mount_path.size()))};
  }
  return std::nullopt;
}

std::vector<CertMount> AuthMountTable::CertMounts() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<CertMount> out;
  for (const auto& [mount_path, store] : certs_) {
    out.push_back(CertMount{entries_.at(mount_path), store, ""});
  }
  return out;
}

absl::Status AuthMountTable::Enable(std::string_view path_in, std::string_view type,
                                    std::string_view description) {
  std::string path = Normalise(path_in);
  if (path.empty()) return absl::InvalidArgumentError("auth path must not be empty");
  if (type != "approle" && type != "cert") {
    if (type == "token") {
      return absl::InvalidArgumentError("token credential backend cannot be instantiated");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unknown auth method type \"", core::ToAbsl(type),
                     "\": only \"approle\" and \"cert\" can be enabled"));
  }
  absl::MutexLock write_lock(&write_mu_);
  std::map<std::string, AuthMountEntry> next;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [existing, entry] : entries_) {
      if (absl::StartsWith(path, existing) || absl::StartsWith(existing, path)) {
        return absl::InvalidArgumentError(
            absl::StrCat("path is already in use at auth/", existing));
      }
    }
    next = entries_;
  }
  WARD_ASSIGN_OR_RETURN(AuthMountEntry entry,
                        NewEntry(path, std::string(type), std::string(description)));
  // A fresh uuid names an empty prefix, so the store starts empty.
  std::unique_ptr<AppRoleStore> store;
  std::unique_ptr<CertAuthStore> cert_store;
  if (type == "cert") {
    WARD_ASSIGN_OR_RETURN(cert_store, CertAuthStore::Create(barrier_, clock_, StoragePrefix(entry)));
  } else {
    WARD_ASSIGN_OR_RETURN(store, AppRoleStore::Create(barrier_, clock_, StoragePrefix(entry)));
  }
  next[path] = entry;
  WARD_RETURN_IF_ERROR(Persist(next));
  absl::MutexLock lock(&mu_);
  entries_ = std::move(next);
  if (cert_store != nullptr) {
    certs_[path] = std::move(cert_store);
  } else {
    approles_[path] = std::move(store);
  }
  return absl::OkStatus();
}

absl::Status AuthMountTable::Disable(std::string_view path_in) {
  std::string path = Normalise(path_in);
  if (path == "token/") {
    return absl::InvalidArgumentError("token credential backend cannot be disabled");
  }
  absl::MutexLock write_lock(&write_mu_);
  std::map<std::string, AuthMountEntry> next;
  AuthMountEntry entry;
  std::shared_ptr<AppRoleStore> store;
  std::shared_ptr<CertAuthStore> cert_store;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = entries_.find(path);
    if (it == entries_.end()) return absl::OkStatus();
    entry = it->second;
    next = entries_;
    next.erase(path);
    auto s = approles_.find(path);
    if (s != approles_.end()) store = s->second;
    auto c = certs_.find(path);
    if (c != certs_.end()) cert_store = c->second;
  }
  // Remove from the table first: a crash half-way leaves orphaned ciphertext, never a mount whose
  // data is half deleted.
  WARD_RETURN_IF_ERROR(Persist(next));
  {
    absl::MutexLock lock(&mu_);
    entries_ = std::move(next);
    approles_.erase(path);
    certs_.erase(path);
  }
  if (store != nullptr) store->Close();
  if (cert_store != nullptr) cert_store->Close();
  std::string prefix = StoragePrefix(entry);
  while (true) {
    WARD_ASSIGN_OR_RETURN(storage::ListPage page, barrier_.List(prefix, "", kListPageSize));
    if (page.keys.empty()) break;
    std::vector<storage::Op> ops;
    for (std::string& k : page.keys) ops.push_back(storage::Op::Delete(std::move(k)));
    WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  }
  spdlog::info("event=auth_disabled path={} type={}", path, entry.type);
  return absl::OkStatus();
}

}  // namespace ward::auth
