#include "api/mount_table.h"

#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/hmac.h"
#include "crypto/random.h"

namespace ward::api {
namespace {

namespace json = boost::json;

constexpr char kMountsKey[] = "core/mounts";

std::string StoragePrefix(const MountEntry& e) { return "logical/" + e.uuid + "/"; }

json::value ToJson(const MountEntry& e) {
  json::object options;
  for (const auto& [k, v] : e.options) options[k] = v;
  return json::object{{"path", e.path},         {"type", e.type},       {"description", e.description},
                      {"uuid", e.uuid},         {"accessor", e.accessor}, {"options", options}};
}

absl::StatusOr<MountEntry> FromJson(const json::value& v) {
  if (!v.is_object()) return absl::DataLossError("mount table entry is not an object");
  const json::object& o = v.as_object();
  MountEntry e;
  auto str = [&o](const char* k) -> std::string {
    auto it = o.find(k);
    return (it != o.end() && it->value().is_string()) ? std::string(it->value().as_string()) : "";
  };
  e.path = str("path");
  e.type = str("type");
  e.description = str("description");
  e.uuid = str("uuid");
  e.accessor = str("accessor");
  if (auto it = o.find("options"); it != o.end() && it->value().is_object()) {
    for (const auto& kv : it->value().as_object()) {
      if (kv.value().is_string()) e.options[std::string(kv.key())] = std::string(kv.value().as_string());
    }
  }
  if (e.path.empty() || e.uuid.empty()) return absl::DataLossError("mount table entry is incomplete");
  return e;
}

bool Reserved(std::string_view path) {
  for (std::string_view r : {"sys/", "auth/", "cubbyhole/", "identity/"}) {
    if (path.substr(0, r.size()) == r) return true;
  }
  return false;
}

constexpr char kPkiType[] = "pki";

// A new table entry of `type` ("kv" or "pki") with a fresh uuid and accessor.
absl::StatusOr<MountEntry> NewEntry(std::string path, std::string type, std::string description) {
  MountEntry e;
  e.path = std::move(path);
  e.type = std::move(type);
  e.description = std::move(description);
  WARD_ASSIGN_OR_RETURN(e.uuid, crypto::RandomUuid());
  WARD_ASSIGN_OR_RETURN(std::string acc, crypto::RandomUuid());
  e.accessor = e.type + "_" + acc.substr(0, 8);
  if (e.type == "kv") e.options["version"] = "2";
  return e;
}

absl::StatusOr<MountEntry> NewKvEntry(std::string path, std::string description) {
  return NewEntry(std::move(path), "kv", std::move(description));
}

// The engine a table entry names: exactly one of the pair is set.
struct Engines {
  std::shared_ptr<secrets::KvEngine> kv;
  std::shared_ptr<pki::PkiEngine> pki;
};

absl::StatusOr<Engines> CreateEngine(barrier::Barrier& barrier, core::Clock& clock,
                                     const MountEntry& e) {
  Engines out;
  if (e.type == kPkiType) {
    WARD_ASSIGN_OR_RETURN(out.pki, pki::PkiEngine::Create(barrier, clock, StoragePrefix(e)));
  } else {
    WARD_ASSIGN_OR_RETURN(out.kv, secrets::KvEngine::Create(barrier, clock, StoragePrefix(e)));
  }
  return out;
}

}  // namespace

std::string NormaliseMountPath(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::string out(path);
  if (!out.empty() && out.back() != '/') out.push_back('/');
  return out;
}

absl::StatusOr<std::unique_ptr<MountTable>> MountTable::Create(barrier::Barrier& barrier,
                                                               core::Clock& clock) {
  std::unique_ptr<MountTable> table(new MountTable(barrier, clock));
  std::vector<MountEntry> entries;
  auto stored = barrier.Get(kMountsKey);
  if (stored.ok()) {
    boost::system::error_code ec;
    json::value v = json::parse(*stored, ec);
    if (ec || !v.is_object() || !v.as_object().contains("mounts") ||
        !v.as_object().at("mounts").is_array()) {
      return absl::DataLossError("mount table is corrupt");
    }
    for (const json::value& item : v.as_object().at("mounts").as_array()) {
      WARD_ASSIGN_OR_RETURN(MountEntry e, FromJson(item));
      entries.push_back(std::move(e));
    }
  } else if (stored.status().code() == absl::StatusCode::kNotFound) {
    WARD_ASSIGN_OR_RETURN(MountEntry e, NewKvEntry("secret/", "key/value secret storage"));
    entries.push_back(std::move(e));
    absl::MutexLock lock(&table->mu_);
    WARD_RETURN_IF_ERROR(table->Persist(entries));
  } else {
    return stored.status();
  }
  absl::MutexLock lock(&table->mu_);
  for (MountEntry& e : entries) {
    WARD_ASSIGN_OR_RETURN(Engines engines, CreateEngine(barrier, clock, e));
    if (engines.pki != nullptr) table->pki_engines_[e.path] = std::move(engines.pki);
    if (engines.kv != nullptr) table->engines_[e.path] = std::move(engines.kv);
    const std::string path = e.path;
    table->entries_[path] = std::make_shared<const MountEntry>(std::move(e));
  }
  return table;
}

absl::Status MountTable::Persist(const std::vector<MountEntry>& entries) {
  json::array mounts;
  for (const MountEntry& e : entries) mounts.push_back(ToJson(e));
  return barrier_.Put(kMountsKey, json::serialize(json::object{{"mounts", mounts}})).status();
}

std::optional<MountMatch> MountTable::Find(std::string_view path) const {
  absl::ReaderMutexLock lock(&mu_);
  const std::shared_ptr<const MountEntry>* found = nullptr;
  for (const auto& [mount_path, entry] : entries_) {
    std::string_view m = mount_path;
    // A request for the mount itself may omit the trailing slash ("secret" for "secret/").
    bool matches = path.substr(0, m.size()) == m || path == m.substr(0, m.size() - 1);
    if (matches && (found == nullptr || m.size() > (*found)->path.size())) found = &entry;
  }
  if (found == nullptr) return std::nullopt;
  const MountEntry* best = found->get();
  MountMatch match;
  match.entry = *found;
  if (auto kv = engines_.find(best->path); kv != engines_.end()) match.engine = kv->second;
  if (auto pki = pki_engines_.find(best->path); pki != pki_engines_.end()) match.pki = pki->second;
  match.rest = path.size() > best->path.size() ? std::string(path.substr(best->path.size())) : "";
  return match;
}

std::vector<MountEntry> MountTable::List() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<MountEntry> out;
  for (const auto& [path, entry] : entries_) out.push_back(*entry);
  return out;
}

absl::Status MountTable::Mount(std::string_view path_in, std::string_view type,
                               std::string_view description,
                               const std::map<std::string, std::string>& options) {
  std::string path = NormaliseMountPath(path_in);
  if (path.empty() || path == "/") return absl::InvalidArgumentError("mount path must not be empty");
  if (Reserved(path)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot mount at reserved path \"", path, "\""));
  }
  auto version = options.find("version");
  bool kv2 = type == "kv-v2" || (type == "kv" && version != options.end() && version->second == "2");
  bool is_pki = type == kPkiType;
  if (!kv2 && !is_pki) {
    if (type == "kv") {
      return absl::InvalidArgumentError(
          "only KV version 2 is supported: use type \"kv-v2\" or options version \"2\"");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("plugin not found in the catalog: ", core::ToAbsl(type)));
  }
  absl::MutexLock write_lock(&write_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [existing, entry] : entries_) {
      if (absl::StartsWith(path, existing) || absl::StartsWith(existing, path)) {
        return absl::InvalidArgumentError(absl::StrCat("path is already in use at ", existing));
      }
    }
  }
  WARD_ASSIGN_OR_RETURN(MountEntry entry,
                        NewEntry(path, is_pki ? kPkiType : "kv", std::string(description)));
  // The uuid is new, so the engine starts empty (and loads nothing from storage).
  WARD_ASSIGN_OR_RETURN(Engines engines, CreateEngine(barrier_, clock_, entry));
  absl::MutexLock lock(&mu_);
  std::vector<MountEntry> next;
  for (const auto& [p, e] : entries_) next.push_back(*e);
  next.push_back(entry);
  WARD_RETURN_IF_ERROR(Persist(next));
  if (engines.pki != nullptr) pki_engines_[path] = std::move(engines.pki);
  if (engines.kv != nullptr) engines_[path] = std::move(engines.kv);
  entries_[path] = std::make_shared<const MountEntry>(std::move(entry));
  return absl::OkStatus();
}

absl::Status MountTable::Unmount(std::string_view path_in) {
  std::string path = NormaliseMountPath(path_in);
  absl::MutexLock write_lock(&write_mu_);
  MountEntry entry;
  std::vector<MountEntry> next;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(path);
    if (it == entries_.end()) return absl::OkStatus();
    entry = *it->second;
    for (const auto& [p, e] : entries_) {
      if (p != path) next.push_back(*e);
    }
    // Remove from the table first: a crash half-way leaves orphaned ciphertext, never a mount
    // pointing at half-deleted data.
    WARD_RETURN_IF_ERROR(Persist(next));
    entries_.erase(path);
    engines_.erase(path);
    pki_engines_.erase(path);
  }
  std::string prefix = StoragePrefix(entry);
  while (true) {
    WARD_ASSIGN_OR_RETURN(storage::ListPage page, barrier_.List(prefix, "", 1000));
    if (page.keys.empty()) break;
    std::vector<storage::Op> ops;
    for (std::string& k : page.keys) ops.push_back(storage::Op::Delete(std::move(k)));
    WARD_RETURN_IF_ERROR(barrier_.Commit(std::move(ops)).status());
  }
  return absl::OkStatus();
}

}  // namespace ward::api
