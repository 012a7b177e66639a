#include "secrets/kv_engine.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "barrier/barrier.h"
#include "core/strings.h"
#include "core/testing/fake_clock.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"

namespace ward::secrets {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kPrefix[] = "logical/0d7c4b3e-mount/";

#define ASSERT_OK(expr)                           \
  do {                                            \
    auto ward_test_status_ = (expr);              \
    ASSERT_TRUE(ward_test_status_.ok()) << #expr; \
  } while (false)

absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

#define EXPECT_CODE(expr, expected) \
  EXPECT_EQ(StatusOf(expr).code(), absl::StatusCode::expected) << #expr

class KvEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<barrier::Barrier>> b =
        barrier::Barrier::Create(storage_, clock_);
    ASSERT_TRUE(b.ok()) << b.status();
    barrier_ = *std::move(b);
    absl::StatusOr<core::SecureBytes> key = crypto::RandomBytes(32);
    ASSERT_TRUE(key.ok());
    unseal_key_ = *std::move(key);
    ASSERT_OK(barrier_->Initialize(unseal_key_));
    ASSERT_OK(barrier_->Unseal(unseal_key_));
    engine_ = Open();
    ASSERT_NE(engine_, nullptr);
  }

  std::unique_ptr<KvEngine> Open() {
    absl::StatusOr<std::unique_ptr<KvEngine>> e = KvEngine::Create(*barrier_, clock_, kPrefix);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *std::move(e) : nullptr;
  }

  // Writes and returns the new version number (0 on failure, with a test failure).
  uint64_t Put(std::string_view path, std::string_view data,
               std::optional<uint64_t> cas = std::nullopt) {
    absl::StatusOr<WriteResult> r = engine_->Write(path, data, cas);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->version.version : 0;
  }

  // The data of `version` of `path`, "<deleted>" if deleted or destroyed, or the error code.
  std::string Get(std::string_view path, uint64_t version = 0) {
    absl::StatusOr<ReadResult> r = engine_->Read(path, version);
    if (!r.ok()) return absl::StatusCodeToString(r.status().code());
    return r->data_json.value_or("<deleted>");
  }

  SecretMetadata Meta(std::string_view path) {
    absl::StatusOr<SecretMetadata> m = engine_->ReadMetadata(path);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : SecretMetadata{};
  }

  std::vector<std::string> Keys(std::string_view folder, std::string_view after = "",
                                size_t limit = 0) {
    absl::StatusOr<ListResult> r = engine_->List(folder, after, limit);
    if (!r.ok()) return {absl::StatusCodeToString(r.status().code())};
    return r->keys;
  }

  std::string DataKey(std::string_view path, uint64_t version) {
    return absl::StrCat(kPrefix, "data/", core::ToAbsl(path), absl::StrFormat("/%020u", version));
  }

  bool StoredDataExists(std::string_view path, uint64_t version) {
    return storage_.Get(DataKey(path, version)).ok();
  }

  void SetConfig(uint32_t max_versions, bool cas_required, absl::Duration dva) {
    KvConfig config;
    config.max_versions = max_versions;
    config.cas_required = cas_required;
    config.delete_version_after = dva;
    ASSERT_OK(engine_->WriteConfig(config));
  }

  core::FakeClock clock_;
  storage::MemoryBackend storage_;
  core::SecureBytes unseal_key_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<KvEngine> engine_;
};

// ---- paths and data ----

TEST_F(KvEngineTest, WriteThenReadReturnsTheCanonicalData) {
  absl::StatusOr<WriteResult> w = engine_->Write("app/db", R"({ "user": "u", "pass": "p" })", {});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->version.version, 1u);
  EXPECT_EQ(w->version.created_time, clock_.Now());
  EXPECT_EQ(w->version.deletion_time, std::nullopt);
  EXPECT_FALSE(w->version.destroyed);

  absl::StatusOr<ReadResult> r = engine_->Read("app/db", 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data_json, R"({"pass":"p","user":"u"})");
  EXPECT_EQ(r->version.version, 1u);
  EXPECT_EQ(r->version.created_time, clock_.Now());
}

TEST_F(KvEngineTest, ValuesInStorageAreEncrypted) {
  Put("app/db", R"({"pass":"hunter2-plaintext"})");
  absl::StatusOr<storage::ListPage> page = storage_.List(kPrefix, "", 0);
  ASSERT_TRUE(page.ok());
  ASSERT_FALSE(page->keys.empty());
  for (const std::string& key : page->keys) {
    absl::StatusOr<storage::Record> rec = storage_.Get(key);
    ASSERT_TRUE(rec.ok());
    EXPECT_THAT(rec->value, ::testing::Not(HasSubstr("hunter2-plaintext"))) << key;
  }
}

TEST_F(KvEngineTest, InvalidPathsAreRejected) {
  const std::string_view paths[] = {"", "/a", "a/", "a//b", std::string_view("a\0b", 3)};
  for (std::string_view path : paths) {
    EXPECT_CODE(engine_->Write(path, "{}", {}), kInvalidArgument);
    EXPECT_CODE(engine_->Read(path, 0), kInvalidArgument);
    EXPECT_CODE(engine_->ReadMetadata(path), kInvalidArgument);
    EXPECT_CODE(engine_->DeleteLatest(path), kInvalidArgument);
  }
}

TEST_F(KvEngineTest, NonObjectDataIsRejected) {
  for (std::string_view data : {"[1]", "\"s\"", "3", "null"}) {
    absl::StatusOr<WriteResult> w = engine_->Write("a", data, {});
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(w.status().message(), "data must be a JSON object");
  }
  EXPECT_CODE(engine_->Write("a", "{", {}), kInvalidArgument);
  EXPECT_EQ(Get("a"), "NOT_FOUND");
}

TEST_F(KvEngineTest, MissingPathOrVersionIsNotFound) {
  EXPECT_CODE(engine_->Read("nope", 0), kNotFound);
  Put("a", R"({"v":1})");
  EXPECT_CODE(engine_->Read("a", 2), kNotFound);
  EXPECT_CODE(engine_->ReadMetadata("nope"), kNotFound);
}

TEST_F(KvEngineTest, EachWriteAddsTheNextVersion) {
  EXPECT_EQ(Put("a", R"({"v":1})"), 1u);
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(Put("a", R"({"v":2})"), 2u);
  EXPECT_EQ(Get("a"), R"({"v":2})");
  EXPECT_EQ(Get("a", 1), R"({"v":1})");
  SecretMetadata m = Meta("a");
  EXPECT_EQ(m.current_version, 2u);
  EXPECT_EQ(m.oldest_version, 0u);  // as Vault: 0 until the first trim
  EXPECT_EQ(m.created_time, clock_.Now() - absl::Seconds(5));
  EXPECT_EQ(m.updated_time, clock_.Now());
  EXPECT_EQ(m.versions.size(), 2u);
}

// ---- check-and-set ----

TEST_F(KvEngineTest, CasZeroOnlyCreates) {
  EXPECT_EQ(Put("a", "{}", 0), 1u);
  absl::StatusOr<WriteResult> w = engine_->Write("a", "{}", 0);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.status().message(), "check-and-set parameter did not match the current version");
}

TEST_F(KvEngineTest, WriteWithStaleCasIsRejected) {
  Put("a", "{}");
  Put("a", "{}");
  absl::StatusOr<WriteResult> w = engine_->Write("a", R"({"x":1})", 1);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.status().message(), "check-and-set parameter did not match the current version");
  EXPECT_EQ(Put("a", R"({"x":1})", 2), 3u);
}

TEST_F(KvEngineTest, CasRequiredByMountConfig) {
  SetConfig(0, true, absl::ZeroDuration());
  absl::StatusOr<WriteResult> w = engine_->Write("a", "{}", std::nullopt);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.status().message(), "check-and-set parameter required for this call");
  EXPECT_EQ(Put("a", "{}", 0), 1u);
}

TEST_F(KvEngineTest, CasRequiredBySecretMetadata) {
  MetadataUpdate update;
  update.cas_required = true;
  ASSERT_OK(engine_->WriteMetadata("a", update));
  absl::StatusOr<WriteResult> w = engine_->Write("a", "{}", std::nullopt);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.status().message(), "check-and-set parameter required for this call");
  EXPECT_EQ(Put("a", "{}", 0), 1u);  // metadata-only secret: current_version is 0
  EXPECT_EQ(Put("b", "{}"), 1u);     // other secrets are unaffected
}

TEST_F(KvEngineTest, CasCountsSoftDeletedVersions) {
  Put("a", "{}");
  ASSERT_OK(engine_->DeleteLatest("a"));
  EXPECT_CODE(engine_->Write("a", "{}", 0), kFailedPrecondition);
  EXPECT_EQ(Put("a", "{}", 1), 2u);
}

// ---- max_versions ----

TEST_F(KvEngineTest, MaxVersionsTrimsOldestVersionsAndTheirData) {
  SetConfig(3, false, absl::ZeroDuration());
  for (int i = 1; i <= 5; ++i) Put("a", absl::StrCat(R"({"v":)", i, "}"));
  SecretMetadata m = Meta("a");
  EXPECT_EQ(m.current_version, 5u);
  EXPECT_EQ(m.oldest_version, 3u);
  EXPECT_THAT(m.versions,
              ElementsAre(Pair(3u, ::testing::_), Pair(4u, ::testing::_), Pair(5u, ::testing::_)));
  EXPECT_EQ(Get("a", 1), "NOT_FOUND");
  EXPECT_EQ(Get("a", 2), "NOT_FOUND");
  EXPECT_EQ(Get("a", 3), R"({"v":3})");
  EXPECT_FALSE(StoredDataExists("a", 1));
  EXPECT_FALSE(StoredDataExists("a", 2));
  EXPECT_TRUE(StoredDataExists("a", 3));
}

TEST_F(KvEngineTest, DefaultMaxVersionsIsTen) {
  for (int i = 1; i <= 12; ++i) Put("a", "{}");
  SecretMetadata m = Meta("a");
  EXPECT_EQ(m.versions.size(), 10u);
  EXPECT_EQ(m.versions.begin()->first, 3u);
  EXPECT_EQ(m.oldest_version, 3u);
}

TEST_F(KvEngineTest, MaxVersionsIsTheLargerOfSecretAndMountAsInVault) {
  SetConfig(4, false, absl::ZeroDuration());
  MetadataUpdate update;
  update.max_versions = 2;
  ASSERT_OK(engine_->WriteMetadata("a", update));
  for (int i = 0; i < 6; ++i) Put("a", "{}");
  EXPECT_EQ(Meta("a").versions.size(), 4u);

  update.max_versions = 5;
  ASSERT_OK(engine_->WriteMetadata("b", update));
  for (int i = 0; i < 7; ++i) Put("b", "{}");
  EXPECT_EQ(Meta("b").versions.size(), 5u);
}

TEST_F(KvEngineTest, LoweringMaxVersionsTrimsAtTheNextWrite) {
  for (int i = 0; i < 6; ++i) Put("a", "{}");
  MetadataUpdate update;
  update.max_versions = 2;
  ASSERT_OK(engine_->WriteMetadata("a", update));
  EXPECT_EQ(Meta("a").versions.size(), 6u);
  Put("a", "{}");
  SecretMetadata m = Meta("a");
  EXPECT_THAT(m.versions, ElementsAre(Pair(6u, ::testing::_), Pair(7u, ::testing::_)));
  EXPECT_EQ(m.oldest_version, 6u);
  for (uint64_t v = 1; v <= 5; ++v) EXPECT_FALSE(StoredDataExists("a", v)) << v;
}

// ---- delete_version_after ----

TEST_F(KvEngineTest, DeleteVersionAfterMakesAVersionReadAsDeletedLater) {
  SetConfig(0, false, absl::Hours(1));
  absl::StatusOr<WriteResult> w = engine_->Write("a", R"({"v":1})", {});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->version.deletion_time, clock_.Now() + absl::Hours(1));
  clock_.Advance(absl::Minutes(59));
  EXPECT_EQ(Get("a"), R"({"v":1})");
  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<ReadResult> r = engine_->Read("a", 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data_json, std::nullopt);
  EXPECT_EQ(r->version.deletion_time, w->version.deletion_time);
}

TEST_F(KvEngineTest, DeleteVersionAfterTakesTheSmallerNonZeroSetting) {
  SetConfig(0, false, absl::Hours(1));
  MetadataUpdate update;
  update.delete_version_after = absl::Minutes(30);
  ASSERT_OK(engine_->WriteMetadata("a", update));
  absl::StatusOr<WriteResult> w = engine_->Write("a", "{}", {});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->version.deletion_time, clock_.Now() + absl::Minutes(30));

  update.delete_version_after = absl::Hours(2);
  ASSERT_OK(engine_->WriteMetadata("b", update));
  w = engine_->Write("b", "{}", {});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->version.deletion_time, clock_.Now() + absl::Hours(1));
}

TEST_F(KvEngineTest, NegativeMountDeleteVersionAfterDisablesIt) {
  SetConfig(0, false, absl::Seconds(-30));
  absl::StatusOr<KvConfig> config = engine_->ReadConfig();
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->delete_version_after, absl::Seconds(-1));
  MetadataUpdate update;
  update.delete_version_after = absl::Minutes(30);
  ASSERT_OK(engine_->WriteMetadata("a", update));
  absl::StatusOr<WriteResult> w = engine_->Write("a", "{}", {});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->version.deletion_time, std::nullopt);
}

TEST_F(KvEngineTest, NegativeSecretDeleteVersionAfterIsRejected) {
  MetadataUpdate update;
  update.delete_version_after = absl::Seconds(-1);
  EXPECT_CODE(engine_->WriteMetadata("a", update), kInvalidArgument);
}

// ---- delete, undelete, destroy ----

TEST_F(KvEngineTest, DeleteLatestSoftDeletesTheCurrentVersion) {
  Put("a", R"({"v":1})");
  Put("a", R"({"v":2})");
  ASSERT_OK(engine_->DeleteLatest("a"));
  absl::StatusOr<ReadResult> r = engine_->Read("a", 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data_json, std::nullopt);
  EXPECT_EQ(r->version.version, 2u);
  EXPECT_EQ(r->version.deletion_time, clock_.Now());
  EXPECT_EQ(Get("a", 1), R"({"v":1})");
  EXPECT_TRUE(StoredDataExists("a", 2));  // soft delete keeps the data

  // Deleting again changes nothing.
  clock_.Advance(absl::Minutes(1));
  ASSERT_OK(engine_->DeleteLatest("a"));
  EXPECT_EQ(Meta("a").versions.at(2).deletion_time, clock_.Now() - absl::Minutes(1));
}

TEST_F(KvEngineTest, DeleteOnAMissingPathSucceeds) {
  EXPECT_TRUE(engine_->DeleteLatest("nope").ok());
  EXPECT_TRUE(engine_->DeleteVersions("nope", {1}).ok());
  EXPECT_TRUE(engine_->UndeleteVersions("nope", {1}).ok());
  EXPECT_TRUE(engine_->DestroyVersions("nope", {1}).ok());
  EXPECT_TRUE(engine_->DeleteMetadata("nope").ok());
  EXPECT_CODE(engine_->ReadMetadata("nope"), kNotFound);
}

TEST_F(KvEngineTest, EmptyVersionListsAreRejectedWithVaultsMessages) {
  Put("a", "{}");
  absl::Status s = engine_->DeleteVersions("a", {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "No version number provided");
  s = engine_->UndeleteVersions("a", {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "No version number provided");
  s = engine_->DestroyVersions("a", {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "no version number provided");
}

TEST_F(KvEngineTest, DeleteAndUndeleteVersions) {
  Put("a", R"({"v":1})");
  Put("a", R"({"v":2})");
  ASSERT_OK(engine_->DeleteVersions("a", {1, 7}));  // 7 does not exist: ignored
  EXPECT_EQ(Get("a", 1), "<deleted>");
  EXPECT_EQ(Get("a", 2), R"({"v":2})");
  ASSERT_OK(engine_->UndeleteVersions("a", {1, 9}));
  EXPECT_EQ(Get("a", 1), R"({"v":1})");
  EXPECT_EQ(Meta("a").versions.at(1).deletion_time, std::nullopt);
}

TEST_F(KvEngineTest, UndeleteRearmsDeleteVersionAfterFromNow) {
  SetConfig(0, false, absl::Hours(1));
  Put("a", R"({"v":1})");
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(Get("a"), "<deleted>");
  ASSERT_OK(engine_->UndeleteVersions("a", {1}));
  EXPECT_EQ(Get("a"), R"({"v":1})");
  EXPECT_EQ(Meta("a").versions.at(1).deletion_time, clock_.Now() + absl::Hours(1));
}

TEST_F(KvEngineTest, DestroyRemovesTheDataForGood) {
  Put("a", R"({"v":1})");
  Put("a", R"({"v":2})");
  ASSERT_OK(engine_->DestroyVersions("a", {1, 5}));
  absl::StatusOr<ReadResult> r = engine_->Read("a", 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data_json, std::nullopt);
  EXPECT_TRUE(r->version.destroyed);
  EXPECT_FALSE(StoredDataExists("a", 1));
  EXPECT_TRUE(StoredDataExists("a", 2));
  // Undelete cannot bring it back; delete ignores it.
  ASSERT_OK(engine_->UndeleteVersions("a", {1}));
  ASSERT_OK(engine_->DeleteVersions("a", {1}));
  EXPECT_EQ(Get("a", 1), "<deleted>");
  EXPECT_EQ(Meta("a").versions.at(1).deletion_time, std::nullopt);
  EXPECT_TRUE(Meta("a").versions.at(1).destroyed);
}

// ---- patch ----

TEST_F(KvEngineTest, PatchMergesOntoTheCurrentVersion) {
  Put("a", R"({"keep":1,"drop":2,"obj":{"x":1,"y":2}})");
  absl::StatusOr<WriteResult> w =
      engine_->Patch("a", R"({"drop":null,"obj":{"y":null,"z":3},"new":"n"})", {});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->version.version, 2u);
  EXPECT_EQ(Get("a"), R"({"keep":1,"new":"n","obj":{"x":1,"z":3}})");
  EXPECT_EQ(Get("a", 1), R"({"drop":2,"keep":1,"obj":{"x":1,"y":2}})");
}

TEST_F(KvEngineTest, PatchNeedsALiveCurrentVersion) {
  EXPECT_CODE(engine_->Patch("nope", "{}", {}), kNotFound);
  MetadataUpdate update;
  update.max_versions = 3;
  ASSERT_OK(engine_->WriteMetadata("meta-only", update));
  EXPECT_CODE(engine_->Patch("meta-only", "{}", {}), kNotFound);
  Put("a", R"({"v":1})");
  ASSERT_OK(engine_->DeleteLatest("a"));
  EXPECT_CODE(engine_->Patch("a", R"({"v":2})", {}), kNotFound);
  Put("b", R"({"v":1})");
  ASSERT_OK(engine_->DestroyVersions("b", {1}));
  EXPECT_CODE(engine_->Patch("b", R"({"v":2})", {}), kNotFound);
}

TEST_F(KvEngineTest, PatchMustBeAnObject) {
  Put("a", "{}");
  absl::StatusOr<WriteResult> w = engine_->Patch("a", "[1]", {});
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.status().message(), "patch must be a JSON object");
}

TEST_F(KvEngineTest, PatchFollowsCasRules) {
  Put("a", R"({"v":1})");
  Put("a", R"({"v":2})");
  absl::StatusOr<WriteResult> w = engine_->Patch("a", R"({"v":3})", 1);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.status().message(), "check-and-set parameter did not match the current version");
  SetConfig(0, true, absl::ZeroDuration());
  w = engine_->Patch("a", R"({"v":3})", std::nullopt);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.status().message(), "check-and-set parameter required for this call");
  w = engine_->Patch("a", R"({"v":3})", 2);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->version.version, 3u);
}

// ---- metadata ----

TEST_F(KvEngineTest, WriteMetadataCreatesASecretWithoutVersions) {
  MetadataUpdate update;
  update.max_versions = 4;
  update.cas_required = true;
  update.delete_version_after = absl::Hours(2);
  update.custom_metadata = std::map<std::string, std::string>{{"owner", "jdoe"}};
  ASSERT_OK(engine_->WriteMetadata("team/a", update));
  SecretMetadata m = Meta("team/a");
  EXPECT_EQ(m.path, "team/a");
  EXPECT_EQ(m.current_version, 0u);
  EXPECT_EQ(m.max_versions, 4u);
  EXPECT_TRUE(m.cas_required);
  EXPECT_EQ(m.delete_version_after, absl::Hours(2));
  EXPECT_THAT(m.custom_metadata, ElementsAre(Pair("owner", "jdoe")));
  EXPECT_EQ(m.created_time, clock_.Now());
  EXPECT_TRUE(m.versions.empty());
  EXPECT_CODE(engine_->Read("team/a", 0), kNotFound);
  EXPECT_THAT(Keys("team"), ElementsAre("a"));

  absl::StatusOr<WriteResult> w = engine_->Write("team/a", "{}", 0);
  ASSERT_TRUE(w.ok());
  EXPECT_THAT(w->custom_metadata, ElementsAre(Pair("owner", "jdoe")));
}

TEST_F(KvEngineTest, WriteMetadataWithNoFieldsDoesNothing) {
  ASSERT_OK(engine_->WriteMetadata("a", MetadataUpdate{}));
  EXPECT_CODE(engine_->ReadMetadata("a"), kNotFound);
}

TEST_F(KvEngineTest, WriteMetadataReplacesCustomMetadataAndKeepsUpdatedTime) {
  Put("a", "{}");
  absl::Time written = clock_.Now();
  clock_.Advance(absl::Minutes(1));
  MetadataUpdate update;
  update.custom_metadata = std::map<std::string, std::string>{{"k1", "v1"}, {"k2", "v2"}};
  ASSERT_OK(engine_->WriteMetadata("a", update));
  update.custom_metadata = std::map<std::string, std::string>{{"k3", "v3"}};
  ASSERT_OK(engine_->WriteMetadata("a", update));
  SecretMetadata m = Meta("a");
  EXPECT_THAT(m.custom_metadata, ElementsAre(Pair("k3", "v3")));
  EXPECT_EQ(m.updated_time, written);
  EXPECT_EQ(m.current_version, 1u);

  MetadataUpdate remove;
  remove.remove_custom_metadata_keys = std::vector<std::string>{"k3"};
  EXPECT_CODE(engine_->WriteMetadata("a", remove), kInvalidArgument);
}

TEST_F(KvEngineTest, PatchMetadataMergesAndRemovesKeys) {
  EXPECT_CODE(engine_->PatchMetadata("a", MetadataUpdate{}), kNotFound);
  MetadataUpdate create;
  create.max_versions = 5;
  create.custom_metadata = std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}};
  ASSERT_OK(engine_->WriteMetadata("a", create));

  MetadataUpdate patch;
  patch.custom_metadata = std::map<std::string, std::string>{{"b", "20"}, {"c", "3"}};
  patch.remove_custom_metadata_keys = std::vector<std::string>{"a"};
  patch.cas_required = true;
  ASSERT_OK(engine_->PatchMetadata("a", patch));
  SecretMetadata m = Meta("a");
  EXPECT_THAT(m.custom_metadata, ElementsAre(Pair("b", "20"), Pair("c", "3")));
  EXPECT_EQ(m.max_versions, 5u);  // untouched
  EXPECT_TRUE(m.cas_required);
}

TEST_F(KvEngineTest, CustomMetadataLimitsUseVaultsMessages) {
  MetadataUpdate update;
  std::map<std::string, std::string> many;
  for (int i = 0; i < 65; ++i) many[absl::StrCat("k", i)] = "v";
  update.custom_metadata = many;
  absl::Status s = engine_->WriteMetadata("a", update);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "1 error occurred:\n\t* custom_metadata validation failed: payload must contain at "
            "most 64 keys, provided 65\n\n");

  update.custom_metadata = std::map<std::string, std::string>{{"k", std::string(513, 'x')}};
  s = engine_->WriteMetadata("a", update);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "1 error occurred:\n\t* custom_metadata validation failed: length of value for key "
            "\"k\" is 513 but must be 0 < len(value) <= 512\n\n");

  update.custom_metadata =
      std::map<std::string, std::string>{{std::string(129, 'K'), "v"}, {"e", ""}};
  s = engine_->WriteMetadata("a", update);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("2 errors occurred:"));
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("length of key \"", std::string(129, 'K'),
                                                  "\" is 129 but must be 0 < len(key) <= 128")));
  EXPECT_THAT(s.message(), HasSubstr("length of value for key \"e\" is 0"));

  update.custom_metadata = std::map<std::string, std::string>{{"tab\there", "v"}};
  s = engine_->WriteMetadata("a", update);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("key \"tab\\there\""));
  EXPECT_THAT(s.message(), HasSubstr("contains unprintable characters"));
  EXPECT_CODE(engine_->ReadMetadata("a"), kNotFound);

  // Exactly at the limits is fine.
  std::map<std::string, std::string> limit;
  for (int i = 0; i < 63; ++i) limit[absl::StrCat("k", i)] = "v";
  limit[std::string(128, 'K')] = std::string(512, 'v');
  update.custom_metadata = limit;
  ASSERT_OK(engine_->WriteMetadata("a", update));

  // A patch that would take the merged map over 64 keys is rejected.
  MetadataUpdate patch;
  patch.custom_metadata = std::map<std::string, std::string>{{"one-more", "v"}};
  EXPECT_CODE(engine_->PatchMetadata("a", patch), kInvalidArgument);
}

TEST_F(KvEngineTest, DeleteMetadataRemovesEverything) {
  Put("a/b", R"({"v":1})");
  Put("a/b", R"({"v":2})");
  ASSERT_OK(engine_->DestroyVersions("a/b", {1}));
  ASSERT_OK(engine_->DeleteMetadata("a/b"));
  EXPECT_CODE(engine_->ReadMetadata("a/b"), kNotFound);
  EXPECT_CODE(engine_->Read("a/b", 2), kNotFound);
  EXPECT_CODE(engine_->List("a", "", 0), kNotFound);
  absl::StatusOr<storage::ListPage> page = storage_.List(kPrefix, "", 0);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(page->keys, ::testing::IsEmpty());
  // The path can be written again from version 1.
  EXPECT_EQ(Put("a/b", "{}", 0), 1u);
}

// ---- classification and stages ----

TEST_F(KvEngineTest, ClassificationRoundTripsThroughStorage) {
  MetadataUpdate update;
  Classification c;
  c.owner = "payments-team";
  c.max_cache_age = absl::Minutes(10);
  c.outage_behavior = OutageBehavior::kServeStale;
  c.rotation_period = absl::Hours(24 * 7);
  update.classification = c;
  ASSERT_OK(engine_->WriteMetadata("db/creds", update));
  Put("db/creds", "{}");

  std::unique_ptr<KvEngine> reopened = Open();
  ASSERT_NE(reopened, nullptr);
  absl::StatusOr<SecretMetadata> m = reopened->ReadMetadata("db/creds");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->classification.owner, "payments-team");
  EXPECT_EQ(m->classification.max_cache_age, absl::Minutes(10));
  EXPECT_EQ(m->classification.outage_behavior, OutageBehavior::kServeStale);
  EXPECT_EQ(m->classification.rotation_period, absl::Hours(24 * 7));

  Classification bad;
  bad.max_cache_age = absl::Seconds(-1);
  update.classification = bad;
  EXPECT_CODE(engine_->WriteMetadata("db/creds", update), kInvalidArgument);
}

TEST_F(KvEngineTest, StagesMoveOnWrite) {
  Put("a", R"({"v":1})");
  EXPECT_THAT(Meta("a").stages, ElementsAre(Pair("current", 1u)));
  Put("a", R"({"v":2})");
  EXPECT_THAT(Meta("a").stages, ElementsAre(Pair("current", 2u), Pair("previous", 1u)));
  Put("a", R"({"v":3})");
  EXPECT_THAT(Meta("a").stages, ElementsAre(Pair("current", 3u), Pair("previous", 2u)));
}

TEST_F(KvEngineTest, SetStageMovesALabelToALiveVersion) {
  Put("a", R"({"v":1})");
  Put("a", R"({"v":2})");
  ASSERT_OK(engine_->SetStage("a", "pending", 1));
  EXPECT_THAT(Meta("a").stages,
              ElementsAre(Pair("current", 2u), Pair("pending", 1u), Pair("previous", 1u)));
  EXPECT_CODE(engine_->SetStage("a", "pending", 3), kNotFound);
  EXPECT_CODE(engine_->SetStage("nope", "pending", 1), kNotFound);
  EXPECT_CODE(engine_->SetStage("a", "", 1), kInvalidArgument);
  ASSERT_OK(engine_->DeleteVersions("a", {1}));
  EXPECT_CODE(engine_->SetStage("a", "canary", 1), kNotFound);
  ASSERT_OK(engine_->DestroyVersions("a", {2}));
  EXPECT_CODE(engine_->SetStage("a", "canary", 2), kNotFound);
}

TEST_F(KvEngineTest, TrimmedVersionsLoseTheirStageLabels) {
  SetConfig(1, false, absl::ZeroDuration());
  Put("a", "{}");
  Put("a", "{}");
  EXPECT_THAT(Meta("a").stages, ElementsAre(Pair("current", 2u)));
}

// ---- list ----

TEST_F(KvEngineTest, ListShowsDirectChildrenWithFolders) {
  Put("a", "{}");
  Put("a/x", "{}");
  Put("a/y/z", "{}");
  Put("a-b", "{}");
  Put("b/c/d", "{}");
  Put("a0", "{}");
  EXPECT_THAT(Keys(""), ElementsAre("a", "a-b", "a/", "a0", "b/"));
  EXPECT_THAT(Keys("a"), ElementsAre("x", "y/"));
  EXPECT_THAT(Keys("a/"), ElementsAre("x", "y/"));
  EXPECT_THAT(Keys("a/y"), ElementsAre("z"));
  EXPECT_THAT(Keys("b"), ElementsAre("c/"));
  EXPECT_THAT(Keys("nope"), ElementsAre("NOT_FOUND"));
  EXPECT_THAT(Keys("a/x"), ElementsAre("NOT_FOUND"));  // a secret, not a folder
  EXPECT_THAT(Keys("a//"), ElementsAre("INVALID_ARGUMENT"));
}

TEST_F(KvEngineTest, ListPaginatesWithAfterAndLimit) {
  for (const char* p : {"k1", "k2", "k3", "k4/x", "k5"}) Put(p, "{}");
  EXPECT_THAT(Keys("", "", 2), ElementsAre("k1", "k2"));
  EXPECT_THAT(Keys("", "k2", 2), ElementsAre("k3", "k4/"));
  EXPECT_THAT(Keys("", "k4/", 0), ElementsAre("k5"));
  EXPECT_THAT(Keys("", "k35", 0), ElementsAre("k4/", "k5"));
  EXPECT_THAT(Keys("", "k5", 0), ElementsAre("NOT_FOUND"));
}

TEST_F(KvEngineTest, ListIncludesDeletedAndDestroyedSecrets) {
  Put("a", "{}");
  ASSERT_OK(engine_->DestroyVersions("a", {1}));
  EXPECT_THAT(Keys(""), ElementsAre("a"));
}

// ---- subkeys ----

TEST_F(KvEngineTest, SubkeysHonoursDepth) {
  Put("a", R"({"foo":"abc","bar":{"baz":{"q":1}},"n":[1,2]})");
  auto sk = engine_->Subkeys("a", 0, 0);
  ASSERT_TRUE(sk.ok()) << sk.status();
  EXPECT_EQ(sk->first, R"({"bar":{"baz":{"q":null}},"foo":null,"n":null})");
  EXPECT_EQ(sk->second.version, 1u);
  sk = engine_->Subkeys("a", 1, 1);
  ASSERT_TRUE(sk.ok());
  EXPECT_EQ(sk->first, R"({"bar":null,"foo":null,"n":null})");
  sk = engine_->Subkeys("a", 0, 2);
  ASSERT_TRUE(sk.ok());
  EXPECT_EQ(sk->first, R"({"bar":{"baz":null},"foo":null,"n":null})");
  EXPECT_CODE(engine_->Subkeys("a", 2, 0), kNotFound);
  EXPECT_CODE(engine_->Subkeys("nope", 0, 0), kNotFound);
}

TEST_F(KvEngineTest, SubkeysOfADeletedVersionIsNull) {
  Put("a", R"({"foo":"abc"})");
  ASSERT_OK(engine_->DeleteLatest("a"));
  auto sk = engine_->Subkeys("a", 0, 0);
  ASSERT_TRUE(sk.ok());
  EXPECT_EQ(sk->first, "null");
  EXPECT_EQ(sk->second.deletion_time, clock_.Now());
}

// ---- persistence, sealing, concurrency ----

TEST_F(KvEngineTest, ReopenedEngineSeesEverything) {
  SetConfig(5, true, absl::Hours(3));
  Put("x/a", R"({"v":1})", 0);
  Put("x/a", R"({"v":2})", 1);
  Put("x/a", R"({"v":3})", 2);
  ASSERT_OK(engine_->DeleteVersions("x/a", {1}));
  ASSERT_OK(engine_->DestroyVersions("x/a", {2}));
  ASSERT_OK(engine_->SetStage("x/a", "pending", 3));
  for (int i = 0; i < 1005; ++i) {  // more than one load page
    Put(absl::StrFormat("bulk/%04d", i), absl::StrCat(R"({"i":)", i, "}"), 0);
  }

  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  absl::StatusOr<KvConfig> config = engine_->ReadConfig();
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->max_versions, 5u);
  EXPECT_TRUE(config->cas_required);
  EXPECT_EQ(config->delete_version_after, absl::Hours(3));
  EXPECT_EQ(Get("x/a", 1), "<deleted>");
  EXPECT_EQ(Get("x/a", 2), "<deleted>");
  EXPECT_EQ(Get("x/a", 3), R"({"v":3})");
  SecretMetadata m = Meta("x/a");
  EXPECT_EQ(m.current_version, 3u);
  EXPECT_TRUE(m.versions.at(2).destroyed);
  EXPECT_EQ(m.versions.at(3).deletion_time, clock_.Now() + absl::Hours(3));
  EXPECT_EQ(m.stages.at("pending"), 3u);
  EXPECT_EQ(Get("bulk/1004"), R"({"i":1004})");
  EXPECT_EQ(Keys("bulk").size(), 1005u);
  EXPECT_EQ(Put("x/a", "{}", 3), 4u);
}

TEST_F(KvEngineTest, SealedBarrierIsUnavailable) {
  Put("a", "{}");
  barrier_->Seal();
  EXPECT_CODE(engine_->Read("a", 0), kUnavailable);
  EXPECT_CODE(engine_->Write("a", "{}", {}), kUnavailable);
  EXPECT_CODE(KvEngine::Create(*barrier_, clock_, kPrefix), kUnavailable);
  ASSERT_OK(barrier_->Unseal(unseal_key_));
  EXPECT_EQ(Get("a"), "{}");
}

TEST_F(KvEngineTest, CorruptMetadataFailsCreateWithDataLoss) {
  ASSERT_OK(barrier_->Put(absl::StrCat(kPrefix, "meta/bad"), "not json"));
  EXPECT_CODE(KvEngine::Create(*barrier_, clock_, kPrefix), kDataLoss);
}

TEST_F(KvEngineTest, LoadMatchesDataToSecretsWhosePathsEndInDigitsOrNest) {
  // Paths that look like other secrets' data keys: "n" with version 1 is data/n/<v>, while
  // "n/00000000000000000001" is a secret of its own, and "n/1" one more.
  Put("n", R"({"s":"n v1"})");
  Put("n", R"({"s":"n v2"})");
  Put("n/00000000000000000001", R"({"s":"nested"})");
  Put("n/1", R"({"s":"short"})");
  Put("n/1/2", R"({"s":"deep"})");

  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  EXPECT_EQ(Get("n", 1), R"({"s":"n v1"})");
  EXPECT_EQ(Get("n", 2), R"({"s":"n v2"})");
  EXPECT_EQ(Get("n/00000000000000000001"), R"({"s":"nested"})");
  EXPECT_EQ(Get("n/1"), R"({"s":"short"})");
  EXPECT_EQ(Get("n/1/2"), R"({"s":"deep"})");
  EXPECT_THAT(Keys("n"), ElementsAre("00000000000000000001", "1", "1/"));
}

TEST_F(KvEngineTest, LoadIgnoresDataTheMetadataDoesNotListEvenIfTampered) {
  Put("a", R"({"v":1})");
  Put("a", R"({"v":2})");
  ASSERT_OK(engine_->DestroyVersions("a", {1}));
  // Data for a destroyed version, a version never written, a secret without metadata, and a
  // key of another shape: none of them is listed, so the load never opens them (tampered or
  // not) and reads do not see them.
  ASSERT_OK(storage_.Put(DataKey("a", 1), "tampered"));
  ASSERT_OK(storage_.Put(DataKey("a", 7), "tampered"));
  ASSERT_OK(storage_.Put(DataKey("ghost", 1), "tampered"));
  ASSERT_OK(storage_.Put(absl::StrCat(kPrefix, "data/a/2"), "tampered"));

  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  EXPECT_EQ(Get("a", 1), "<deleted>");
  EXPECT_EQ(Get("a", 2), R"({"v":2})");
  EXPECT_EQ(Get("a", 7), "NOT_FOUND");
  EXPECT_EQ(Get("ghost"), "NOT_FOUND");
}

TEST_F(KvEngineTest, TamperedListedDataFailsCreateWithDataLoss) {
  Put("a", R"({"v":1})");
  absl::StatusOr<storage::Record> raw = storage_.Get(DataKey("a", 1));
  ASSERT_TRUE(raw.ok());
  std::string tampered = raw->value;
  tampered.back() ^= 1;
  ASSERT_OK(storage_.Put(DataKey("a", 1), tampered));
  EXPECT_CODE(KvEngine::Create(*barrier_, clock_, kPrefix), kDataLoss);
  // Data copied from another version's key does not authenticate either.
  ASSERT_OK(storage_.Put(DataKey("a", 1), raw->value));
  Put("b", R"({"v":"b"})");
  absl::StatusOr<storage::Record> other = storage_.Get(DataKey("b", 1));
  ASSERT_TRUE(other.ok());
  ASSERT_OK(storage_.Put(DataKey("a", 1), other->value));
  EXPECT_CODE(KvEngine::Create(*barrier_, clock_, kPrefix), kDataLoss);
}

TEST_F(KvEngineTest, ListedDataMissingAtLoadReadsAsDataLoss) {
  Put("a", R"({"v":1})");
  Put("a", R"({"v":2})");
  ASSERT_OK(storage_.Delete(DataKey("a", 1)));
  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  EXPECT_EQ(Get("a", 1), "DATA_LOSS");
  EXPECT_EQ(Get("a", 2), R"({"v":2})");
}

TEST_F(KvEngineTest, VersionsLoadedUnderAnOlderKeyTermStayReadableAfterRotation) {
  Put("a", R"({"v":1})");
  ASSERT_OK(barrier_->Rotate());
  Put("a", R"({"v":2})");
  engine_ = Open();
  ASSERT_NE(engine_, nullptr);
  EXPECT_EQ(Get("a", 1), R"({"v":1})");
  EXPECT_EQ(Get("a", 2), R"({"v":2})");
  EXPECT_EQ(Put("a", R"({"v":3})"), 3u);
  EXPECT_EQ(Get("a", 1), R"({"v":1})");
}

TEST_F(KvEngineTest, EnginesOnOtherPrefixesAreIndependent) {
  Put("a", "{}");
  absl::StatusOr<std::unique_ptr<KvEngine>> other =
      KvEngine::Create(*barrier_, clock_, "logical/other-mount/");
  ASSERT_TRUE(other.ok());
  EXPECT_CODE((*other)->Read("a", 0), kNotFound);
}

TEST_F(KvEngineTest, ConcurrentWritersGetDistinctConsecutiveVersions) {
  SetConfig(1000, false, absl::ZeroDuration());
  constexpr int kThreads = 8;
  constexpr int kWritesPerThread = 25;
  std::vector<std::vector<uint64_t>> versions(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWritesPerThread; ++i) {
        absl::StatusOr<WriteResult> w =
            engine_->Write("shared", absl::StrCat(R"({"t":)", t, R"(,"i":)", i, "}"), {});
        if (!w.ok()) {
          ++failures;
          continue;
        }
        versions[t].push_back(w->version.version);
        // Readers run alongside the writers.
        if (!engine_->Read("shared", 0).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<uint64_t> all;
  for (const auto& v : versions) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kWritesPerThread));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kWritesPerThread));
  EXPECT_EQ(Meta("shared").current_version, static_cast<uint64_t>(kThreads * kWritesPerThread));
}

// Two engines on the same storage stand in for two server nodes.
TEST_F(KvEngineTest, WriterThatLostARaceRereadsAndRetries) {
  Put("a", R"({"v":1})");
  std::unique_ptr<KvEngine> other = Open();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->Write("a", R"({"v":2})", {}).ok());

  // engine_ still believes current_version is 1: its commit check fails, it re-reads, retries.
  absl::StatusOr<WriteResult> w = engine_->Write("a", R"({"v":3})", {});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->version.version, 3u);
  EXPECT_EQ(Get("a", 2), R"({"v":2})");

  // A CAS based on the stale view is judged against the fresh state.
  ASSERT_TRUE(other->Refresh("a").ok());
  ASSERT_TRUE(other->Write("a", R"({"v":4})", 3).ok());
  absl::StatusOr<WriteResult> stale = engine_->Write("a", R"({"v":5})", 3);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Meta("a").current_version, 4u);  // the failed attempt refreshed the view
}

TEST_F(KvEngineTest, RefreshPicksUpAnotherWritersChanges) {
  std::unique_ptr<KvEngine> other = Open();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->Write("a", R"({"v":1})", {}).ok());
  EXPECT_EQ(Get("a"), "NOT_FOUND");
  ASSERT_OK(engine_->Refresh("a"));
  EXPECT_EQ(Get("a"), R"({"v":1})");
  ASSERT_OK(other->DeleteMetadata("a"));
  ASSERT_OK(engine_->Refresh("a"));
  EXPECT_EQ(Get("a"), "NOT_FOUND");
}

// A storage listener runs on the committing thread after the commit is applied but before the
// engine installs the new state: readers called from there must not block and must see the
// previous state.
TEST_F(KvEngineTest, ReadersSeeThePreviousStateWhileAWriteCommits) {
  Put("a", R"({"v":1})");
  std::atomic<int> observed{0};
  std::atomic<uint64_t> seen_version{0};
  std::string seen_data;
  uint64_t id = storage_.AddListener([&](const storage::Change&) {
    absl::StatusOr<SecretMetadata> m = engine_->ReadMetadata("a");
    if (m.ok()) seen_version = m->current_version;
    absl::StatusOr<ReadResult> r = engine_->Read("a", 0);
    if (r.ok() && r->data_json.has_value()) seen_data = *r->data_json;
    ++observed;
  });
  Put("a", R"({"v":2})");
  storage_.RemoveListener(id);
  EXPECT_EQ(observed.load(), 1);
  EXPECT_EQ(seen_version.load(), 1u);
  EXPECT_EQ(seen_data, R"({"v":1})");
  EXPECT_EQ(Get("a"), R"({"v":2})");
}

}  // namespace
}  // namespace ward::secrets
