// Conformance tests every Backend must pass, run against each implementation.

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/backend.h"
#include "storage/memory_backend.h"
#include "storage/sqlite_backend.h"

namespace ward::storage {
namespace {

using std::string_literals::operator""s;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct BackendKind {
  std::string name;
  // Opens a fresh backend whose files, if any, live under `dir`.
  std::function<std::unique_ptr<Backend>(const std::string& dir)> open;
};

// Forwards everything to a MemoryBackend except Scan, so that Backend's default Scan (List,
// then Get per key) is held to the same contract as the backends' own.
class DefaultScanBackend final : public Backend {
 public:
  absl::StatusOr<Record> Get(std::string_view key) override { return inner_.Get(key); }
  absl::StatusOr<uint64_t> Commit(std::vector<Op> ops) override {
    return inner_.Commit(std::move(ops));
  }
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                size_t limit) override {
    return inner_.List(prefix, after, limit);
  }
  uint64_t AddListener(std::function<void(const Change&)> listener) override {
    return inner_.AddListener(std::move(listener));
  }
  void RemoveListener(uint64_t id) override { inner_.RemoveListener(id); }

 private:
  MemoryBackend inner_;
};

std::vector<BackendKind> AllBackendKinds() {
  std::vector<BackendKind> kinds;
  kinds.push_back({"DefaultScan", [](const std::string&) -> std::unique_ptr<Backend> {
                     return std::make_unique<DefaultScanBackend>();
                   }});
  kinds.push_back({"Memory", [](const std::string&) -> std::unique_ptr<Backend> {
                     return std::make_unique<MemoryBackend>();
                   }});
  kinds.push_back({"Sqlite", [](const std::string& dir) -> std::unique_ptr<Backend> {
                     SqliteOptions options;
                     options.path = dir + "/ward.db";
                     absl::StatusOr<std::unique_ptr<SqliteBackend>> backend =
                         SqliteBackend::Create(std::move(options));
                     EXPECT_TRUE(backend.ok()) << backend.status();
                     if (!backend.ok()) return nullptr;
                     return *std::move(backend);
                   }});
  return kinds;
}

class BackendTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    backend_ = GetParam().open(dir_.path());
    ASSERT_NE(backend_, nullptr);
  }

  uint64_t MustPut(std::string key, std::string value) {
    absl::StatusOr<uint64_t> revision = backend_->Put(std::move(key), std::move(value));
    EXPECT_TRUE(revision.ok()) << revision.status();
    return revision.value_or(0);
  }

  std::vector<std::string> ListKeys(std::string_view prefix, std::string_view after = "",
                                    size_t limit = 0) {
    absl::StatusOr<ListPage> page = backend_->List(prefix, after, limit);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->keys : std::vector<std::string>{};
  }

  core::TempDir dir_;
  std::unique_ptr<Backend> backend_;
};

TEST_P(BackendTest, GetMissingKeyIsNotFound) {
  EXPECT_EQ(backend_->Get("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(BackendTest, PutThenGetReturnsValueAndRevision) {
  uint64_t revision = MustPut("k", "v");
  EXPECT_GT(revision, 0u);
  absl::StatusOr<Record> record = backend_->Get("k");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->value, "v");
  EXPECT_EQ(record->revision, revision);
}

TEST_P(BackendTest, OverwriteReplacesValueAndRevision) {
  uint64_t first = MustPut("k", "one");
  uint64_t second = MustPut("k", "two");
  EXPECT_GT(second, first);
  absl::StatusOr<Record> record = backend_->Get("k");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->value, "two");
  EXPECT_EQ(record->revision, second);
}

TEST_P(BackendTest, RevisionsAreConsecutiveAndFailedCommitsUseNone) {
  uint64_t r1 = MustPut("a", "1");
  uint64_t r2 = MustPut("b", "2");
  std::vector<Op> stale;
  stale.push_back(Op::Check("a", r1 + 100));
  stale.push_back(Op::Put("c", "3"));
  EXPECT_EQ(backend_->Commit(std::move(stale)).status().code(), absl::StatusCode::kAborted);
  uint64_t r3 = MustPut("c", "3");
  EXPECT_EQ(r2, r1 + 1);
  EXPECT_EQ(r3, r2 + 1);
}

TEST_P(BackendTest, EveryKeyOfACommitCarriesItsRevision) {
  MustPut("x", "old");
  std::vector<Op> ops;
  ops.push_back(Op::Put("x", "1"));
  ops.push_back(Op::Put("y", "2"));
  absl::StatusOr<uint64_t> revision = backend_->Commit(std::move(ops));
  ASSERT_TRUE(revision.ok()) << revision.status();
  EXPECT_EQ(backend_->Get("x")->revision, *revision);
  EXPECT_EQ(backend_->Get("y")->revision, *revision);
}

TEST_P(BackendTest, LaterOpOnSameKeyWins) {
  std::vector<Op> ops;
  ops.push_back(Op::Put("k", "first"));
  ops.push_back(Op::Put("k", "second"));
  ops.push_back(Op::Put("gone", "x"));
  ops.push_back(Op::Delete("gone"));
  ASSERT_TRUE(backend_->Commit(std::move(ops)).ok());
  EXPECT_EQ(backend_->Get("k")->value, "second");
  EXPECT_EQ(backend_->Get("gone").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(BackendTest, DeleteRemovesKey) {
  MustPut("k", "v");
  absl::StatusOr<uint64_t> revision = backend_->Delete("k");
  ASSERT_TRUE(revision.ok()) << revision.status();
  EXPECT_EQ(backend_->Get("k").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ListKeys(""), IsEmpty());
}

TEST_P(BackendTest, DeleteOfAbsentKeySucceeds) {
  EXPECT_TRUE(backend_->Delete("never-written").ok());
}

TEST_P(BackendTest, BinaryKeysAndValuesRoundTrip) {
  std::string key = "k\x00\xff\x01"s;
  std::string value = "\x00\x00v\xff\x00"s;
  MustPut(key, value);
  absl::StatusOr<Record> record = backend_->Get(key);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->value, value);
  EXPECT_EQ(backend_->Get("k").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ListKeys("k"), ElementsAre(key));
}

TEST_P(BackendTest, EmptyValueIsStored) {
  MustPut("k", "");
  absl::StatusOr<Record> record = backend_->Get("k");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->value, "");
}

TEST_P(BackendTest, EmptyKeyIsInvalidArgumentAndNothingApplied) {
  std::vector<Op> ops;
  ops.push_back(Op::Put("ok", "1"));
  ops.push_back(Op::Put("", "2"));
  EXPECT_EQ(backend_->Commit(std::move(ops)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->Get("ok").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->Delete("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(BackendTest, CheckWithCurrentRevisionCommits) {
  uint64_t revision = MustPut("k", "v1");
  std::vector<Op> ops;
  ops.push_back(Op::Check("k", revision));
  ops.push_back(Op::Put("k", "v2"));
  ASSERT_TRUE(backend_->Commit(std::move(ops)).ok());
  EXPECT_EQ(backend_->Get("k")->value, "v2");
}

TEST_P(BackendTest, CheckWithStaleRevisionAbortsAndAppliesNothing) {
  uint64_t first = MustPut("k", "v1");
  uint64_t second = MustPut("k", "v2");
  std::vector<Op> ops;
  ops.push_back(Op::Put("other", "x"));
  ops.push_back(Op::Check("k", first));
  ops.push_back(Op::Put("k", "v3"));
  EXPECT_EQ(backend_->Commit(std::move(ops)).status().code(), absl::StatusCode::kAborted);
  absl::StatusOr<Record> record = backend_->Get("k");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->value, "v2");
  EXPECT_EQ(record->revision, second);
  EXPECT_EQ(backend_->Get("other").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(BackendTest, CheckZeroMeansAbsent) {
  std::vector<Op> create;
  create.push_back(Op::Check("k", 0));
  create.push_back(Op::Put("k", "v"));
  ASSERT_TRUE(backend_->Commit(std::move(create)).ok());

  std::vector<Op> again;
  again.push_back(Op::Check("k", 0));
  again.push_back(Op::Put("k", "w"));
  EXPECT_EQ(backend_->Commit(std::move(again)).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(backend_->Get("k")->value, "v");
}

TEST_P(BackendTest, CheckOfAbsentKeyWithNonZeroRevisionAborts) {
  std::vector<Op> ops;
  ops.push_back(Op::Check("k", 1));
  ops.push_back(Op::Put("k", "v"));
  EXPECT_EQ(backend_->Commit(std::move(ops)).status().code(), absl::StatusCode::kAborted);
}

TEST_P(BackendTest, ChecksSeeStateBeforeTheCommit) {
  uint64_t revision = MustPut("k", "v1");
  // The put precedes the check in the op list, but checks are evaluated first.
  std::vector<Op> ops;
  ops.push_back(Op::Put("k", "v2"));
  ops.push_back(Op::Check("k", revision));
  ASSERT_TRUE(backend_->Commit(std::move(ops)).ok());
  EXPECT_EQ(backend_->Get("k")->value, "v2");
}

TEST_P(BackendTest, ListReturnsKeysWithPrefixInByteOrder) {
  for (const char* key : {"b/2", "a/1", "b/1", "b", "c", "b/10", "ba"}) MustPut(key, "v");
  EXPECT_THAT(ListKeys("b/"), ElementsAre("b/1", "b/10", "b/2"));
  EXPECT_THAT(ListKeys(""), ElementsAre("a/1", "b", "b/1", "b/10", "b/2", "ba", "c"));
  EXPECT_THAT(ListKeys("zz"), IsEmpty());
}

TEST_P(BackendTest, ListAfterIsExclusive) {
  for (const char* key : {"p/a", "p/b", "p/c", "q"}) MustPut(key, "v");
  EXPECT_THAT(ListKeys("p/", "p/a"), ElementsAre("p/b", "p/c"));
  EXPECT_THAT(ListKeys("p/", "p/aa"), ElementsAre("p/b", "p/c"));
  EXPECT_THAT(ListKeys("p/", "p/c"), IsEmpty());
  EXPECT_THAT(ListKeys("p/", "a"), ElementsAre("p/a", "p/b", "p/c"));  // before the prefix
  EXPECT_THAT(ListKeys("p/", "z"), IsEmpty());                         // after the prefix
}

TEST_P(BackendTest, ListLimitSetsMoreOnlyWhenKeysRemain) {
  for (const char* key : {"k1", "k2", "k3"}) MustPut(key, "v");
  absl::StatusOr<ListPage> page = backend_->List("k", "", 2);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->keys, ElementsAre("k1", "k2"));
  EXPECT_TRUE(page->more);

  page = backend_->List("k", "k2", 2);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->keys, ElementsAre("k3"));
  EXPECT_FALSE(page->more);

  page = backend_->List("k", "", 3);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->keys.size(), 3u);
  EXPECT_FALSE(page->more);

  page = backend_->List("k", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->keys.size(), 3u);
  EXPECT_FALSE(page->more);
}

TEST_P(BackendTest, ListPagesThroughEverything) {
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i) {
    std::string key = "item/" + std::to_string(100 + i);
    MustPut(key, "v");
    expected.push_back(key);
  }
  MustPut("itemz", "v");
  std::vector<std::string> seen;
  std::string after;
  for (int round = 0; round < 20; ++round) {
    absl::StatusOr<ListPage> page = backend_->List("item/", after, 7);
    ASSERT_TRUE(page.ok()) << page.status();
    seen.insert(seen.end(), page->keys.begin(), page->keys.end());
    if (!page->more) break;
    after = page->keys.back();
  }
  EXPECT_EQ(seen, expected);
}

TEST_P(BackendTest, ListPrefixEndingInFfUsesCorrectUpperBound) {
  for (std::string key :
       {"a"s, "a\xfe"s, "a\xff"s, "a\xff\x00"s, "a\xff\xff"s, "a\xff\xff\x01"s, "b"s, "b\x00"s}) {
    MustPut(key, "v");
  }
  EXPECT_THAT(ListKeys("a\xff"),
              ElementsAre("a\xff"s, "a\xff\x00"s, "a\xff\xff"s, "a\xff\xff\x01"s));
  EXPECT_THAT(ListKeys("a\xff\xff"), ElementsAre("a\xff\xff"s, "a\xff\xff\x01"s));
  EXPECT_THAT(ListKeys("a\xff", "a\xff\x00"s), ElementsAre("a\xff\xff"s, "a\xff\xff\x01"s));
  EXPECT_THAT(ListKeys("a"),
              ElementsAre("a"s, "a\xfe"s, "a\xff"s, "a\xff\x00"s, "a\xff\xff"s, "a\xff\xff\x01"s));
}

TEST_P(BackendTest, ListAllFfPrefixHasNoUpperBound) {
  for (std::string key : {"\xfe"s, "\xff"s, "\xff\xff"s, "\xff\xff\xff\x00"s}) MustPut(key, "v");
  EXPECT_THAT(ListKeys("\xff"), ElementsAre("\xff"s, "\xff\xff"s, "\xff\xff\xff\x00"s));
  EXPECT_THAT(ListKeys("\xff\xff"), ElementsAre("\xff\xff"s, "\xff\xff\xff\x00"s));
}

TEST_P(BackendTest, ScanReturnsRecordsWithPrefixInByteOrder) {
  uint64_t r1 = MustPut("b/2", "two");
  uint64_t r2 = MustPut("b/1", "one");
  MustPut("a", "x");
  MustPut("ba", "x");
  uint64_t r3 = MustPut("b/10", std::string("ten\0\xff", 5));
  absl::StatusOr<ScanPage> page = backend_->Scan("b/", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_FALSE(page->more);
  ASSERT_EQ(page->records.size(), 3u);
  EXPECT_EQ(page->records[0].key, "b/1");
  EXPECT_EQ(page->records[0].value, "one");
  EXPECT_EQ(page->records[0].revision, r2);
  EXPECT_EQ(page->records[1].key, "b/10");
  EXPECT_EQ(page->records[1].value, std::string("ten\0\xff", 5));
  EXPECT_EQ(page->records[1].revision, r3);
  EXPECT_EQ(page->records[2].key, "b/2");
  EXPECT_EQ(page->records[2].value, "two");
  EXPECT_EQ(page->records[2].revision, r1);

  page = backend_->Scan("zz", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->records, IsEmpty());
  EXPECT_FALSE(page->more);
}

TEST_P(BackendTest, ScanPagesThroughEverythingAsListDoes) {
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i) {
    std::string key = "item/" + std::to_string(100 + i);
    MustPut(key, "value of " + key);
    expected.push_back(key);
  }
  MustPut("itemz", "v");
  MustPut("item", "v");
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  for (; pages < 20; ++pages) {
    absl::StatusOr<ScanPage> page = backend_->Scan("item/", after, 7);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->records.size(), 7u);
    for (const KeyedRecord& r : page->records) {
      EXPECT_EQ(r.value, "value of " + r.key);
      seen.push_back(r.key);
    }
    if (!page->more) break;
    after = page->records.back().key;
  }
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(pages, 3);  // 7 + 7 + 7 + 4

  // A page that ends exactly at the last record says there is no more.
  absl::StatusOr<ScanPage> page = backend_->Scan("item/", "item/117", 7);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->records.size(), 7u);
  EXPECT_FALSE(page->more);
  // `after` before the prefix starts at the prefix; after it, nothing.
  page = backend_->Scan("item/", "a", 1);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].key, "item/100");
  EXPECT_TRUE(page->more);
  page = backend_->Scan("item/", "z", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->records, IsEmpty());
}

TEST_P(BackendTest, ScanPrefixEndingInFfUsesCorrectUpperBound) {
  for (std::string key : {"a\xfe"s, "a\xff"s, "a\xff\x00"s, "b"s}) MustPut(key, "v");
  absl::StatusOr<ScanPage> page = backend_->Scan("a\xff", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  std::vector<std::string> keys;
  for (const KeyedRecord& r : page->records) keys.push_back(r.key);
  EXPECT_THAT(keys, ElementsAre("a\xff"s, "a\xff\x00"s));
}

TEST_P(BackendTest, KeysCompareAsUnsignedBytes) {
  for (std::string key : {"\x80"s, "\x7f"s, "\x00"s, "\x01"s}) MustPut(key, "v");
  EXPECT_THAT(ListKeys(""), ElementsAre("\x00"s, "\x01"s, "\x7f"s, "\x80"s));
}

TEST_P(BackendTest, ListenerSeesCommittedChanges) {
  absl::Mutex mu;
  std::vector<Change> changes;
  backend_->AddListener([&](const Change& change) {
    absl::MutexLock lock(&mu);
    changes.push_back(change);
  });
  std::vector<Op> ops;
  ops.push_back(Op::Put("b", "1"));
  ops.push_back(Op::Delete("a"));
  ops.push_back(Op::Check("c", 0));
  absl::StatusOr<uint64_t> revision = backend_->Commit(std::move(ops));
  ASSERT_TRUE(revision.ok()) << revision.status();

  absl::MutexLock lock(&mu);
  ASSERT_EQ(changes.size(), 1u);  // delivered before Commit returned
  EXPECT_EQ(changes[0].revision, *revision);
  EXPECT_THAT(changes[0].keys, ElementsAre("a", "b"));
}

TEST_P(BackendTest, ListenerNotCalledForFailedCommitOrAfterRemoval) {
  std::atomic<int> calls{0};
  uint64_t id = backend_->AddListener([&](const Change&) { ++calls; });
  std::vector<Op> ops;
  ops.push_back(Op::Check("k", 42));
  EXPECT_EQ(backend_->Commit(std::move(ops)).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(calls.load(), 0);
  MustPut("k", "v");
  EXPECT_EQ(calls.load(), 1);
  backend_->RemoveListener(id);
  MustPut("k", "w");
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(BackendTest, ListenerMayReadAndRemoveItself) {
  std::string seen;
  uint64_t id = 0;
  id = backend_->AddListener([&](const Change& change) {
    absl::StatusOr<Record> record = backend_->Get(change.keys.at(0));
    seen = record.ok() ? record->value : record.status().ToString();
    backend_->RemoveListener(id);
  });
  MustPut("k", "v");
  EXPECT_EQ(seen, "v");
  MustPut("k", "w");
  EXPECT_EQ(seen, "v");
}

TEST_P(BackendTest, ConcurrentCommitsGetDistinctRevisions) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20;
  absl::Mutex mu;
  std::set<uint64_t> revisions;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<uint64_t> revision =
            backend_->Put("t" + std::to_string(t) + "/" + std::to_string(i), "v");
        if (!revision.ok()) {
          ++failures;
          continue;
        }
        absl::MutexLock lock(&mu);
        revisions.insert(*revision);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(revisions.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(*revisions.rbegin() - *revisions.begin() + 1, size_t{kThreads * kPerThread});
  EXPECT_EQ(ListKeys("t").size(), size_t{kThreads * kPerThread});
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendTest, ::testing::ValuesIn(AllBackendKinds()),
                         [](const ::testing::TestParamInfo<BackendKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace ward::storage
