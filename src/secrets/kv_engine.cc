#include "secrets/kv_engine.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/log.h"
#include "core/secure_bytes.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "secrets/internal/kv_codec.h"
#include "secrets/internal/kv_json.h"

namespace ward::secrets {
namespace internal {

// One secret as the engine holds it. Immutable once installed in the index: a writer copies
// it, edits the copy and swaps the pointer, so readers holding the old one are unaffected.
struct KvEntry {
  SecretMetadata meta;
  uint64_t revision = 0;  // storage revision of the metadata record
  // Ciphertext (barrier Encrypt output for the version's data key) of every non-destroyed
  // version. Shared between successive entries of the secret, so a copy is cheap.
  std::map<uint64_t, std::shared_ptr<const std::string>> ciphertexts;
};

// The result of an Edit: what to commit for one secret.
struct KvMutation {
  bool changed = false;           // false: nothing to commit
  std::shared_ptr<KvEntry> next;  // the new state; null removes the secret
  std::vector<storage::Op> ops;   // data puts and deletes, committed with the metadata
};

}  // namespace internal

namespace {

namespace json = boost::json;

constexpr uint32_t kDefaultMaxVersions = 10;
constexpr int kMaxCommitAttempts = 5;
constexpr size_t kLoadPageSize = 1000;
constexpr char kCurrentStage[] = "current";
constexpr char kPreviousStage[] = "previous";

// Vault's custom_metadata limits (vault-plugin-secrets-kv, path_metadata.go).
constexpr size_t kMaxCustomMetadataKeys = 64;
constexpr size_t kMaxCustomMetadataKeyLength = 128;
constexpr size_t kMaxCustomMetadataValueLength = 512;
constexpr char kCustomMetadataError[] = "custom_metadata validation failed";

// Zeroes a string holding secret plaintext when the scope ends.
class ZeroOnExit {
 public:
  explicit ZeroOnExit(std::string& s) : s_(s) {}
  ~ZeroOnExit() { core::SecureZero(s_); }
  ZeroOnExit(const ZeroOnExit&) = delete;
  ZeroOnExit& operator=(const ZeroOnExit&) = delete;

 private:
  std::string& s_;
};

absl::Status ValidatePath(std::string_view path) {
  bool ok = !path.empty() && path.front() != '/' && path.back() != '/' &&
            path.find("//") == std::string_view::npos && path.find('\0') == std::string_view::npos;
  if (!ok) return absl::InvalidArgumentError("invalid secret path");
  return absl::OkStatus();
}

bool IsDeleted(const VersionInfo& info, absl::Time now) {
  return info.deletion_time.has_value() && *info.deletion_time <= now;
}

bool IsLive(const VersionInfo& info, absl::Time now) {
  return !info.destroyed && !IsDeleted(info, now);
}

// Vault's validateCheckAndSetOption.
absl::Status CheckCas(const KvConfig& config, const SecretMetadata* meta,
                      std::optional<uint64_t> cas) {
  uint64_t current = meta != nullptr ? meta->current_version : 0;
  if (cas.has_value()) {
    if (*cas != current) {
      return absl::FailedPreconditionError(
          "check-and-set parameter did not match the current version");
    }
  } else if (config.cas_required || (meta != nullptr && meta->cas_required)) {
    return absl::FailedPreconditionError("check-and-set parameter required for this call");
  }
  return absl::OkStatus();
}

// Vault's deletionTime: created + the smaller non-zero of the mount's and the secret's
// delete_version_after; none if both are zero or the mount disables it (negative).
std::optional<absl::Time> DeletionTimeFor(absl::Time created, const KvConfig& config,
                                          const SecretMetadata& meta) {
  absl::Duration mount = config.delete_version_after;
  absl::Duration own = meta.delete_version_after;
  if (mount < absl::ZeroDuration()) return std::nullopt;
  if (mount == absl::ZeroDuration() && own == absl::ZeroDuration()) return std::nullopt;
  absl::Duration d = own;
  if ((mount != absl::ZeroDuration() && mount < d) || d == absl::ZeroDuration()) d = mount;
  return created + d;
}

// Go's %q for the ASCII range (enough for error messages naming a key).
std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\x%02x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

// Approximates Go's unicode.IsPrint over a string: rejects C0 controls, DEL and C1 controls.
bool Printable(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c == 0xc2 && i + 1 < s.size()) {
      unsigned char next = static_cast<unsigned char>(s[i + 1]);
      if (next >= 0x80 && next <= 0x9f) return false;
    }
  }
  return true;
}

// Formats errors as Go's hashicorp/go-multierror does, which Vault returns verbatim.
std::string MultiError(const std::vector<std::string>& errors) {
  if (errors.size() == 1) return absl::StrCat("1 error occurred:\n\t* ", errors[0], "\n\n");
  std::vector<std::string> points;
  points.reserve(errors.size());
  for (const std::string& e : errors) points.push_back(absl::StrCat("* ", e));
  return absl::StrCat(errors.size(), " errors occurred:\n\t", absl::StrJoin(points, "\n\t"),
                      "\n\n");
}

// Vault's validateCustomMetadata, with its messages.
absl::Status ValidateCustomMetadata(const std::map<std::string, std::string>& custom) {
  std::vector<std::string> errors;
  if (custom.size() > kMaxCustomMetadataKeys) {
    errors.push_back(absl::StrCat(kCustomMetadataError, ": payload must contain at most ",
                                  kMaxCustomMetadataKeys, " keys, provided ", custom.size()));
    return absl::InvalidArgumentError(MultiError(errors));
  }
  for (const auto& [key, value] : custom) {
    if (key.empty() || key.size() > kMaxCustomMetadataKeyLength) {
      errors.push_back(absl::StrCat(kCustomMetadataError, ": length of key ", GoQuote(key), " is ",
                                    key.size(),
                                    " but must be 0 < len(key) <= ", kMaxCustomMetadataKeyLength));
    }
    if (value.empty() || value.size() > kMaxCustomMetadataValueLength) {
      errors.push_back(absl::StrCat(
          kCustomMetadataError, ": length of value for key ", GoQuote(key), " is ", value.size(),
          " but must be 0 < len(value) <= ", kMaxCustomMetadataValueLength));
    }
    if (!Printable(key)) {
      errors.push_back(absl::StrCat(kCustomMetadataError, ": key ", GoQuote(key), " (", key,
                                    ") contains unprintable characters"));
    }
    if (!Printable(value)) {
      errors.push_back(absl::StrCat(kCustomMetadataError, ": value for key ", GoQuote(key),
                                    " contains unprintable characters"));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(MultiError(errors));
}

absl::Status ValidateUpdate(const MetadataUpdate& update) {
  if (update.custom_metadata.has_value()) {
    WARD_RETURN_IF_ERROR(ValidateCustomMetadata(*update.custom_metadata));
  }
  if (update.delete_version_after.has_value() &&
      *update.delete_version_after < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("delete_version_after must not be negative");
  }
  if (update.classification.has_value()) {
    if (update.classification->max_cache_age < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("classification max_cache_age must not be negative");
    }
    if (update.classification->rotation_period < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("classification rotation_period must not be negative");
    }
  }
  return absl::OkStatus();
}

bool HasAnyField(const MetadataUpdate& update) {
  return update.max_versions.has_value() || update.cas_required.has_value() ||
         update.delete_version_after.has_value() || update.custom_metadata.has_value() ||
         update.remove_custom_metadata_keys.has_value() || update.classification.has_value();
}

// Sets the fields of `update` on `meta`; custom_metadata replaces (POST) or merges (PATCH).
void ApplyUpdate(SecretMetadata& meta, const MetadataUpdate& update, bool merge) {
  if (update.max_versions.has_value()) meta.max_versions = *update.max_versions;
  if (update.cas_required.has_value()) meta.cas_required = *update.cas_required;
  if (update.delete_version_after.has_value()) {
    meta.delete_version_after = *update.delete_version_after;
  }
  if (update.custom_metadata.has_value()) {
    if (merge) {
      for (const auto& [k, v] : *update.custom_metadata) meta.custom_metadata[k] = v;
    } else {
      meta.custom_metadata = *update.custom_metadata;
    }
  }
  if (update.remove_custom_metadata_keys.has_value()) {
    for (const std::string& k : *update.remove_custom_metadata_keys) meta.custom_metadata.erase(k);
  }
  if (update.classification.has_value()) meta.classification = *update.classification;
}

std::shared_ptr<internal::KvEntry> NewEntry(std::string_view path, absl::Time now) {
  auto entry = std::make_shared<internal::KvEntry>();
  entry->meta.path = std::string(path);
  entry->meta.created_time = now;
  entry->meta.updated_time = now;
  return entry;
}

// Parses `text`, which must hold a JSON object.
// Errors: kInvalidArgument `not_object` if it is not an object; kInvalidArgument if invalid.
absl::StatusOr<json::value> ParseObject(std::string_view text, std::string_view what,
                                        std::string_view not_object) {
  WARD_ASSIGN_OR_RETURN(json::value v, internal::ParseJson(text, what));
  if (!v.is_object()) return absl::InvalidArgumentError(std::string(not_object));
  return v;
}

}  // namespace

KvEngine::KvEngine(barrier::Barrier& barrier, core::Clock& clock, std::string storage_prefix)
    : barrier_(barrier), clock_(clock), prefix_(std::move(storage_prefix)) {}

KvEngine::~KvEngine() = default;

absl::StatusOr<std::unique_ptr<KvEngine>> KvEngine::Create(barrier::Barrier& barrier,
                                                           core::Clock& clock,
                                                           std::string storage_prefix) {
  std::unique_ptr<KvEngine> engine(new KvEngine(barrier, clock, std::move(storage_prefix)));
  WARD_RETURN_IF_ERROR(engine->LoadAll());
  return engine;
}

std::string KvEngine::MetaKey(std::string_view path) const {
  return absl::StrCat(prefix_, "meta/", core::ToAbsl(path));
}

std::string KvEngine::DataKey(std::string_view path, uint64_t version) const {
  // The version as 20 zero-padded digits (as "%020u" would write it, so keys sort by version),
  // without a format string parsed on every read.
  char digits[20];
  for (int i = 19; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + version % 10);
    version /= 10;
  }
  return absl::StrCat(prefix_, "data/", core::ToAbsl(path), "/",
                      absl::string_view(digits, sizeof(digits)));
}

absl::Status KvEngine::LoadAll() {
  KvConfig config;
  absl::StatusOr<std::string> raw_config = barrier_.Get(absl::StrCat(prefix_, "config"));
  if (raw_config.ok()) {
    WARD_ASSIGN_OR_RETURN(config, internal::DecodeConfig(*raw_config));
  } else if (!absl::IsNotFound(raw_config.status())) {
    return raw_config.status();
  }

  // Two range reads instead of two point reads per secret: every metadata record, then every
  // data record, each in pages of kLoadPageSize records (one storage query per page). The
  // index is built in place (one map, no copy: at 100,000 secrets a second map's freed nodes
  // would stay in the heap); its entries are private to this call until installed below.
  Index loading;
  const std::string meta_prefix = absl::StrCat(prefix_, "meta/");
  std::string after;
  while (true) {
    WARD_ASSIGN_OR_RETURN(storage::ScanPage page,
                          barrier_.ScanCiphertext(meta_prefix, after, kLoadPageSize));
    for (storage::KeyedRecord& record : page.records) {
      std::string path = record.key.substr(meta_prefix.size());
      WARD_ASSIGN_OR_RETURN(std::string plaintext, barrier_.Decrypt(record.key, record.value));
      WARD_ASSIGN_OR_RETURN(SecretMetadata meta, internal::DecodeMetadata(plaintext));
      auto entry = std::make_shared<Entry>();
      entry->meta = std::move(meta);
      entry->meta.path = path;
      entry->revision = record.revision;
      loading.emplace_hint(loading.end(), std::move(path), std::move(entry));
    }
    if (!page.more || page.records.empty()) break;
    after = page.records.back().key;
  }

  const std::string data_prefix = absl::StrCat(prefix_, "data/");
  after.clear();
  while (true) {
    WARD_ASSIGN_OR_RETURN(storage::ScanPage page,
                          barrier_.ScanCiphertext(data_prefix, after, kLoadPageSize));
    for (storage::KeyedRecord& record : page.records) {
      WARD_RETURN_IF_ERROR(AddLoadedVersion(loading, data_prefix, record));
    }
    if (!page.more || page.records.empty()) break;
    after = page.records.back().key;
  }

  for (const auto& [path, entry] : loading) {
    for (const auto& [number, info] : entry->meta.versions) {
      if (!info.destroyed && !entry->ciphertexts.contains(number)) {
        // Reads of this version report kDataLoss; the rest of the secret stays usable.
        spdlog::warn("kv: data of version {} of a secret under {} is missing", number, prefix_);
      }
    }
  }

  absl::MutexLock lock(&mu_);
  config_ = config;
  entries_ = std::move(loading);
  return absl::OkStatus();
}

absl::Status KvEngine::AddLoadedVersion(Index& loading, std::string_view data_prefix,
                                        storage::KeyedRecord& record) {
  // <prefix>data/<path>/<20-digit version>: the path may itself contain '/' and digits, so
  // split at the last '/'. Keys of any other shape are not the engine's: ignored.
  constexpr size_t kVersionDigits = 20;
  std::string_view rest = std::string_view(record.key).substr(data_prefix.size());
  const size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || rest.size() - slash - 1 != kVersionDigits) {
    return absl::OkStatus();
  }
  std::optional<uint64_t> number = core::ParseUint64(rest.substr(slash + 1));
  if (!number.has_value()) return absl::OkStatus();
  auto it = loading.find(rest.substr(0, slash));
  if (it == loading.end()) return absl::OkStatus();  // no metadata: ignored
  // Not yet visible to any reader (LoadAll has not installed the index), so still mutable.
  Entry& entry = const_cast<Entry&>(*it->second);
  auto version = entry.meta.versions.find(*number);
  // Data the metadata does not list (or lists as destroyed) is ignored and never opened.
  if (version == entry.meta.versions.end() || version->second.destroyed) return absl::OkStatus();
  // Authenticate it now, as a point read would (a tampered value fails the load with
  // kDataLoss), then keep the stored envelope itself: reads decrypt it exactly as they would a
  // fresh encryption, and the load saves an encryption per version.
  WARD_ASSIGN_OR_RETURN(std::string plaintext, barrier_.Decrypt(record.key, record.value));
  core::SecureZero(plaintext);
  entry.ciphertexts.emplace(*number, std::make_shared<const std::string>(std::move(record.value)));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const KvEngine::Entry>> KvEngine::LoadEntry(
    const std::string& path) {
  absl::StatusOr<storage::Record> record = barrier_.GetRecord(MetaKey(path));
  if (absl::IsNotFound(record.status())) return std::shared_ptr<const Entry>();
  if (!record.ok()) return record.status();
  WARD_ASSIGN_OR_RETURN(SecretMetadata meta, internal::DecodeMetadata(record->value));
  auto entry = std::make_shared<Entry>();
  entry->meta = std::move(meta);
  entry->meta.path = path;
  entry->revision = record->revision;
  for (const auto& [number, info] : entry->meta.versions) {
    if (info.destroyed) continue;
    std::string key = DataKey(path, number);
    absl::StatusOr<std::string> plaintext = barrier_.Get(key);
    if (absl::IsNotFound(plaintext.status())) {
      // Reads of this version report kDataLoss; the rest of the secret stays usable.
      spdlog::warn("kv: data of version {} of a secret under {} is missing", number, prefix_);
      continue;
    }
    if (!plaintext.ok()) return plaintext.status();
    ZeroOnExit zero(*plaintext);
    WARD_ASSIGN_OR_RETURN(std::string ciphertext, barrier_.Encrypt(key, *plaintext));
    entry->ciphertexts.emplace(number, std::make_shared<const std::string>(std::move(ciphertext)));
  }
  return std::shared_ptr<const Entry>(std::move(entry));
}

std::shared_ptr<const KvEngine::Entry> KvEngine::Find(std::string_view path) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = entries_.find(path);
  if (it == entries_.end()) return nullptr;
  return it->second;
}

void KvEngine::Install(const std::string& path, std::shared_ptr<const Entry> entry) {
  std::shared_ptr<const Entry> replaced;  // released after the lock, outside the critical section
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(path);
  if (entry == nullptr) {
    if (it != entries_.end()) {
      replaced = std::move(it->second);
      entries_.erase(it);
    }
  } else if (it == entries_.end()) {
    entries_.emplace(path, std::move(entry));
  } else {
    replaced = std::exchange(it->second, std::move(entry));
  }
}

KvConfig KvEngine::Config() const {
  absl::ReaderMutexLock lock(&mu_);
  return config_;
}

absl::Status KvEngine::RefreshLocked(const std::string& path) {
  WARD_ASSIGN_OR_RETURN(std::shared_ptr<const Entry> entry, LoadEntry(path));
  Install(path, std::move(entry));
  return absl::OkStatus();
}

absl::Mutex& KvEngine::WriteLockFor(std::string_view path) {
  return write_stripes_[std::hash<std::string_view>{}(path) % kWriteStripes];
}

absl::Status KvEngine::Refresh(std::string_view path) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  absl::MutexLock lock(&WriteLockFor(path));
  return RefreshLocked(std::string(path));
}

absl::Status KvEngine::Mutate(const std::string& path, Edit edit) {
  for (int attempt = 1;; ++attempt) {
    std::shared_ptr<const Entry> old = Find(path);
    Mutation mutation;
    WARD_RETURN_IF_ERROR(edit(old.get(), Config(), clock_.Now(), mutation));
    if (!mutation.changed) return absl::OkStatus();

    std::vector<storage::Op> ops;
    ops.reserve(mutation.ops.size() + 2);
    ops.push_back(storage::Op::Check(MetaKey(path), old != nullptr ? old->revision : 0));
    for (storage::Op& op : mutation.ops) ops.push_back(std::move(op));
    if (mutation.next != nullptr) {
      ops.push_back(storage::Op::Put(MetaKey(path), internal::EncodeMetadata(mutation.next->meta)));
    } else {
      ops.push_back(storage::Op::Delete(MetaKey(path)));
    }
    absl::StatusOr<uint64_t> revision = barrier_.Commit(std::move(ops));
    if (revision.ok()) {
      if (mutation.next != nullptr) mutation.next->revision = *revision;
      Install(path, std::move(mutation.next));
      return absl::OkStatus();
    }
    if (!absl::IsAborted(revision.status())) return revision.status();
    // Another writer on the same storage changed this secret since we loaded it.
    if (attempt == kMaxCommitAttempts) {
      return absl::AbortedError("the secret kept changing concurrently; retry the request");
    }
    WARD_RETURN_IF_ERROR(RefreshLocked(path));
  }
}

absl::StatusOr<VersionInfo> KvEngine::AppendVersion(Entry& entry, const std::string& canonical_data,
                                                    const KvConfig& config, absl::Time now,
                                                    Mutation& mutation) {
  SecretMetadata& meta = entry.meta;
  const uint64_t number = meta.current_version + 1;
  VersionInfo info;
  info.version = number;
  info.created_time = now;
  info.deletion_time = DeletionTimeFor(now, config, meta);

  std::string data_key = DataKey(meta.path, number);
  WARD_ASSIGN_OR_RETURN(std::string ciphertext, barrier_.Encrypt(data_key, canonical_data));
  mutation.ops.push_back(storage::Op::Put(std::move(data_key), canonical_data));
  entry.ciphertexts[number] = std::make_shared<const std::string>(std::move(ciphertext));

  meta.current_version = number;
  meta.versions[number] = info;
  meta.updated_time = now;

  std::string current(kCurrentStage);
  if (auto it = meta.stages.find(current); it != meta.stages.end()) {
    meta.stages[std::string(kPreviousStage)] = it->second;
  }
  meta.stages[current] = number;

  // Vault's AddVersion: keep max(secret, mount) versions (10 if both unset); the window
  // [oldest_version, current_version] slides, so oldest_version stays 0 until the first trim.
  uint32_t max_versions = std::max(meta.max_versions, config.max_versions);
  if (max_versions == 0) max_versions = kDefaultMaxVersions;
  if (meta.current_version - meta.oldest_version >= max_versions) {
    const uint64_t last_removed = meta.current_version - max_versions;
    for (auto it = meta.versions.begin(); it != meta.versions.end() && it->first <= last_removed;) {
      mutation.ops.push_back(storage::Op::Delete(DataKey(meta.path, it->first)));
      entry.ciphertexts.erase(it->first);
      it = meta.versions.erase(it);
    }
    meta.oldest_version = last_removed + 1;
    for (auto it = meta.stages.begin(); it != meta.stages.end();) {
      it = it->second <= last_removed ? meta.stages.erase(it) : std::next(it);
    }
  }
  mutation.changed = true;
  return info;
}

absl::StatusOr<std::string> KvEngine::DecryptVersion(const Entry& entry, uint64_t number) const {
  auto it = entry.ciphertexts.find(number);
  if (it == entry.ciphertexts.end()) {
    return absl::DataLossError(absl::StrCat("the data of version ", number, " is missing"));
  }
  return barrier_.Decrypt(DataKey(entry.meta.path, number), *it->second);
}

absl::StatusOr<KvConfig> KvEngine::ReadConfig() const { return Config(); }

absl::Status KvEngine::WriteConfig(const KvConfig& config) {
  KvConfig stored = config;
  if (stored.delete_version_after < absl::ZeroDuration()) {
    stored.delete_version_after = absl::Seconds(-1);
  }
  absl::MutexLock lock(&config_mu_);
  WARD_RETURN_IF_ERROR(
      barrier_.Put(absl::StrCat(prefix_, "config"), internal::EncodeConfig(stored)).status());
  absl::MutexLock index_lock(&mu_);
  config_ = stored;
  return absl::OkStatus();
}

absl::StatusOr<ReadResult> KvEngine::Read(std::string_view path, uint64_t version) const {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  std::shared_ptr<const Entry> entry = Find(path);
  if (entry == nullptr) return absl::NotFoundError("no secret at this path");
  const SecretMetadata& meta = entry->meta;
  const uint64_t number = version == 0 ? meta.current_version : version;
  auto it = meta.versions.find(number);
  if (it == meta.versions.end()) return absl::NotFoundError("no such version");
  ReadResult result;
  result.version = it->second;
  result.custom_metadata = meta.custom_metadata;
  if (!IsLive(it->second, clock_.Now())) return result;
  WARD_ASSIGN_OR_RETURN(result.data_json, DecryptVersion(*entry, number));
  // The version's ciphertext: immutable, and replaced by a new object whenever the data is
  // written again (a version number can come back after its secret was deleted).
  result.data_identity = entry->ciphertexts.at(number);
  return result;
}

absl::StatusOr<WriteResult> KvEngine::Write(std::string_view path, std::string_view data_json,
                                            std::optional<uint64_t> cas) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  WARD_ASSIGN_OR_RETURN(json::value data,
                        ParseObject(data_json, "data", "data must be a JSON object"));
  WARD_ASSIGN_OR_RETURN(std::string canonical, internal::SerializeCanonical(data));
  ZeroOnExit zero(canonical);
  const std::string key(path);
  WriteResult result;
  absl::MutexLock lock(&WriteLockFor(path));
  WARD_RETURN_IF_ERROR(
      Mutate(key,
             [&](const Entry* old, const KvConfig& config, absl::Time now,
                 Mutation& mutation) -> absl::Status {
               WARD_RETURN_IF_ERROR(CheckCas(config, old != nullptr ? &old->meta : nullptr, cas));
               mutation.next = old != nullptr ? std::make_shared<Entry>(*old) : NewEntry(key, now);
               WARD_ASSIGN_OR_RETURN(
                   result.version, AppendVersion(*mutation.next, canonical, config, now, mutation));
               result.custom_metadata = mutation.next->meta.custom_metadata;
               return absl::OkStatus();
             }));
  return result;
}

absl::StatusOr<WriteResult> KvEngine::Patch(std::string_view path,
                                            std::string_view merge_patch_json,
                                            std::optional<uint64_t> cas) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  WARD_ASSIGN_OR_RETURN(json::value patch,
                        ParseObject(merge_patch_json, "patch", "patch must be a JSON object"));
  const std::string key(path);
  WriteResult result;
  absl::MutexLock lock(&WriteLockFor(path));
  WARD_RETURN_IF_ERROR(Mutate(
      key,
      [&](const Entry* old, const KvConfig& config, absl::Time now,
          Mutation& mutation) -> absl::Status {
        // Vault's order: existence, then CAS, then the current version must be live.
        if (old == nullptr) return absl::NotFoundError("no secret at this path");
        WARD_RETURN_IF_ERROR(CheckCas(config, &old->meta, cas));
        auto current = old->meta.versions.find(old->meta.current_version);
        if (current == old->meta.versions.end() || !IsLive(current->second, now)) {
          return absl::NotFoundError("the current version is missing, deleted or destroyed");
        }
        WARD_ASSIGN_OR_RETURN(std::string plaintext,
                              DecryptVersion(*old, old->meta.current_version));
        ZeroOnExit zero_plaintext(plaintext);
        WARD_ASSIGN_OR_RETURN(json::value data, internal::ParseJson(plaintext, "stored data"));
        internal::ApplyMergePatch(data, patch);
        WARD_ASSIGN_OR_RETURN(std::string canonical, internal::SerializeCanonical(data));
        ZeroOnExit zero_canonical(canonical);
        mutation.next = std::make_shared<Entry>(*old);
        WARD_ASSIGN_OR_RETURN(result.version,
                              AppendVersion(*mutation.next, canonical, config, now, mutation));
        result.custom_metadata = mutation.next->meta.custom_metadata;
        return absl::OkStatus();
      }));
  return result;
}

absl::Status KvEngine::DeleteLatest(std::string_view path) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  const std::string key(path);
  absl::MutexLock lock(&WriteLockFor(path));
  return Mutate(
      key,
      [&](const Entry* old, const KvConfig&, absl::Time now, Mutation& mutation) -> absl::Status {
        if (old == nullptr) return absl::OkStatus();
        auto it = old->meta.versions.find(old->meta.current_version);
        if (it == old->meta.versions.end() || !IsLive(it->second, now)) return absl::OkStatus();
        mutation.next = std::make_shared<Entry>(*old);
        mutation.next->meta.versions[old->meta.current_version].deletion_time = now;
        mutation.changed = true;
        return absl::OkStatus();
      });
}

absl::Status KvEngine::DeleteVersions(std::string_view path,
                                      const std::vector<uint64_t>& versions) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  if (versions.empty()) return absl::InvalidArgumentError("No version number provided");
  const std::string key(path);
  absl::MutexLock lock(&WriteLockFor(path));
  return Mutate(
      key,
      [&](const Entry* old, const KvConfig&, absl::Time now, Mutation& mutation) -> absl::Status {
        if (old == nullptr) return absl::OkStatus();
        mutation.next = std::make_shared<Entry>(*old);
        for (uint64_t number : versions) {
          auto it = mutation.next->meta.versions.find(number);
          if (it == mutation.next->meta.versions.end() || !IsLive(it->second, now)) continue;
          it->second.deletion_time = now;
          mutation.changed = true;
        }
        return absl::OkStatus();
      });
}

absl::Status KvEngine::UndeleteVersions(std::string_view path,
                                        const std::vector<uint64_t>& versions) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  if (versions.empty()) return absl::InvalidArgumentError("No version number provided");
  const std::string key(path);
  absl::MutexLock lock(&WriteLockFor(path));
  return Mutate(key,
                [&](const Entry* old, const KvConfig& config, absl::Time now,
                    Mutation& mutation) -> absl::Status {
                  if (old == nullptr) return absl::OkStatus();
                  mutation.next = std::make_shared<Entry>(*old);
                  SecretMetadata& meta = mutation.next->meta;
                  for (uint64_t number : versions) {
                    auto it = meta.versions.find(number);
                    if (it == meta.versions.end() || it->second.destroyed) continue;
                    // As Vault: the version comes back, with delete_version_after re-armed from
                    // now.
                    std::optional<absl::Time> deletion = DeletionTimeFor(now, config, meta);
                    if (it->second.deletion_time != deletion) {
                      it->second.deletion_time = deletion;
                      mutation.changed = true;
                    }
                  }
                  return absl::OkStatus();
                });
}

absl::Status KvEngine::DestroyVersions(std::string_view path,
                                       const std::vector<uint64_t>& versions) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  if (versions.empty()) return absl::InvalidArgumentError("no version number provided");
  const std::string key(path);
  absl::MutexLock lock(&WriteLockFor(path));
  return Mutate(
      key, [&](const Entry* old, const KvConfig&, absl::Time, Mutation& mutation) -> absl::Status {
        if (old == nullptr) return absl::OkStatus();
        mutation.next = std::make_shared<Entry>(*old);
        for (uint64_t number : versions) {
          auto it = mutation.next->meta.versions.find(number);
          if (it == mutation.next->meta.versions.end() || it->second.destroyed) continue;
          it->second.destroyed = true;
          mutation.next->ciphertexts.erase(number);
          mutation.ops.push_back(storage::Op::Delete(DataKey(key, number)));
          mutation.changed = true;
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<SecretMetadata> KvEngine::ReadMetadata(std::string_view path) const {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  std::shared_ptr<const Entry> entry = Find(path);
  if (entry == nullptr) return absl::NotFoundError("no secret at this path");
  return entry->meta;
}

absl::Status KvEngine::WriteMetadata(std::string_view path, const MetadataUpdate& update) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  if (update.remove_custom_metadata_keys.has_value()) {
    return absl::InvalidArgumentError(
        "remove_custom_metadata_keys is only valid for a metadata patch");
  }
  WARD_RETURN_IF_ERROR(ValidateUpdate(update));
  if (!HasAnyField(update)) return absl::OkStatus();  // Vault writes nothing either
  const std::string key(path);
  absl::MutexLock lock(&WriteLockFor(path));
  return Mutate(
      key,
      [&](const Entry* old, const KvConfig&, absl::Time now, Mutation& mutation) -> absl::Status {
        mutation.next = old != nullptr ? std::make_shared<Entry>(*old) : NewEntry(key, now);
        ApplyUpdate(mutation.next->meta, update, /*merge=*/false);
        mutation.changed = true;
        return absl::OkStatus();
      });
}

absl::Status KvEngine::PatchMetadata(std::string_view path, const MetadataUpdate& update) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  WARD_RETURN_IF_ERROR(ValidateUpdate(update));
  const std::string key(path);
  absl::MutexLock lock(&WriteLockFor(path));
  return Mutate(
      key, [&](const Entry* old, const KvConfig&, absl::Time, Mutation& mutation) -> absl::Status {
        if (old == nullptr) return absl::NotFoundError("no secret at this path");
        if (!HasAnyField(update)) return absl::OkStatus();
        mutation.next = std::make_shared<Entry>(*old);
        ApplyUpdate(mutation.next->meta, update, /*merge=*/true);
        // The merge may push the map over the key-count limit even though the patch alone is
        // within it.
        WARD_RETURN_IF_ERROR(ValidateCustomMetadata(mutation.next->meta.custom_metadata));
        mutation.changed = true;
        return absl::OkStatus();
      });
}

absl::Status KvEngine::DeleteMetadata(std::string_view path) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  const std::string key(path);
  absl::MutexLock lock(&WriteLockFor(path));
  return Mutate(
      key, [&](const Entry* old, const KvConfig&, absl::Time, Mutation& mutation) -> absl::Status {
        if (old == nullptr) return absl::OkStatus();
        for (const auto& [number, info] : old->meta.versions) {
          if (!info.destroyed) mutation.ops.push_back(storage::Op::Delete(DataKey(key, number)));
        }
        mutation.next = nullptr;
        mutation.changed = true;
        return absl::OkStatus();
      });
}

absl::StatusOr<ListResult> KvEngine::List(std::string_view folder, std::string_view after,
                                          size_t limit) const {
  if (!folder.empty() && folder.back() == '/') folder.remove_suffix(1);
  if (!folder.empty()) WARD_RETURN_IF_ERROR(ValidatePath(folder));
  const std::string prefix =
      folder.empty() ? std::string() : absl::StrCat(core::ToAbsl(folder), "/");

  std::vector<std::string> children;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = entries_.lower_bound(prefix);
    while (it != entries_.end() && std::string_view(it->first).substr(0, prefix.size()) == prefix) {
      std::string_view rest = std::string_view(it->first).substr(prefix.size());
      size_t slash = rest.find('/');
      if (slash == std::string_view::npos) {
        children.emplace_back(rest);
        ++it;
        continue;
      }
      children.emplace_back(rest.substr(0, slash + 1));
      // Skip the rest of the sub-folder: every key in it sorts before "<name>0" ('0' follows
      // '/' in ASCII).
      it = entries_.lower_bound(absl::StrCat(prefix, core::ToAbsl(rest.substr(0, slash)), "0"));
    }
  }
  std::sort(children.begin(), children.end());
  children.erase(std::unique(children.begin(), children.end()), children.end());

  ListResult result;
  auto begin = children.begin();
  if (!after.empty()) {
    begin = std::upper_bound(children.begin(), children.end(), after,
                             [](std::string_view a, const std::string& b) { return a < b; });
  }
  for (auto it = begin; it != children.end() && (limit == 0 || result.keys.size() < limit); ++it) {
    result.keys.push_back(std::move(*it));
  }
  if (result.keys.empty()) return absl::NotFoundError("no keys in this folder");
  return result;
}

absl::StatusOr<std::pair<std::string, VersionInfo>> KvEngine::Subkeys(std::string_view path,
                                                                      uint64_t version,
                                                                      int depth) const {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  std::shared_ptr<const Entry> entry = Find(path);
  if (entry == nullptr) return absl::NotFoundError("no secret at this path");
  const uint64_t number = version == 0 ? entry->meta.current_version : version;
  auto it = entry->meta.versions.find(number);
  if (it == entry->meta.versions.end()) return absl::NotFoundError("no such version");
  if (!IsLive(it->second, clock_.Now())) return std::make_pair(std::string("null"), it->second);
  WARD_ASSIGN_OR_RETURN(std::string plaintext, DecryptVersion(*entry, number));
  ZeroOnExit zero(plaintext);
  WARD_ASSIGN_OR_RETURN(json::value data, internal::ParseJson(plaintext, "stored data"));
  const json::object* obj = data.if_object();
  if (obj == nullptr) return absl::DataLossError("stored data is not a JSON object");
  WARD_ASSIGN_OR_RETURN(std::string subkeys,
                        internal::SerializeCanonical(internal::SubkeysOf(*obj, depth)));
  return std::make_pair(std::move(subkeys), it->second);
}

absl::Status KvEngine::SetStage(std::string_view path, std::string_view stage, uint64_t version) {
  WARD_RETURN_IF_ERROR(ValidatePath(path));
  if (stage.empty()) return absl::InvalidArgumentError("stage label must not be empty");
  const std::string key(path);
  const std::string label(stage);
  absl::MutexLock lock(&WriteLockFor(path));
  return Mutate(
      key,
      [&](const Entry* old, const KvConfig&, absl::Time now, Mutation& mutation) -> absl::Status {
        if (old == nullptr) return absl::NotFoundError("no secret at this path");
        auto it = old->meta.versions.find(version);
        if (it == old->meta.versions.end() || !IsLive(it->second, now)) {
          return absl::NotFoundError("no live version with this number");
        }
        auto stage_it = old->meta.stages.find(label);
        if (stage_it != old->meta.stages.end() && stage_it->second == version) {
          return absl::OkStatus();
        }
        mutation.next = std::make_shared<Entry>(*old);
        mutation.next->meta.stages[label] = version;
        mutation.changed = true;
        return absl::OkStatus();
      });
}

}  // namespace ward::secrets
