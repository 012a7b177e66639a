#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "barrier/barrier.h"
#include "core/clock.h"

namespace ward::secrets {

namespace internal {
struct KvEntry;
struct KvMutation;
}  // namespace internal

// Mount-wide settings of a KV v2 mount (`<mount>/config`).
struct KvConfig {
  uint32_t max_versions = 0;  // versions kept per secret; 0 means the default, 10
  bool cas_required = false;  // every write of every secret must carry `cas`
  // A new version is soft-deleted this long after it is written; zero: unset (a secret's own
  // setting still applies); negative: disabled for every secret (stored as -1s, as Vault).
  absl::Duration delete_version_after = absl::ZeroDuration();
};

// What a caching client should do when it cannot reach Ward (Ward addition).
enum class OutageBehavior { kUnset, kServeStale, kFailClosed };

// Per-secret classification (Ward addition), kept with the metadata.
struct Classification {
  std::string owner;
  absl::Duration max_cache_age = absl::ZeroDuration();  // zero: unset
  OutageBehavior outage_behavior = OutageBehavior::kUnset;
  absl::Duration rotation_period = absl::ZeroDuration();  // zero: no scheduled rotation
};

// Facts about one version of a secret.
struct VersionInfo {
  uint64_t version = 0;
  absl::Time created_time;
  // When the version is (or was) soft-deleted; it reads as deleted once this is <= now.
  std::optional<absl::Time> deletion_time;
  bool destroyed = false;  // data removed for good
};

// Everything `<mount>/metadata/<path>` reports, plus Ward's stages and classification.
struct SecretMetadata {
  std::string path;
  absl::Time created_time, updated_time;
  uint64_t current_version = 0, oldest_version = 0;
  uint32_t max_versions = 0;  // the secret's own setting; 0: use the mount's
  bool cas_required = false;  // the secret's own setting (the mount's applies as well)
  absl::Duration delete_version_after = absl::ZeroDuration();  // the secret's own; zero: unset
  std::map<std::string, std::string> custom_metadata;
  Classification classification;
  std::map<uint64_t, VersionInfo> versions;  // every version still known, by number
  // Stage label -> version: "current", "previous", "pending", or a custom label.
  std::map<std::string, uint64_t> stages;
};

// One version read by Read.
struct ReadResult {
  // The version's data, a serialized JSON object; nullopt when the version is deleted or
  // destroyed (the API then answers 404 with the metadata below).
  std::optional<std::string> data_json;
  // Set with data_json: the same object for every read of this version's stored data, and a
  // different one for any other data (callers may remember what they derived from data_json
  // for this object, comparing owners, as std::weak_ptr::owner_before does).
  std::shared_ptr<const void> data_identity;
  VersionInfo version;
  std::map<std::string, std::string> custom_metadata;
};

// The version a Write or Patch created.
struct WriteResult {
  VersionInfo version;
  std::map<std::string, std::string> custom_metadata;
};

// A change to a secret's metadata: only the fields that are set are changed.
struct MetadataUpdate {
  std::optional<uint32_t> max_versions;
  std::optional<bool> cas_required;
  std::optional<absl::Duration> delete_version_after;
  // WriteMetadata: replaces the whole map. PatchMetadata: merges these keys in.
  std::optional<std::map<std::string, std::string>> custom_metadata;
  // PatchMetadata only: keys to remove (JSON merge-patch nulls). Applied after the merge.
  std::optional<std::vector<std::string>> remove_custom_metadata_keys;
  std::optional<Classification> classification;  // replaces the whole classification
};

// The children of a folder, as LIST returns them.
struct ListResult {
  std::vector<std::string> keys;  // sorted; sub-folders end with '/'
};

// The KV version 2 secrets engine of one mount: every version of every secret, with Vault's
// semantics (check-and-set, soft delete, undelete, destroy, max_versions trimming,
// delete_version_after, custom metadata) and Ward's stage labels and classification.
//
// Paths are relative to the mount (the API layer strips it). A path is non-empty, has no
// leading or trailing '/', no empty segment ("a//b") and no NUL byte; '/' separates folders.
// Every method taking a path returns kInvalidArgument "invalid secret path" for any other.
//
// Storage: every key lives under `storage_prefix` and every value goes through the barrier
// (layout and schemas in docs/kv-format.md). The engine keeps all metadata and the ciphertext
// of every non-destroyed version in memory, so reads never touch storage: a read is a lookup
// plus one barrier Decrypt. Each mutation is one atomic barrier Commit guarded by a Check on
// the secret's metadata revision; if another writer (another node on the same storage) got
// there first, the engine re-reads that secret and retries, and returns kAborted after a few
// lost races. Changes made by other nodes are otherwise seen only after Refresh(path).
//
// Thread-safe. Writers are serialised per engine; readers never wait for a write's storage
// commit (they see the previous state until the commit is durable). Every method except the
// read-only ones may block on storage I/O. Barrier errors pass through (kUnavailable when
// sealed). `barrier` and `clock` are borrowed and must outlive the engine.
class KvEngine {
 public:
  // Loads the mount's config, metadata and version ciphertexts from under `storage_prefix`
  // (e.g. "logical/<mount uuid>/"; it should end with '/').
  // Errors: from the barrier (kUnavailable if sealed, kDataLoss for a tampered value);
  //         kDataLoss if a stored metadata or config record is not valid.
  static absl::StatusOr<std::unique_ptr<KvEngine>> Create(barrier::Barrier& barrier,
                                                          core::Clock& clock,
                                                          std::string storage_prefix);
  ~KvEngine();
  KvEngine(const KvEngine&) = delete;
  KvEngine& operator=(const KvEngine&) = delete;

  // Returns the mount config as stored (max_versions 0 means the default, 10).
  absl::StatusOr<KvConfig> ReadConfig() const;

  // Replaces the mount config (the API layer merges a partial POST onto ReadConfig()). A
  // negative delete_version_after is stored as -1s. Errors: from the barrier.
  absl::Status WriteConfig(const KvConfig& config);

  // Returns version `version` of `path` (0: the current version). A deleted (deletion_time
  // <= now) or destroyed version is OK with data_json = nullopt.
  // Errors: kNotFound if the path has no such version (never written, or trimmed);
  //         kDataLoss if the stored version is unreadable; barrier errors (kUnavailable).
  absl::StatusOr<ReadResult> Read(std::string_view path, uint64_t version) const;

  // Writes `data_json` (a JSON object) as the next version (current_version + 1), labels it
  // "current" and moves "previous" to the old current, and trims the oldest versions beyond
  // the limit, which is, as in Vault, the larger of the secret's and the mount's max_versions,
  // or 10 if both are 0 (their data is deleted; stage labels on them are dropped). The new
  // version gets deletion_time = created + the smaller non-zero delete_version_after of the
  // mount and the secret, unless the mount disables it. The data is stored in canonical form
  // (compact, keys sorted); Read returns that form.
  // `cas`: nullopt: none; 0: only if the secret has no version yet; n: only if current_version
  // is n (soft-deleted versions count).
  // Errors: kInvalidArgument "data must be a JSON object" for other JSON values;
  //         kInvalidArgument if `data_json` is not valid JSON (or nests deeper than 300);
  //         kFailedPrecondition "check-and-set parameter required for this call" when the
  //           mount or the secret requires cas and none is given;
  //         kFailedPrecondition "check-and-set parameter did not match the current version";
  //         kAborted if concurrent writers on other nodes kept winning; barrier errors.
  absl::StatusOr<WriteResult> Write(std::string_view path, std::string_view data_json,
                                    std::optional<uint64_t> cas);

  // Applies `merge_patch_json` (RFC 7386: null removes a key, objects merge recursively) to
  // the current version's data and writes the result as a new version, as Write does.
  // Errors: kNotFound if the path does not exist or its current version is deleted or
  //         destroyed; kInvalidArgument "patch must be a JSON object"; CAS errors and the
  //         rest as Write.
  absl::StatusOr<WriteResult> Patch(std::string_view path, std::string_view merge_patch_json,
                                    std::optional<uint64_t> cas);

  // Soft-deletes the current version (deletion_time := now). OK if the path does not exist
  // or the current version is already deleted or destroyed. Errors: barrier errors.
  absl::Status DeleteLatest(std::string_view path);

  // Soft-deletes / undeletes / destroys the listed versions. Versions that do not exist
  // or are destroyed are ignored; OK if the path does not exist. Delete skips versions
  // already deleted. Undelete clears deletion_time, then re-arms delete_version_after from
  // now (as Vault). Destroy removes the data from storage for good.
  // Errors: kInvalidArgument for an empty list, with Vault's messages: "No version number
  //         provided" (delete, undelete), "no version number provided" (destroy);
  //         kAborted, barrier errors as Write.
  absl::Status DeleteVersions(std::string_view path, const std::vector<uint64_t>& versions);
  absl::Status UndeleteVersions(std::string_view path, const std::vector<uint64_t>& versions);
  absl::Status DestroyVersions(std::string_view path, const std::vector<uint64_t>& versions);

  // Returns the metadata of `path`. Errors: kNotFound if the path has no metadata.
  absl::StatusOr<SecretMetadata> ReadMetadata(std::string_view path) const;

  // POST metadata: sets the fields in `update` (custom_metadata replaces the whole map),
  // creating the metadata (with no versions) if absent; a no-op if no field is set. As in
  // Vault, lowering max_versions trims only at the next write, and updated_time moves only
  // when a version is written.
  // Errors: kInvalidArgument with Vault's "custom_metadata validation failed: ..." message
  //         (naming the key) for more than 64 keys, an empty key or value, a key longer than
  //         128 bytes, a value longer than 512 bytes, or control characters; kInvalidArgument
  //         for a negative duration or remove_custom_metadata_keys set; kAborted, barrier
  //         errors as Write.
  absl::Status WriteMetadata(std::string_view path, const MetadataUpdate& update);

  // PATCH metadata: as WriteMetadata, but custom_metadata keys are merged in and
  // remove_custom_metadata_keys removed (the merged map is held to the same limits).
  // Errors: kNotFound if the path has no metadata; the rest as WriteMetadata.
  absl::Status PatchMetadata(std::string_view path, const MetadataUpdate& update);

  // Deletes every version and the metadata of `path`. OK if absent. Errors: barrier errors.
  absl::Status DeleteMetadata(std::string_view path);

  // Returns the direct children of `folder` ("" is the mount root; a trailing '/' is
  // optional): secret names, and sub-folder names ending with '/', sorted bytewise. A secret
  // with metadata but no versions is listed. Pagination: only keys strictly after `after`
  // (if non-empty), at most `limit` of them (0: all).
  // Errors: kNotFound if the folder has no keys (after pagination); kInvalidArgument for an
  //         invalid folder.
  absl::StatusOr<ListResult> List(std::string_view folder, std::string_view after,
                                  size_t limit) const;

  // Returns the JSON text of the "subkeys" object of version `version` (0: current) and the
  // version's info. Subkeys: the data with every value replaced by null except non-empty
  // objects, kept recursively down to `depth` levels (top-level keys are level 1; deeper
  // objects become null; 0: unlimited; negative behaves like 1, as in Vault). For a deleted
  // or destroyed version the text is "null" (the API answers 404 with the metadata).
  // Errors: kNotFound if the path or version does not exist; as Read otherwise.
  absl::StatusOr<std::pair<std::string, VersionInfo>> Subkeys(std::string_view path,
                                                              uint64_t version, int depth) const;

  // Moves stage label `stage` (non-empty) to `version` of `path` (for staged rotation).
  // Errors: kNotFound if the path has no such version, or it is deleted or destroyed;
  //         kInvalidArgument for an empty stage; kAborted, barrier errors as Write.
  absl::Status SetStage(std::string_view path, std::string_view stage, uint64_t version);

  // Re-reads `path` (metadata and version data) from storage, e.g. after a change listener
  // reported that another node wrote it. Errors: barrier errors; kDataLoss for bad records.
  absl::Status Refresh(std::string_view path);

 private:
  using Entry = internal::KvEntry;
  using Mutation = internal::KvMutation;
  // Path -> immutable entry. Ordered, for LIST.
  using Index = std::map<std::string, std::shared_ptr<const Entry>, std::less<>>;
  // Computes the change of one secret from its current state (`old`, null if absent).
  using Edit = absl::FunctionRef<absl::Status(const Entry* old, const KvConfig& config,
                                              absl::Time now, Mutation& mutation)>;

  KvEngine(barrier::Barrier& barrier, core::Clock& clock, std::string storage_prefix);

  absl::Status LoadAll();
  // LoadAll: if the metadata in `loading` lists the data record `record` (stored envelope,
  // from ScanCiphertext of `data_prefix`) as a version that is not destroyed, authenticates
  // it and moves its envelope into that secret's entry; ignores it otherwise.
  // REQUIRES: `loading` is not yet installed (its entries are still private to LoadAll).
  // Errors: kDataLoss if it does not authenticate; barrier errors.
  absl::Status AddLoadedVersion(Index& loading, std::string_view data_prefix,
                                storage::KeyedRecord& record);
  // Reads one secret from storage; null if it has no metadata.
  absl::StatusOr<std::shared_ptr<const Entry>> LoadEntry(const std::string& path);
  // REQUIRES: WriteLockFor(path) held.
  absl::Status RefreshLocked(const std::string& path);
  std::shared_ptr<const Entry> Find(std::string_view path) const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces (or, for null, removes) the in-memory entry of `path`.
  void Install(const std::string& path, std::shared_ptr<const Entry> entry)
      ABSL_LOCKS_EXCLUDED(mu_);
  KvConfig Config() const ABSL_LOCKS_EXCLUDED(mu_);

  // Runs `edit` against the secret's current entry and commits the result in one barrier
  // Commit, guarded by a Check on the metadata record's revision; on a lost race re-reads the
  // secret and runs `edit` again, up to a few times (then kAborted).
  // REQUIRES: WriteLockFor(path) held.
  absl::Status Mutate(const std::string& path, Edit edit);
  // The writer lock of `path`: one of kWriteStripes mutexes, chosen by hash. Writers of the
  // same secret are serialised; writers of different secrets commit concurrently, so the
  // storage's group commit can share one fsync among them.
  absl::Mutex& WriteLockFor(std::string_view path);
  // Adds `canonical_data` to `entry` as its next version (see Write) and records the storage
  // ops in `mutation`. Returns the new version's info.
  absl::StatusOr<VersionInfo> AppendVersion(Entry& entry, const std::string& canonical_data,
                                            const KvConfig& config, absl::Time now,
                                            Mutation& mutation);
  // Returns the plaintext of version `number` of `entry`. Errors: kDataLoss if the engine
  // holds no data for it; barrier errors.
  absl::StatusOr<std::string> DecryptVersion(const Entry& entry, uint64_t number) const;

  std::string MetaKey(std::string_view path) const;
  std::string DataKey(std::string_view path, uint64_t version) const;

  barrier::Barrier& barrier_;
  core::Clock& clock_;
  const std::string prefix_;

  // Writer locks (held across the storage commit), striped by path; never held by readers.
  // config_mu_ serialises WriteConfig. Both are taken before mu_.
  static constexpr size_t kWriteStripes = 64;
  absl::Mutex write_stripes_[kWriteStripes];
  absl::Mutex config_mu_;
  // Guards the index; held only for lookups and pointer swaps, never across I/O.
  mutable absl::Mutex mu_;
  KvConfig config_ ABSL_GUARDED_BY(mu_);
  Index entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ward::secrets
