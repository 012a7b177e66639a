#include "storage/metered_backend.h"

#include <memory>
#include <string>
#include <vector>

#include "core/testing/fake_clock.h"
#include "gtest/gtest.h"
#include "metrics/registry.h"
#include "storage/memory_backend.h"

namespace ward::storage {
namespace {

// Forwards to a MemoryBackend, advancing a fake clock by a set time per call (so durations
// are exact) and failing calls on demand.
class SlowBackend final : public Backend {
 public:
  explicit SlowBackend(core::FakeClock& clock) : clock_(clock) {}

  absl::StatusOr<Record> Get(std::string_view key) override {
    clock_.Advance(delay_);
    if (!fail_.ok()) return fail_;
    return inner_.Get(key);
  }
  absl::StatusOr<uint64_t> Commit(std::vector<Op> ops) override {
    clock_.Advance(delay_);
    if (!fail_.ok()) return fail_;
    return inner_.Commit(std::move(ops));
  }
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                size_t limit) override {
    clock_.Advance(delay_);
    if (!fail_.ok()) return fail_;
    return inner_.List(prefix, after, limit);
  }
  absl::StatusOr<ScanPage> Scan(std::string_view prefix, std::string_view after,
                                size_t limit) override {
    clock_.Advance(delay_);
    if (!fail_.ok()) return fail_;
    return inner_.Scan(prefix, after, limit);
  }
  uint64_t AddListener(std::function<void(const Change&)> listener) override {
    return inner_.AddListener(std::move(listener));
  }
  void RemoveListener(uint64_t id) override { inner_.RemoveListener(id); }

  absl::Duration delay_ = absl::Milliseconds(3);
  absl::Status fail_;

 private:
  core::FakeClock& clock_;
  MemoryBackend inner_;
};

class MeteredBackendTest : public ::testing::Test {
 protected:
  // The series of `family` with label op=`op`.
  const metrics::SeriesSnapshot* Series(const std::string& family, const std::string& op) {
    snapshot_ = registry_.Snapshot();
    for (const auto& f : snapshot_) {
      if (f.name != family) continue;
      for (const auto& s : f.series) {
        if (s.label_values == std::vector<std::string>{op}) return &s;
      }
    }
    return nullptr;
  }

  core::FakeClock clock_;
  SlowBackend slow_{clock_};
  metrics::Registry registry_;
  MeteredBackend metered_{slow_, registry_, clock_};
  std::vector<metrics::FamilySnapshot> snapshot_;
};

constexpr char kDuration[] = "ward_storage_operation_duration_seconds";
constexpr char kErrors[] = "ward_storage_operation_errors_total";

TEST_F(MeteredBackendTest, EveryOpIsExportedAsZeroFromTheStart) {
  for (const char* op : {"get", "commit", "list", "scan"}) {
    const metrics::SeriesSnapshot* d = Series(kDuration, op);
    ASSERT_NE(d, nullptr) << op;
    EXPECT_EQ(d->count, 0u);
    const metrics::SeriesSnapshot* e = Series(kErrors, op);
    ASSERT_NE(e, nullptr) << op;
    EXPECT_EQ(e->value, 0);
  }
}

TEST_F(MeteredBackendTest, RecordsDurationPerOperationAndForwardsResults) {
  absl::StatusOr<uint64_t> rev = metered_.Put("k", "v");
  ASSERT_TRUE(rev.ok()) << rev.status();
  absl::StatusOr<Record> got = metered_.Get("k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, "v");
  EXPECT_EQ(got->revision, *rev);
  slow_.delay_ = absl::Milliseconds(200);
  absl::StatusOr<ListPage> page = metered_.List("", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->keys, std::vector<std::string>{"k"});

  const metrics::SeriesSnapshot* commit = Series(kDuration, "commit");
  ASSERT_NE(commit, nullptr);
  EXPECT_EQ(commit->count, 1u);
  EXPECT_DOUBLE_EQ(commit->sum, 0.003);
  const metrics::SeriesSnapshot* get = Series(kDuration, "get");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get->count, 1u);
  const metrics::SeriesSnapshot* list = Series(kDuration, "list");
  ASSERT_NE(list, nullptr);
  EXPECT_EQ(list->count, 1u);
  EXPECT_DOUBLE_EQ(list->sum, 0.2);
  // 0.2 s lands in the 0.25 bucket, not below: bounds index 11 is 0.25.
  std::vector<double> bounds = MeteredBackend::Buckets();
  ASSERT_EQ(bounds[11], 0.25);
  EXPECT_EQ(list->cumulative[10], 0u);
  EXPECT_EQ(list->cumulative[11], 1u);
  for (const char* op : {"get", "commit", "list"}) EXPECT_EQ(Series(kErrors, op)->value, 0) << op;
}

TEST_F(MeteredBackendTest, ScanIsForwardedAndRecordedAsOneOperation) {
  absl::StatusOr<uint64_t> rev = metered_.Put("k", "v");
  ASSERT_TRUE(rev.ok()) << rev.status();
  slow_.delay_ = absl::Milliseconds(40);
  absl::StatusOr<ScanPage> page = metered_.Scan("", "", 0);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].key, "k");
  EXPECT_EQ(page->records[0].value, "v");
  EXPECT_EQ(page->records[0].revision, *rev);
  const metrics::SeriesSnapshot* scan = Series(kDuration, "scan");
  ASSERT_NE(scan, nullptr);
  EXPECT_EQ(scan->count, 1u);
  EXPECT_DOUBLE_EQ(scan->sum, 0.04);
  EXPECT_EQ(Series(kDuration, "get")->count, 0u);
  EXPECT_EQ(Series(kDuration, "list")->count, 0u);

  slow_.fail_ = absl::UnavailableError("disk on fire");
  EXPECT_EQ(metered_.Scan("", "", 0).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Series(kErrors, "scan")->value, 1);
  EXPECT_EQ(Series(kDuration, "scan")->count, 2u);
}

TEST_F(MeteredBackendTest, AbsentKeysAndFailedChecksAreNotErrors) {
  EXPECT_EQ(metered_.Get("absent").status().code(), absl::StatusCode::kNotFound);
  std::vector<Op> ops;
  ops.push_back(Op::Check("absent", 7));
  EXPECT_EQ(metered_.Commit(std::move(ops)).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Series(kErrors, "get")->value, 0);
  EXPECT_EQ(Series(kErrors, "commit")->value, 0);
  EXPECT_EQ(Series(kDuration, "get")->count, 1u);
  EXPECT_EQ(Series(kDuration, "commit")->count, 1u);
}

TEST_F(MeteredBackendTest, FailuresAreCountedPerOperationAndPassedThrough) {
  slow_.fail_ = absl::UnavailableError("disk on fire");
  EXPECT_EQ(metered_.Get("k").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(metered_.Put("k", "v").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(metered_.Put("k", "v").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(metered_.List("", "", 0).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Series(kErrors, "get")->value, 1);
  EXPECT_EQ(Series(kErrors, "commit")->value, 2);
  EXPECT_EQ(Series(kErrors, "list")->value, 1);
  EXPECT_EQ(Series(kDuration, "commit")->count, 2u);
}

TEST_F(MeteredBackendTest, ListenersAreForwarded) {
  std::vector<uint64_t> revisions;
  uint64_t id = metered_.AddListener([&](const Change& c) { revisions.push_back(c.revision); });
  ASSERT_TRUE(metered_.Put("a", "1").ok());
  metered_.RemoveListener(id);
  ASSERT_TRUE(metered_.Put("b", "2").ok());
  EXPECT_EQ(revisions, std::vector<uint64_t>{1});
}

}  // namespace
}  // namespace ward::storage
