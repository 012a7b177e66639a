#include "audit/file_device.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "audit/chain.h"
#include "audit/test_util.h"
#include "core/testing/fake_clock.h"
#include "core/time_format.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace ward::audit {
namespace {

class FileDeviceTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<FileDevice>> Open(FileDeviceOptions options = {},
                                                   std::string path = "") {
    return FileDevice::Open(path.empty() ? file() : path, testing::TestHasher(),
                            testing::TestSigner(), clock_, std::move(options));
  }
  std::string file() const { return dir_.Join("audit.log"); }
  // Options that sync after every batch, with the writer held in its first sync until `release`
  // is notified; `syncs` counts the syncs begun.
  static FileDeviceOptions HoldFirstSync(absl::Notification& release, std::atomic<int>& syncs) {
    FileDeviceOptions options;
    options.sync_interval = absl::ZeroDuration();
    options.before_sync = [&release, &syncs] {
      if (syncs.fetch_add(1) == 0) release.WaitForNotification();
    };
    return options;
  }
  VerifyReport VerifyClosed() {
    VerifyOptions o;
    o.public_key_hex = testing::TestSigner().public_key_hex();
    auto r = VerifyFile(file(), o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : VerifyReport{};
  }

  core::TempDir dir_;
  core::FakeClock clock_;
};

TEST_F(FileDeviceTest, WritesChainWithPeriodicAndClosingCheckpoints) {
  FileDeviceOptions options;
  options.checkpoint_every = 2;
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok()) << dev.status();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());
  // Written (not only queued) before Append returned: the file already holds the records.
  EXPECT_EQ(testing::Lines(testing::ReadAll(file())).size(), 7u);  // 5 records + 2 checkpoints
  ASSERT_TRUE((*dev)->Close().ok());
  VerifyReport r = VerifyClosed();
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.records, 5u);
  EXPECT_EQ(r.checkpoints, 3u);
  EXPECT_EQ(r.checkpoints_verified, 3u);
  FileDevice::Stats s = (*dev)->GetStats();
  EXPECT_EQ(s.records, 5u);
  EXPECT_EQ(s.checkpoints, 3u);
  EXPECT_EQ(s.failures, 0u);
}

TEST_F(FileDeviceTest, AppendAfterCloseIsRefused) {
  auto dev = Open();
  ASSERT_TRUE(dev.ok());
  ASSERT_TRUE((*dev)->Close().ok());
  EXPECT_TRUE((*dev)->Close().ok());  // idempotent
  EXPECT_EQ((*dev)->Append("{}").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FileDeviceTest, ReopenContinuesTheChain) {
  for (int round = 0; round < 3; ++round) {
    auto dev = Open();
    ASSERT_TRUE(dev.ok()) << dev.status();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());
  }  // each destructor closes with a checkpoint
  VerifyReport r = VerifyClosed();
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.records, 9u);
  EXPECT_EQ(r.checkpoints, 3u);
}

TEST_F(FileDeviceTest, ReopenAfterCrashDropsPartialLineAndSignsTheTail) {
  {
    auto dev = Open();
    ASSERT_TRUE(dev.ok());
    ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());
    ASSERT_TRUE((*dev)->Close().ok());
  }
  // Simulate a crash: a complete record without checkpoint, then half a line.
  std::string text = testing::ReadAll(file());
  std::vector<std::string> lines = testing::Lines(text);
  auto head = HeadAfter(lines.back());
  ASSERT_TRUE(head.ok());
  std::string unsigned_record = ChainLine(R"({"type":"request"})", head->seq + 1, head->hash);
  testing::WriteAll(file(), text + unsigned_record + "\n{\"type\":\"req");
  {
    auto dev = Open();
    ASSERT_TRUE(dev.ok()) << dev.status();
    ASSERT_TRUE((*dev)->Append(R"({"type":"response"})").ok());
  }
  VerifyReport r = VerifyClosed();
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.records, 3u);
}

VerifyReport VerifyPath(const std::string& path, bool with_key = true) {
  VerifyOptions o;
  if (with_key) o.public_key_hex = testing::TestSigner().public_key_hex();
  auto r = VerifyFile(path, o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : VerifyReport{};
}

TEST_F(FileDeviceTest, ReopenAfterRenameStartsAFreshFileThatContinuesTheChain) {
  auto dev = Open();
  ASSERT_TRUE(dev.ok()) << dev.status();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());
  ASSERT_EQ(::rename(file().c_str(), dir_.Join("audit.log.1").c_str()), 0);
  ASSERT_TRUE((*dev)->Reopen().ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*dev)->Append(R"({"type":"response"})").ok());
  ASSERT_TRUE((*dev)->Close().ok());
  EXPECT_EQ((*dev)->GetStats().reopens, 1u);

  // The rotated file ends with a checkpoint; the new one starts with a rotation line.
  VerifyReport old_file = VerifyPath(dir_.Join("audit.log.1"));
  ASSERT_FALSE(old_file.problem.has_value()) << old_file.problem->message;
  EXPECT_EQ(old_file.records, 3u);
  EXPECT_EQ(old_file.last_seq, 4u);  // 3 records + the closing checkpoint
  VerifyReport new_file = VerifyPath(file());
  ASSERT_FALSE(new_file.problem.has_value()) << new_file.problem->message;
  EXPECT_TRUE(new_file.starts_with_rotation);
  EXPECT_EQ(new_file.first_seq, 5u);
  EXPECT_EQ(new_file.records, 2u);
  EXPECT_EQ(new_file.checkpoints_verified, 2u);  // rotation line + closing checkpoint
  EXPECT_TRUE(FollowsFrom(old_file, new_file));
  EXPECT_FALSE(FollowsFrom(new_file, old_file));
  std::vector<std::string> lines = testing::Lines(testing::ReadAll(file()));
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find(R"("type":"rotation")"), std::string::npos) << lines[0];
}

// Rotates `dev` (3 records before, 2 after) and checks that both files verify and link up.
void RotateAndCheck(FileDevice& dev, const core::TempDir& dir, const std::string& path) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(dev.Append(R"({"type":"request"})").ok());
  ASSERT_EQ(::rename(path.c_str(), dir.Join("audit.log.1").c_str()), 0);
  ASSERT_TRUE(dev.Reopen().ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(dev.Append(R"({"type":"response"})").ok());
  ASSERT_TRUE(dev.Close().ok());
  auto old_file = VerifyFile(dir.Join("audit.log.1"), {});
  auto new_file = VerifyFile(path, {});
  ASSERT_TRUE(old_file.ok() && new_file.ok());
  EXPECT_FALSE(old_file->problem.has_value());
  EXPECT_FALSE(new_file->problem.has_value());
  EXPECT_EQ(old_file->records, 3u);
  EXPECT_EQ(new_file->records, 2u);
  EXPECT_TRUE(FollowsFrom(*old_file, *new_file));
}

TEST_F(FileDeviceTest, ReopenWorksWhenSyncingEveryBatch) {
  // No sync thread with a zero interval: a checkpoint must not leave a sync wanted that a
  // rotation would wait for forever.
  FileDeviceOptions options;
  options.sync_interval = absl::ZeroDuration();
  options.checkpoint_every = 2;
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  RotateAndCheck(**dev, dir_, file());
}

TEST_F(FileDeviceTest, AQueuedLocalFileSyncsAndRotates) {
  FileDeviceOptions options;
  options.queued_only = true;  // as a file on a network file system is
  options.checkpoint_every = 2;
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  EXPECT_FALSE((*dev)->writes_directly());
  RotateAndCheck(**dev, dir_, file());
  EXPECT_GE((*dev)->GetStats().syncs, 2u);  // checkpoints, the rotation, the close
}

TEST_F(FileDeviceTest, RotationDoesNotHoldUpDirectAppendsWhileTheOldFileSyncs) {
  absl::Notification release;
  std::atomic<bool> armed{false};
  std::atomic<int> held{0};
  FileDeviceOptions options;
  options.sync_interval = absl::Hours(1);
  options.before_sync = [&] {
    if (armed.load() && held.fetch_add(1) == 0) release.WaitForNotification();
  };
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  FileDevice& d = **dev;
  ASSERT_TRUE(d.writes_directly());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(d.Append(R"({"type":"request"})").ok());
  ASSERT_EQ(::rename(file().c_str(), dir_.Join("audit.log.1").c_str()), 0);
  armed = true;
  std::thread reopener([&] { EXPECT_TRUE(d.Reopen().ok()); });
  while (held.load() == 0) std::this_thread::yield();  // the old file's sync hangs
  // Meanwhile records go straight into the new file.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(d.Append(R"({"type":"response"})").ok());
  std::vector<std::string> lines = testing::Lines(testing::ReadAll(file()));
  ASSERT_EQ(lines.size(), 3u);  // the rotation line and the two records
  EXPECT_NE(lines[0].find(R"("type":"rotation")"), std::string::npos) << lines[0];
  release.Notify();
  reopener.join();
  ASSERT_TRUE(d.Close().ok());
  auto old_file = VerifyFile(dir_.Join("audit.log.1"), {});
  auto new_file = VerifyFile(file(), {});
  ASSERT_TRUE(old_file.ok() && new_file.ok());
  EXPECT_FALSE(new_file->problem.has_value());
  EXPECT_TRUE(FollowsFrom(*old_file, *new_file));
}

TEST_F(FileDeviceTest, ReopenWithoutRotationKeepsTheSameFile) {
  auto dev = Open();
  ASSERT_TRUE(dev.ok()) << dev.status();
  ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());
  ASSERT_TRUE((*dev)->Reopen().ok());
  ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());
  ASSERT_TRUE((*dev)->Close().ok());
  EXPECT_EQ((*dev)->GetStats().reopens, 0u);
  VerifyReport r = VerifyClosed();
  ASSERT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.records, 2u);
  EXPECT_EQ(r.checkpoints, 1u);  // only the closing one
  EXPECT_FALSE(r.starts_with_rotation);
}

TEST_F(FileDeviceTest, ReopenThatCannotOpenTheNewFileKeepsWritingTheOldOne) {
  std::string sub = dir_.Join("logs");
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  std::string path = sub + "/audit.log";
  auto dev = Open({}, path);
  ASSERT_TRUE(dev.ok()) << dev.status();
  ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());
  std::string moved = dir_.Join("moved.log");
  ASSERT_EQ(::rename(path.c_str(), moved.c_str()), 0);
  ASSERT_EQ(::rmdir(sub.c_str()), 0);  // the directory is gone: the new file cannot be created
  EXPECT_EQ((*dev)->Reopen().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());
  ASSERT_TRUE((*dev)->Close().ok());
  VerifyReport r = VerifyPath(moved);
  ASSERT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.records, 2u);
  EXPECT_EQ(r.checkpoints, 2u);  // the rotation attempt's checkpoint and the closing one
}

TEST_F(FileDeviceTest, ReopenAfterCloseIsRefused) {
  auto dev = Open();
  ASSERT_TRUE(dev.ok());
  ASSERT_TRUE((*dev)->Close().ok());
  EXPECT_EQ((*dev)->Reopen().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FileDeviceTest, ConcurrentRecordsDuringReopenAllLandInOneOfTheFiles) {
  auto dev = Open();
  ASSERT_TRUE(dev.ok()) << dev.status();
  ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());  // the old file is not empty
  std::atomic<int> ok{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if ((*dev)->Append(R"({"type":"request"})").ok()) ++ok;
      }
    });
  }
  ASSERT_EQ(::rename(file().c_str(), dir_.Join("audit.log.1").c_str()), 0);
  ASSERT_TRUE((*dev)->Reopen().ok());
  for (auto& w : writers) w.join();
  ASSERT_TRUE((*dev)->Close().ok());
  EXPECT_EQ(ok.load(), 100);
  VerifyReport a = VerifyPath(dir_.Join("audit.log.1"));
  VerifyReport b = VerifyPath(file());
  ASSERT_FALSE(a.problem.has_value()) << a.problem->message;
  ASSERT_FALSE(b.problem.has_value()) << b.problem->message;
  EXPECT_EQ(a.records + b.records, 101u);
  EXPECT_TRUE(FollowsFrom(a, b));
}

TEST_F(FileDeviceTest, ForeignFileIsNotAppendedTo) {
  testing::WriteAll(file(), "some other log line\n");
  EXPECT_EQ(Open().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(FileDeviceTest, MissingDirectoryIsNotFound) {
  EXPECT_EQ(Open({}, dir_.Join("no/such/dir.log")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FileDeviceTest, FullDeviceFailsClosed) {
  auto dev = Open({}, "/dev/full");
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->Append(R"({"type":"request"})").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*dev)->GetStats().failures, 1u);
  EXPECT_EQ((*dev)->GetStats().records, 0u);
}

TEST_F(FileDeviceTest, ConcurrentRecordsShareOneWriteAndSync) {
  // The writer is held in its first sync until every other record is queued, so those records
  // must go out as a single batch: 2 syncs for kThreads + 1 records (and 1 for closing).
  constexpr int kThreads = 32;
  absl::Notification release;
  std::atomic<int> syncs{0};
  FileDeviceOptions options;
  options.sync_interval = absl::ZeroDuration();  // a sync after every batch
  options.before_sync = [&] {
    if (syncs.fetch_add(1) == 0) release.WaitForNotification();
  };
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  FileDevice& d = **dev;
  ASSERT_TRUE(d.Append(R"({"type":"request","first":true})").ok());  // writer now in sync
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      if (d.Append(absl::StrCat("{\"type\":\"request\",\"i\":", i, "}")).ok()) ok.fetch_add(1);
    });
  }
  while (d.GetStats().queued < static_cast<size_t>(kThreads)) std::this_thread::yield();
  release.Notify();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
  ASSERT_TRUE(d.Close().ok());
  FileDevice::Stats s = d.GetStats();
  EXPECT_EQ(s.records, kThreads + 1u);
  EXPECT_EQ(s.batches, 3u);  // the first record, the other 32 together, the closing checkpoint
  EXPECT_EQ(s.syncs, 3u);
  VerifyReport r = VerifyClosed();
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.records, kThreads + 1u);
}

TEST_F(FileDeviceTest, ManyConcurrentRecordsNeedFewerSyncsThanRecords) {
  constexpr int kThreads = 8, kPerThread = 200;
  FileDeviceOptions options;
  options.sync_interval = absl::ZeroDuration();  // even syncing every batch
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!(*dev)->Append(R"({"type":"request"})").ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE((*dev)->Close().ok());
  FileDevice::Stats s = (*dev)->GetStats();
  EXPECT_EQ(s.records, uint64_t{kThreads * kPerThread});
  EXPECT_EQ(s.syncs, s.batches);  // one sync per batch (the closing checkpoint included)
  EXPECT_LE(s.batches, s.records + 1);
  EXPECT_FALSE(VerifyClosed().problem.has_value());
}

TEST_F(FileDeviceTest, FullQueueOnASlowDeviceFailsClosedAfterTheDeadline) {
  absl::Notification release;
  std::atomic<int> syncs{0};
  FileDeviceOptions options;
  options.queue_capacity = 1;
  options.timeout = absl::Milliseconds(200);
  options.sync_interval = absl::ZeroDuration();  // the writer waits for each batch's sync
  options.before_sync = [&] {
    if (syncs.fetch_add(1) == 0) release.WaitForNotification();
  };
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  FileDevice& d = **dev;
  ASSERT_TRUE(d.Append(R"({"type":"request"})").ok());  // writer stuck in its sync
  // This one fills the queue; its write cannot happen before the deadline either.
  std::thread filler(
      [&] { EXPECT_EQ(d.Append("{}").code(), absl::StatusCode::kDeadlineExceeded); });
  while (d.GetStats().queued < 1) std::this_thread::yield();
  EXPECT_EQ(d.Append("{}").code(), absl::StatusCode::kDeadlineExceeded);  // no room
  filler.join();
  release.Notify();
  ASSERT_TRUE(d.Close().ok());
}

TEST_F(FileDeviceTest, RecordsAreAcknowledgedWithoutWaitingForASync) {
  // A disk whose flush never finishes (until released) delays no request: records are
  // acknowledged once written, and the sync runs later on the writer thread.
  absl::Notification release;
  std::atomic<int> syncs{0};
  FileDeviceOptions options;
  options.sync_interval = absl::Hours(1);
  options.before_sync = [&] {
    syncs.fetch_add(1);
    release.WaitForNotification();
  };
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE((*dev)->Append(absl::StrCat("{\"type\":\"request\",\"i\":", i, "}")).ok());
  }
  EXPECT_EQ(syncs.load(), 0);
  EXPECT_EQ((*dev)->GetStats().records, 50u);
  release.Notify();
  ASSERT_TRUE((*dev)->Close().ok());
  EXPECT_GE(syncs.load(), 1);  // closing syncs what was written
  VerifyReport r = VerifyClosed();
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.records, 50u);
}

TEST_F(FileDeviceTest, ASlowSyncDoesNotHoldUpLaterWrites) {
  // Every checkpoint asks for a sync; the first one hangs until released. Records after it are
  // still written and acknowledged: the sync runs beside the writer, not in its way.
  absl::Notification release;
  std::atomic<int> syncs{0};
  FileDeviceOptions options;
  options.checkpoint_every = 1;
  options.sync_interval = absl::Hours(1);
  options.before_sync = [&] {
    if (syncs.fetch_add(1) == 0) release.WaitForNotification();
  };
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  ASSERT_TRUE((*dev)->Append(R"({"type":"request","i":0})").ok());
  while (syncs.load() == 0) std::this_thread::yield();  // the first sync is now hanging
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE((*dev)->Append(absl::StrCat("{\"type\":\"request\",\"i\":", i, "}")).ok());
  }
  EXPECT_EQ((*dev)->GetStats().records, 21u);
  EXPECT_EQ((*dev)->GetStats().syncs, 0u);  // the hanging one has not finished
  EXPECT_EQ(syncs.load(), 1);               // and the wanted ones wait behind it, as one
  release.Notify();
  ASSERT_TRUE((*dev)->Close().ok());
  FileDevice::Stats s = (*dev)->GetStats();
  EXPECT_GE(s.syncs, 2u);   // the hanging one, then the ones wanted meanwhile (coalesced)
  EXPECT_LE(s.syncs, 3u);   // plus at most the one closing asks for
  VerifyReport r = VerifyClosed();
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.records, 21u);
}

// Collects AppendAsync outcomes for a test.
class Outcomes {
 public:
  FileDevice::Done Next() {
    return [this](absl::Status s) {
      absl::MutexLock lock(&mu_);
      statuses_.push_back(std::move(s));
    };
  }
  // Waits until `n` outcomes arrived (no deadline: the test's own timeout catches a hang).
  std::vector<absl::Status> Await(size_t n) {
    absl::MutexLock lock(&mu_);
    wanted_ = n;
    mu_.Await(absl::Condition(this, &Outcomes::Enough));
    return statuses_;
  }
  // The outcomes that arrived so far.
  size_t Count() {
    absl::MutexLock lock(&mu_);
    return statuses_.size();
  }

 private:
  bool Enough() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return statuses_.size() >= wanted_; }

  absl::Mutex mu_;
  std::vector<absl::Status> statuses_ ABSL_GUARDED_BY(mu_);
  size_t wanted_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(FileDeviceTest, AppendAsyncReportsEachRecordOnceWrittenInOrder) {
  absl::Notification release;
  std::atomic<int> syncs{0};
  FileDeviceOptions options = HoldFirstSync(release, syncs);
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  FileDevice& d = **dev;
  Outcomes outcomes;
  // The first record's sync holds the writer; the rest queue without anyone waiting.
  d.AppendAsync(R"({"type":"request","i":0})", outcomes.Next());
  while (syncs.load() == 0) std::this_thread::yield();
  for (int i = 1; i < 20; ++i) {
    d.AppendAsync(absl::StrCat(R"({"type":"request","i":)", i, "}"), outcomes.Next());
  }
  EXPECT_EQ(d.GetStats().queued, 19u);
  release.Notify();
  for (const absl::Status& s : outcomes.Await(20)) EXPECT_TRUE(s.ok()) << s;
  ASSERT_TRUE(d.Close().ok());
  std::vector<std::string> lines = testing::Lines(testing::ReadAll(file()));
  ASSERT_EQ(lines.size(), 21u);  // 20 records + the closing checkpoint
  for (int i = 0; i < 20; ++i) {
    EXPECT_NE(lines[i].find(absl::StrCat("\"i\":", i, ",")), std::string::npos) << lines[i];
  }
  EXPECT_EQ(d.GetStats().batches, 3u);  // the first record, the 19 queued behind it, the close
  VerifyReport r = VerifyClosed();
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
}

TEST_F(FileDeviceTest, AppendAsyncRefusesAtOnceWhenFullClosedOrFailing) {
  absl::Notification release;
  std::atomic<int> syncs{0};
  FileDeviceOptions options = HoldFirstSync(release, syncs);
  options.queue_capacity = 1;
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  FileDevice& d = **dev;
  Outcomes outcomes;
  d.AppendAsync(R"({"type":"request"})", outcomes.Next());  // the writer holds it in its sync
  while (syncs.load() == 0) std::this_thread::yield();
  d.AppendAsync("{}", outcomes.Next());  // fills the queue
  d.AppendAsync("{}", outcomes.Next());  // no room: refused now, not after a wait
  // The first record was acknowledged once written (before its sync); the refusal came at once.
  std::vector<absl::Status> got = outcomes.Await(2);
  EXPECT_TRUE(got[0].ok()) << got[0];
  EXPECT_EQ(got[1].code(), absl::StatusCode::kUnavailable) << got[1];
  release.Notify();
  got = outcomes.Await(3);
  EXPECT_TRUE(got[2].ok()) << got[2];
  ASSERT_TRUE(d.Close().ok());
  d.AppendAsync("{}", outcomes.Next());
  EXPECT_EQ(outcomes.Await(4)[3].code(), absl::StatusCode::kFailedPrecondition);

  auto full = Open({}, "/dev/full");
  ASSERT_TRUE(full.ok()) << full.status();
  Outcomes on_full;
  (*full)->AppendAsync(R"({"type":"request"})", on_full.Next());
  EXPECT_EQ(on_full.Await(1)[0].code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(FileDeviceTest, AppendAsyncOfSeveralRecordsWritesThemTogetherAndAnswersOnce) {
  absl::Notification release;
  std::atomic<int> syncs{0};
  FileDeviceOptions options = HoldFirstSync(release, syncs);
  options.queue_capacity = 3;
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  FileDevice& d = **dev;
  Outcomes outcomes;
  d.AppendAsync(R"({"type":"request","i":0})", outcomes.Next());  // held in its sync
  while (syncs.load() == 0) std::this_thread::yield();
  d.AppendAsync(std::vector<std::string>{R"({"type":"request","i":1})",
                                         R"({"type":"response","i":2})"},
                outcomes.Next());
  EXPECT_EQ(d.GetStats().queued, 2u);
  // Two more do not fit beside them (capacity 3): both refused at once, none queued.
  d.AppendAsync(std::vector<std::string>{"{}", "{}"}, outcomes.Next());
  std::vector<absl::Status> got = outcomes.Await(2);
  EXPECT_TRUE(got[0].ok()) << got[0];
  EXPECT_EQ(got[1].code(), absl::StatusCode::kUnavailable) << got[1];
  EXPECT_EQ(d.GetStats().queued, 2u);
  release.Notify();
  got = outcomes.Await(3);
  ASSERT_EQ(got.size(), 3u);  // one answer for the pair
  EXPECT_TRUE(got[2].ok()) << got[2];
  ASSERT_TRUE(d.Close().ok());
  EXPECT_EQ(outcomes.Await(3).size(), 3u);
  std::vector<std::string> lines = testing::Lines(testing::ReadAll(file()));
  ASSERT_EQ(lines.size(), 4u);  // 3 records + the closing checkpoint
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(lines[i].find(absl::StrCat("\"i\":", i, ",")), std::string::npos) << lines[i];
  }
  EXPECT_EQ(d.GetStats().batches, 3u);  // the first record, the pair, the close
  VerifyReport r = VerifyClosed();
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
}

TEST_F(FileDeviceTest, ALocalFileIsWrittenByTheAppendingThread) {
  auto dev = Open();
  ASSERT_TRUE(dev.ok());
  FileDevice& d = **dev;
  EXPECT_TRUE(d.writes_directly());
  bool answered = false;
  absl::Status outcome = absl::UnknownError("not answered");
  d.AppendAsync(R"({"type":"request"})", [&](absl::Status s) {
    answered = true;
    outcome = std::move(s);
  });
  // Direct mode: written and answered before AppendAsync returned, on this thread.
  EXPECT_TRUE(answered);
  EXPECT_TRUE(outcome.ok()) << outcome;
  EXPECT_EQ(testing::Lines(testing::ReadAll(file())).size(), 1u);
  ASSERT_TRUE(d.Close().ok());
  d.AppendAsync("{}", [&](absl::Status s) { outcome = std::move(s); });
  EXPECT_EQ(outcome.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FileDeviceTest, APipeOrSyncingEveryBatchIsQueuedForTheWriter) {
  const std::string fifo = dir_.Join("audit.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto piped = Open({}, fifo);  // opened read-write: a pipe with no reader yet does not block
  ASSERT_TRUE(piped.ok()) << piped.status();
  EXPECT_FALSE((*piped)->writes_directly());  // a pipe's write can wait for its reader
  Outcomes outcomes;
  (*piped)->AppendAsync(R"({"type":"request"})", outcomes.Next());
  EXPECT_TRUE(outcomes.Await(1)[0].ok());
  ASSERT_TRUE((*piped)->Close().ok());

  FileDeviceOptions every_batch;
  every_batch.sync_interval = absl::ZeroDuration();
  auto synced = Open(every_batch);
  ASSERT_TRUE(synced.ok());
  EXPECT_FALSE((*synced)->writes_directly());
}

TEST_F(FileDeviceTest, DirectAppendsFromManyThreadsKeepOneChainAndEachThreadsOrder) {
  constexpr int kThreads = 8, kPerThread = 300;
  FileDeviceOptions options;
  options.checkpoint_every = 100;
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  ASSERT_TRUE((*dev)->writes_directly());
  std::atomic<int> failures{0};
  std::atomic<int> answers[kThreads] = {};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::vector<std::string> pair = {
            absl::StrCat("{\"type\":\"request\",\"t\":", t, ",\"i\":", 2 * i, "}"),
            absl::StrCat("{\"type\":\"response\",\"t\":", t, ",\"i\":", 2 * i + 1, "}")};
        (*dev)->AppendAsync(std::move(pair), [&, t](absl::Status s) {
          if (!s.ok()) failures.fetch_add(1);
          answers[t].fetch_add(1);
        });
        if (i % 50 == 0 && !(*dev)->Append(R"({"type":"request","sync":true})").ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(answers[t].load(), kPerThread) << t;  // once each
  ASSERT_TRUE((*dev)->Close().ok());
  const uint64_t records = kThreads * (2 * kPerThread + kPerThread / 50);
  EXPECT_EQ((*dev)->GetStats().records, records);
  EXPECT_GE((*dev)->GetStats().syncs, 1u);  // the checkpoints asked the sync thread
  VerifyReport r = VerifyClosed();
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.records, records);
  // Each thread's records are in the file in the order it appended them.
  std::vector<int64_t> next(kThreads, 0);
  for (const std::string& line : testing::Lines(testing::ReadAll(file()))) {
    const boost::json::object v = boost::json::parse(line).as_object();
    if (!v.contains("t")) continue;  // a checkpoint, or a record appended with Append
    const auto t = static_cast<size_t>(v.at("t").as_int64());
    EXPECT_EQ(v.at("i").as_int64(), next[t]) << "thread " << t;
    next[t] = v.at("i").as_int64() + 1;
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], 2 * kPerThread) << t;
}

TEST_F(FileDeviceTest, AnIdleDeviceSyncsWithinTheInterval) {
  FileDeviceOptions options;
  options.sync_interval = absl::Milliseconds(20);
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok());
  ASSERT_TRUE((*dev)->Append(R"({"type":"request"})").ok());
  // Nothing else arrives: the writer's wait times out and it syncs the record (real time: the
  // interval is measured on the steady clock; generous bound for loaded machines).
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((*dev)->GetStats().syncs == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GE((*dev)->GetStats().syncs, 1u);
  ASSERT_TRUE((*dev)->Close().ok());
}

// Records of many lengths (the chain hashes them in pieces around SHA-256's 64-byte blocks)
// from `threads` threads, as request/response pairs and single records, with a checkpoint
// every 3 records so that checkpoints fall inside batches. Checks that the file verifies, that
// every record's bytes are in it unchanged, and that each thread's records are in the order it
// appended them.
void AppendFromThreadsAndCheck(FileDevice& d, const std::string& path) {
  constexpr int kThreads = 4, kPerThread = 150;
  auto record = [](int t, int i) {
    return absl::StrCat(R"({"type":"request","t":)", t, R"(,"i":)", i, R"(,"pad":")",
                        std::string(static_cast<size_t>((t * 131 + i * 17) % 1500), 'x'), "\"}");
  };
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto done = [&](absl::Status s) {
        if (!s.ok()) failures.fetch_add(1);
      };
      for (int i = 0; i < kPerThread; i += 3) {
        d.AppendAsync(std::vector<std::string>{record(t, i), record(t, i + 1)}, done);
        if (!d.Append(record(t, i + 2)).ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(d.Close().ok());

  VerifyOptions o;
  o.public_key_hex = testing::TestSigner().public_key_hex();
  auto r = VerifyFile(path, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->problem.has_value()) << r->problem->message;
  EXPECT_EQ(r->records, uint64_t{kThreads * kPerThread});
  FileDevice::Stats s = d.GetStats();
  EXPECT_EQ(s.records, uint64_t{kThreads * kPerThread});
  EXPECT_EQ(s.checkpoints, r->checkpoints);
  EXPECT_GE(s.checkpoints, uint64_t{kThreads * kPerThread / 3});

  std::map<int, int> next;  // thread -> the i its next record must have
  for (const std::string& line : testing::Lines(testing::ReadAll(path))) {
    if (line.find(R"("type":"checkpoint")") != std::string::npos) continue;
    const size_t suffix = line.rfind(R"(,"seq":)");
    ASSERT_NE(suffix, std::string::npos) << line;
    const std::string original = line.substr(0, suffix) + "}";
    const boost::json::object rec = boost::json::parse(original).as_object();
    const int t = static_cast<int>(rec.at("t").as_int64());
    const int i = static_cast<int>(rec.at("i").as_int64());
    EXPECT_EQ(original, record(t, i));
    EXPECT_EQ(i, next[t]) << "thread " << t << " out of order";
    next[t] = i + 1;
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPerThread) << "thread " << t;
}

TEST_F(FileDeviceTest, DirectRecordsOfManyLengthsFromManyThreadsVerifyWithFrequentCheckpoints) {
  FileDeviceOptions options;
  options.checkpoint_every = 3;
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok()) << dev.status();
  ASSERT_TRUE((*dev)->writes_directly());
  AppendFromThreadsAndCheck(**dev, file());
}

TEST_F(FileDeviceTest, QueuedRecordsOfManyLengthsFromManyThreadsVerifyWithFrequentCheckpoints) {
  FileDeviceOptions options;
  options.checkpoint_every = 3;
  options.queued_only = true;
  auto dev = Open(options);
  ASSERT_TRUE(dev.ok()) << dev.status();
  ASSERT_FALSE((*dev)->writes_directly());
  AppendFromThreadsAndCheck(**dev, file());
}

TEST_F(FileDeviceTest, DirectAndQueuedFilesAreByteForByteTheDocumentedFormat) {
  // The lines a device writes, rebuilt from the format's own functions (chain.h).
  const std::vector<std::string> records = {"{}", R"({"type":"request","n":1})",
                                            absl::StrCat(R"({"type":"response","pad":")",
                                                         std::string(1400, 'p'), "\"}"),
                                            R"({"type":"request","n":3})",
                                            R"({"type":"request","n":4})"};
  const std::string time = core::FormatRfc3339Nanos(clock_.Now());
  const CheckpointSigner signer = testing::TestSigner();
  std::string want;
  ChainHead head;
  auto add = [&](const std::string& line) {
    want += line + "\n";
    head.seq += 1;
    head.hash = LineHash(line);
  };
  auto checkpoint = [&] {
    auto sig = signer.Sign(CheckpointMessage(head.seq + 1, head.hash, time));
    ASSERT_TRUE(sig.ok());
    add(CheckpointLine(head.seq + 1, head.hash, time, *sig));
  };
  for (size_t i = 0; i < records.size(); ++i) {
    add(ChainLine(records[i], head.seq + 1, head.hash));
    if (i % 2 == 1) checkpoint();  // every 2 records, inside the pair below
  }
  checkpoint();  // on close

  for (bool queued : {false, true}) {
    FileDeviceOptions options;
    options.checkpoint_every = 2;
    options.queued_only = queued;
    const std::string path = dir_.Join(queued ? "queued.log" : "direct.log");
    auto dev = Open(options, path);
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_EQ((*dev)->writes_directly(), !queued);
    ASSERT_TRUE((*dev)->Append(records[0]).ok());
    Outcomes outcomes;
    (*dev)->AppendAsync(std::vector<std::string>{records[1], records[2]}, outcomes.Next());
    EXPECT_TRUE(outcomes.Await(1)[0].ok());
    (*dev)->AppendAsync(std::vector<std::string>{records[3], records[4]}, outcomes.Next());
    EXPECT_TRUE(outcomes.Await(2)[1].ok());
    ASSERT_TRUE((*dev)->Close().ok());
    EXPECT_EQ(testing::ReadAll(path), want) << (queued ? "queued" : "direct");
  }
}

// A clock that, once armed, holds the first thread that reads it until released.
class GateClock final : public core::Clock {
 public:
  absl::Time Now() const override {
    if (armed_.exchange(false)) {
      entered_.Notify();
      release_.WaitForNotification();
    }
    return absl::FromUnixSeconds(1700000000);
  }
  void Arm() { armed_.store(true); }
  void AwaitEntered() { entered_.WaitForNotification(); }
  void Release() { release_.Notify(); }

 private:
  mutable std::atomic<bool> armed_{false};
  mutable absl::Notification entered_;
  mutable absl::Notification release_;
};

TEST_F(FileDeviceTest, RecordsQueuedBeforeASwitchToDirectModeGoFirst) {
  // A pipe (queued mode) that a Reopen replaces with a regular file (direct mode).
  ASSERT_EQ(::mkfifo(file().c_str(), 0600), 0);
  GateClock clock;
  absl::Notification release_sync;
  std::atomic<int> syncs{0};
  FileDeviceOptions options;
  options.sync_interval = absl::Hours(1);  // the sync thread syncs only when asked
  options.before_sync = [&] {
    if (syncs.fetch_add(1) == 0) release_sync.WaitForNotification();
  };
  auto dev = FileDevice::Open(file(), testing::TestHasher(), testing::TestSigner(), clock, options);
  ASSERT_TRUE(dev.ok()) << dev.status();
  FileDevice& d = **dev;
  ASSERT_FALSE(d.writes_directly());
  ASSERT_TRUE(d.Append(R"({"type":"request","n":0})").ok());
  ASSERT_EQ(::unlink(file().c_str()), 0);

  // The writer switches files: hold it in the old file's closing checkpoint (it reads the
  // clock), before the device turns direct. A record appended then is queued.
  clock.Arm();
  absl::Status reopened = absl::UnknownError("not answered");
  std::thread reopen([&] { reopened = d.Reopen(); });
  clock.AwaitEntered();
  Outcomes outcomes;
  d.AppendAsync(R"({"type":"request","n":1})", outcomes.Next());
  clock.Release();
  // Now the writer has made the device direct and is held in the new file's first sync (after
  // its rotation line), with record 1 still queued: record 2, from the same thread, must queue
  // behind it rather than be written directly ahead of it.
  while (syncs.load() == 0) std::this_thread::yield();
  ASSERT_TRUE(d.writes_directly());
  d.AppendAsync(R"({"type":"request","n":2})", outcomes.Next());
  EXPECT_EQ(outcomes.Count(), 0u);  // not written on this thread
  EXPECT_EQ(d.GetStats().queued, 2u);
  release_sync.Notify();
  reopen.join();
  ASSERT_TRUE(reopened.ok()) << reopened;
  for (const absl::Status& s : outcomes.Await(2)) EXPECT_TRUE(s.ok()) << s;
  // The queue has drained: direct again, answered on this thread.
  d.AppendAsync(R"({"type":"request","n":3})", outcomes.Next());
  EXPECT_EQ(outcomes.Count(), 3u);
  EXPECT_TRUE(outcomes.Await(3)[2].ok());
  ASSERT_TRUE(d.Close().ok());

  std::vector<std::string> lines = testing::Lines(testing::ReadAll(file()));
  ASSERT_EQ(lines.size(), 5u);  // rotation line, records 1, 2, 3, closing checkpoint
  EXPECT_NE(lines[0].find(R"("type":"rotation")"), std::string::npos) << lines[0];
  for (int n = 1; n <= 3; ++n) {
    EXPECT_NE(lines[n].find(absl::StrCat("\"n\":", n, ",")), std::string::npos) << lines[n];
  }
  VerifyOptions o;
  o.public_key_hex = testing::TestSigner().public_key_hex();
  auto r = VerifyFile(file(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->problem.has_value()) << r->problem->message;
  EXPECT_TRUE(r->starts_with_rotation);
}

}  // namespace
}  // namespace ward::audit
