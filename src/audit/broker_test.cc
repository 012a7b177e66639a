#include "audit/broker.h"

#include <cstdio>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "audit/chain.h"
#include "audit/test_util.h"
#include "barrier/testing/unsealed_barrier.h"
#include "core/testing/fake_clock.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"

namespace ward::audit {
namespace {

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = barrier::testing::NewUnsealedBarrier(storage_, clock_,
                                                  core::SecureBytes(std::string(32, 'u')));
    ASSERT_TRUE(b.ok()) << b.status();
    barrier_ = *std::move(b);
  }
  std::unique_ptr<Broker> NewBroker() {
    auto b = Broker::Create(*barrier_, clock_, {});
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? std::move(*b) : nullptr;
  }
  std::map<std::string, std::string> FileOptions() { return {{"file_path", dir_.Join("a.log")}}; }

  static ResponseInfo Resp(int status) {
    ResponseInfo r;
    r.status_code = status;
    return r;
  }
  RequestInfo Request() {
    RequestInfo r;
    r.operation = "update";
    r.path = "secret/data/x";
    r.client_token = "plain-token";
    r.data = boost::json::parse(R"({"data":{"v":"plain-secret"}})");
    return r;
  }

  core::TempDir dir_;
  core::FakeClock clock_;
  storage::MemoryBackend storage_;
  std::unique_ptr<barrier::Barrier> barrier_;
};

TEST_F(BrokerTest, NoDeviceMeansNothingToLog) {
  auto broker = NewBroker();
  EXPECT_TRUE(broker->Snapshot()->empty());
  EXPECT_TRUE(broker->LogRequest(*broker->Snapshot(), {}, Request()).ok());
}

TEST_F(BrokerTest, EnableLogsAndPersistsAcrossReopen) {
  std::string hash_before;
  {
    auto broker = NewBroker();
    ASSERT_TRUE(broker->Enable("/file", "file", "main log", FileOptions()).ok());
    std::vector<DeviceInfo> list = broker->List();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].path, "file/");
    EXPECT_EQ(list[0].type, "file");
    EXPECT_EQ(list[0].description, "main log");
    EXPECT_EQ(list[0].options.at("file_path"), dir_.Join("a.log"));
    EXPECT_EQ(list[0].checkpoint_public_key.size(), 64u);
    auto devices = broker->Snapshot();
    ASSERT_TRUE(broker->LogRequest(*devices, {}, Request()).ok());
    ASSERT_TRUE(broker->LogResponse(*devices, {}, Request(), Resp(200)).ok());
    hash_before = *broker->Hash("file", "plain-secret");
  }
  std::string stored = *barrier_->Get(kAuditTablePath);
  EXPECT_TRUE(absl::StrContains(stored, "\"salt\""));
  auto broker = NewBroker();  // reopens the device from the table
  ASSERT_EQ(broker->List().size(), 1u);
  EXPECT_EQ(*broker->Hash("file/", "plain-secret"), hash_before);  // same salt
  ASSERT_TRUE(broker->LogRequest(*broker->Snapshot(), {}, Request()).ok());
  std::string key = broker->List()[0].checkpoint_public_key;
  broker.reset();

  std::string text = testing::ReadAll(dir_.Join("a.log"));
  EXPECT_FALSE(absl::StrContains(text, "plain-secret"));
  EXPECT_FALSE(absl::StrContains(text, "plain-token"));
  EXPECT_TRUE(absl::StrContains(text, hash_before));
  VerifyOptions o;
  o.public_key_hex = key;
  auto r = VerifyLog(text, o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->problem.has_value()) << r->problem->message;
  EXPECT_EQ(r->records, 3u);
  EXPECT_EQ(r->checkpoints_verified, 2u);
}

TEST_F(BrokerTest, EnableRejectsBadRequests) {
  auto broker = NewBroker();
  EXPECT_EQ(broker->Enable("x", "syslog", "", FileOptions()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(broker->Enable("x", "file", "", {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(broker->Enable("", "file", "", FileOptions()).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(broker->Enable("x", "file", "", FileOptions()).ok());
  EXPECT_EQ(broker->Enable("x/", "file", "", FileOptions()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(broker->Enable("other", "file", "", FileOptions()).code(),  // same file
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(broker->Enable("y", "file", "", {{"file_path", dir_.Join("no/dir.log")}}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(broker->List().size(), 1u);
  EXPECT_EQ(broker->Hash("nope", "v").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BrokerTest, DisableClosesAndSkipsTheDeviceForRequestsInFlight) {
  auto broker = NewBroker();
  ASSERT_TRUE(broker->Enable("x", "file", "", FileOptions()).ok());
  auto in_flight = broker->Snapshot();
  ASSERT_TRUE(broker->LogRequest(*in_flight, {}, Request()).ok());
  ASSERT_TRUE(broker->Disable("x").ok());
  EXPECT_TRUE(broker->Disable("x").ok());  // idempotent
  EXPECT_TRUE(broker->List().empty());
  EXPECT_TRUE(broker->LogResponse(*in_flight, {}, Request(), Resp(204)).ok());
  auto r = VerifyFile(dir_.Join("a.log"), {});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->problem.has_value());  // closed with a checkpoint
  EXPECT_EQ(r->records, 1u);
  EXPECT_TRUE(NewBroker()->List().empty());  // the disable persisted
}

TEST_F(BrokerTest, UnwritableDeviceFailsClosed) {
  auto broker = NewBroker();
  ASSERT_TRUE(broker->Enable("full", "file", "", {{"file_path", "/dev/full"}}).ok());
  absl::Status s = broker->LogRequest(*broker->Snapshot(), {}, Request());
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "audit: failed to log request");
  EXPECT_EQ(broker->LogResponse(*broker->Snapshot(), {}, Request(), {}).code(),
            absl::StatusCode::kInternal);
}

TEST_F(BrokerTest, OneWorkingDeviceIsEnough) {
  auto broker = NewBroker();
  ASSERT_TRUE(broker->Enable("full", "file", "", {{"file_path", "/dev/full"}}).ok());
  ASSERT_TRUE(broker->Enable("file", "file", "", FileOptions()).ok());
  EXPECT_TRUE(broker->LogRequest(*broker->Snapshot(), {}, Request()).ok());
}


// Waits for a LogAsync outcome.
absl::Status AwaitLogAsync(const Broker& broker, const DeviceSet& devices, const RequestInfo& req,
                           bool with_request, const ResponseInfo& resp) {
  auto outcome = std::make_shared<std::pair<absl::Notification, absl::Status>>();
  broker.LogAsync(devices, {}, req, with_request, resp, [outcome](absl::Status s) {
    outcome->second = std::move(s);
    outcome->first.Notify();
  });
  outcome->first.WaitForNotification();
  return outcome->second;
}

TEST_F(BrokerTest, LogAsyncWritesTheRequestThenTheResponseRecord) {
  auto broker = NewBroker();
  EXPECT_TRUE(AwaitLogAsync(*broker, *broker->Snapshot(), Request(), true, Resp(200)).ok());
  ASSERT_TRUE(broker->Enable("file", "file", "", FileOptions()).ok());
  ASSERT_TRUE(AwaitLogAsync(*broker, *broker->Snapshot(), Request(), true, Resp(200)).ok());
  ASSERT_TRUE(AwaitLogAsync(*broker, *broker->Snapshot(), Request(), false, Resp(204)).ok());
  const std::string log = testing::ReadAll(dir_.Join("a.log"));
  std::vector<std::string> lines = testing::Lines(log);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find(R"("type":"request")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(R"("type":"response")"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find(R"("type":"response")"), std::string::npos) << lines[2];
  // Hashed on the way, as the blocking calls do.
  EXPECT_EQ(log.find("plain-secret"), std::string::npos);
  EXPECT_EQ(log.find("plain-token"), std::string::npos);
  ASSERT_TRUE(broker->Disable("file").ok());
  auto r = VerifyFile(dir_.Join("a.log"), {});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->problem.has_value());
  EXPECT_EQ(r->records, 3u);
}

TEST_F(BrokerTest, LogAsyncFailsClosedUnlessOneDeviceWroteEachRecord) {
  auto broker = NewBroker();
  ASSERT_TRUE(broker->Enable("full", "file", "", {{"file_path", "/dev/full"}}).ok());
  absl::Status s = AwaitLogAsync(*broker, *broker->Snapshot(), Request(), true, Resp(200));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "audit: failed to log request");
  s = AwaitLogAsync(*broker, *broker->Snapshot(), Request(), false, Resp(200));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "audit: failed to log response");
  ASSERT_TRUE(broker->Enable("file", "file", "", FileOptions()).ok());
  EXPECT_TRUE(AwaitLogAsync(*broker, *broker->Snapshot(), Request(), true, Resp(200)).ok());
  // A device disabled while a request was in flight is skipped, not a failure.
  auto in_flight = broker->Snapshot();
  ASSERT_TRUE(broker->Disable("full").ok());
  ASSERT_TRUE(broker->Disable("file").ok());
  EXPECT_TRUE(AwaitLogAsync(*broker, *in_flight, Request(), true, Resp(200)).ok());
}

TEST_F(BrokerTest, ConfiguredDeviceIsEnabledOnceAndPersisted) {
  Broker::Options options;
  options.configured.push_back({"audit-file", "file", "from config", FileOptions()});
  std::string key;
  {
    auto broker = Broker::Create(*barrier_, clock_, options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    std::vector<DeviceInfo> list = (*broker)->List();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].path, "audit-file/");
    EXPECT_EQ(list[0].description, "from config");
    key = list[0].checkpoint_public_key;
    ASSERT_TRUE((*broker)->LogRequest(*(*broker)->Snapshot(), {}, Request()).ok());
  }
  // The next unseal finds it in the table: same keys, not enabled twice.
  auto broker = Broker::Create(*barrier_, clock_, options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  std::vector<DeviceInfo> list = (*broker)->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].checkpoint_public_key, key);
  // Also without the config: it was stored like an API-enabled device.
  broker->reset();
  auto plain = NewBroker();
  EXPECT_EQ(plain->List().size(), 1u);
}

TEST_F(BrokerTest, StoredDeviceWinsOverADifferentConfiguredOne) {
  {
    auto broker = NewBroker();
    ASSERT_TRUE(broker->Enable("file", "file", "", FileOptions()).ok());
  }
  Broker::Options options;
  options.configured.push_back(
      {"file", "file", "", {{"file_path", dir_.Join("other.log")}}});
  auto broker = Broker::Create(*barrier_, clock_, options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  std::vector<DeviceInfo> list = (*broker)->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].options.at("file_path"), dir_.Join("a.log"));
}

TEST_F(BrokerTest, ConfiguredDeviceThatCannotOpenFailsCreate) {
  Broker::Options options;
  options.configured.push_back({"file", "file", "", {{"file_path", dir_.Join("no/dir/a.log")}}});
  auto broker = Broker::Create(*barrier_, clock_, options);
  ASSERT_FALSE(broker.ok());
  EXPECT_EQ(broker.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(broker.status().message(), "file/ (config)"))
      << broker.status();
}

TEST_F(BrokerTest, ReopenMovesEveryDeviceToItsNewFile) {
  auto broker = NewBroker();
  ASSERT_TRUE(broker->Enable("a", "file", "", FileOptions()).ok());
  ASSERT_TRUE(broker->Enable("b", "file", "", {{"file_path", dir_.Join("b.log")}}).ok());
  ASSERT_TRUE(broker->LogRequest(*broker->Snapshot(), {}, Request()).ok());
  ASSERT_EQ(::rename(dir_.Join("a.log").c_str(), dir_.Join("a.log.1").c_str()), 0);
  ASSERT_TRUE(broker->Reopen().ok());
  ASSERT_TRUE(broker->LogRequest(*broker->Snapshot(), {}, Request()).ok());
  broker.reset();
  auto old_a = VerifyFile(dir_.Join("a.log.1"), {});
  auto new_a = VerifyFile(dir_.Join("a.log"), {});
  auto b = VerifyFile(dir_.Join("b.log"), {});
  ASSERT_TRUE(old_a.ok() && new_a.ok() && b.ok());
  EXPECT_FALSE(old_a->problem.has_value());
  EXPECT_FALSE(new_a->problem.has_value());
  EXPECT_FALSE(b->problem.has_value());
  EXPECT_EQ(old_a->records, 1u);
  EXPECT_EQ(new_a->records, 1u);
  EXPECT_EQ(b->records, 2u);  // b was not rotated: one file
  EXPECT_TRUE(FollowsFrom(*old_a, *new_a));
}

}  // namespace
}  // namespace ward::audit
