// The Vault API under storage and audit faults: Core + VaultHandler over a real SqliteBackend
// on a fault-injecting VFS (a full disk, a write error, a failed fsync), and a file audit
// device whose file cannot grow. docs/storage.md, "Failure behaviour".
//
// What must hold with every fault: the failed write answers 503 with a Vault error body and
// leaves nothing behind (no partial version, no revision used); reads keep working; once the
// fault clears the same server writes again and version numbers continue without a gap.

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "api/testing/dev_node.h"
#include "audit/chain.h"
#include "core/testing/fake_clock.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "storage/memory_backend.h"
#include "storage/sqlite_backend.h"
#include "storage/testing/faulty_vfs.h"

namespace ward::api {
namespace {

namespace json = boost::json;
using testing::Body;
using storage::testing::Fault;
using storage::testing::FaultyVfs;

// Asserts `r` is a Vault error: `status`, and {"errors":[<at least one string>]}.
void ExpectVaultError(const net::HttpResponse& r, int status) {
  EXPECT_EQ(r.status, status) << r.body;
  json::value v = Body(r);
  ASSERT_TRUE(v.is_object() && v.as_object().contains("errors")) << r.body;
  const json::value& errors = v.at("errors");
  ASSERT_TRUE(errors.is_array()) << r.body;
  ASSERT_FALSE(errors.as_array().empty()) << r.body;
  for (const json::value& e : errors.as_array()) EXPECT_TRUE(e.is_string()) << r.body;
}

std::string FaultName(Fault fault) {
  switch (fault) {
    case Fault::kDiskFull:
      return "DiskFull";
    case Fault::kWriteError:
      return "WriteError";
    case Fault::kSyncError:
      return "SyncError";
    case Fault::kNone:
      break;
  }
  return "None";
}

class StorageFaultTest : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FaultyVfs>> vfs = FaultyVfs::Register("api-fault-test");
    ASSERT_TRUE(vfs.ok()) << vfs.status();
    vfs_ = *std::move(vfs);
    storage::SqliteOptions options;
    options.path = dir_.Join("ward.db");
    options.vfs = vfs_->name();
    absl::StatusOr<std::unique_ptr<storage::SqliteBackend>> backend =
        storage::SqliteBackend::Create(options);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
    absl::StatusOr<std::unique_ptr<testing::DevNode>> node =
        testing::DevNode::Start(*backend_, clock_);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
  }
  void TearDown() override {
    if (vfs_ != nullptr) vfs_->Clear();
    node_.reset();
    backend_.reset();
  }

  // Arms the fault and checks that `r`, sent under it, failed cleanly: a 503 Vault error and
  // no storage commit at all.
  template <typename Send>
  net::HttpResponse UnderFault(Send send) {
    const uint64_t revision = backend_->revision();
    vfs_->Inject(GetParam());
    net::HttpResponse r = send();
    ExpectVaultError(r, 503);
    EXPECT_EQ(backend_->revision(), revision);
    EXPECT_GT(vfs_->injected(), 0u);
    return r;
  }

  core::TempDir dir_;
  core::FakeClock clock_;
  std::unique_ptr<FaultyVfs> vfs_;
  std::unique_ptr<storage::SqliteBackend> backend_;
  std::unique_ptr<testing::DevNode> node_;
};

TEST_P(StorageFaultTest, KvWriteFailsWith503AndLeavesNoPartialVersion) {
  ASSERT_EQ(node_->Root("PUT", "secret/data/app", R"({"data":{"v":"one"}})").status, 200);
  ASSERT_EQ(node_->Root("PUT", "secret/data/app", R"({"data":{"v":"two"}})").status, 200);

  UnderFault([&] { return node_->Root("PUT", "secret/data/app", R"({"data":{"v":"three"}})"); });
  // A second attempt while the fault lasts fails the same way (the writer is not wedged).
  ExpectVaultError(node_->Root("PUT", "secret/data/app", R"({"data":{"v":"three"}})"), 503);
  ExpectVaultError(node_->Root("PUT", "secret/data/new", R"({"data":{"v":"x"}})"), 503);

  // Reads keep working during the fault and show the old state.
  net::HttpResponse meta = node_->Root("GET", "secret/metadata/app");
  ASSERT_EQ(meta.status, 200) << meta.body;
  EXPECT_EQ(Body(meta).at("data").at("current_version").as_int64(), 2);
  EXPECT_EQ(Body(meta).at("data").at("versions").as_object().size(), 2u);
  net::HttpResponse read = node_->Root("GET", "secret/data/app");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(Body(read).at("data").at("data").at("v").as_string(), "two");
  EXPECT_EQ(node_->Root("GET", "secret/data/app?version=3").status, 404);
  EXPECT_EQ(node_->Root("GET", "secret/data/new").status, 404);

  vfs_->Clear();
  net::HttpResponse put = node_->Root("PUT", "secret/data/app", R"({"data":{"v":"three"}})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(Body(put).at("data").at("version").as_int64(), 3);  // no gap
  read = node_->Root("GET", "secret/data/app");
  EXPECT_EQ(Body(read).at("data").at("data").at("v").as_string(), "three");
  EXPECT_EQ(node_->Root("PUT", "secret/data/new", R"({"data":{"v":"x"}})").status, 200);
}

TEST_P(StorageFaultTest, OtherKvMutationsFailCleanly) {
  ASSERT_EQ(node_->Root("PUT", "secret/data/app", R"({"data":{"v":"one"}})").status, 200);
  UnderFault([&] {
    return node_->Root("PUT", "secret/metadata/app", R"({"custom_metadata":{"owner":"x"}})");
  });
  UnderFault([&] { return node_->Root("DELETE", "secret/data/app"); });
  UnderFault([&] { return node_->Root("POST", "secret/destroy/app", R"({"versions":[1]})"); });
  UnderFault([&] { return node_->Root("DELETE", "secret/metadata/app"); });
  vfs_->Clear();
  net::HttpResponse meta = node_->Root("GET", "secret/metadata/app");
  ASSERT_EQ(meta.status, 200) << meta.body;
  EXPECT_TRUE(Body(meta).at("data").at("custom_metadata").is_null() ||
              Body(meta).at("data").at("custom_metadata").as_object().empty())
      << meta.body;
  net::HttpResponse read = node_->Root("GET", "secret/data/app");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(Body(read).at("data").at("data").at("v").as_string(), "one");
}

TEST_P(StorageFaultTest, TokenCreateFailsCleanlyAndWorksAfterwards) {
  UnderFault(
      [&] { return node_->Root("POST", "auth/token/create", R"({"policies":["default"]})"); });
  vfs_->Clear();
  net::HttpResponse created =
      node_->Root("POST", "auth/token/create", R"({"policies":["default"]})");
  ASSERT_EQ(created.status, 200) << created.body;
  std::string token(Body(created).at("auth").at("client_token").as_string());
  EXPECT_EQ(node_->Call("GET", "auth/token/lookup-self", token).status, 200);
}

TEST_P(StorageFaultTest, PolicyWriteFailsCleanlyAndWorksAfterwards) {
  const std::string policy = R"({"policy":"path \"secret/*\" { capabilities = [\"read\"] }"})";
  UnderFault([&] { return node_->Root("PUT", "sys/policies/acl/reader", policy); });
  EXPECT_EQ(node_->Root("GET", "sys/policies/acl/reader").status, 404);
  vfs_->Clear();
  EXPECT_EQ(node_->Root("PUT", "sys/policies/acl/reader", policy).status, 204);
  EXPECT_EQ(node_->Root("GET", "sys/policies/acl/reader").status, 200);
}

// A use-limited token spends a use on every request, which is a storage write: while storage
// cannot write, such a token is refused (fail closed) rather than used for free.
TEST_P(StorageFaultTest, UseLimitedTokenIsRefusedWhileUsesCannotBeRecorded) {
  ASSERT_EQ(node_->Root("PUT", "secret/data/app", R"({"data":{"v":"one"}})").status, 200);
  net::HttpResponse created = node_->Root("POST", "auth/token/create", R"({"num_uses":3})");
  ASSERT_EQ(created.status, 200) << created.body;
  std::string token(Body(created).at("auth").at("client_token").as_string());
  UnderFault([&] { return node_->Call("GET", "auth/token/lookup-self", token); });
  vfs_->Clear();
  net::HttpResponse self = node_->Call("GET", "auth/token/lookup-self", token);
  ASSERT_EQ(self.status, 200) << self.body;
  EXPECT_EQ(Body(self).at("data").at("num_uses").as_int64(), 2);  // the refused call cost none
}

INSTANTIATE_TEST_SUITE_P(Faults, StorageFaultTest,
                         ::testing::Values(Fault::kDiskFull, Fault::kWriteError, Fault::kSyncError),
                         [](const ::testing::TestParamInfo<Fault>& info) {
                           return FaultName(info.param);
                         });

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Lowers RLIMIT_FSIZE for this process (SIGXFSZ ignored, so writes past it fail with EFBIG
// after writing what fits) and restores both on destruction.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit limit = old_;
    limit.rlim_cur = bytes;
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit old_{};
  sighandler_t old_handler_;
};

// A file audit device whose file stops growing part-way through a record: the request is
// refused before it runs (fail closed), the partial record is cut off so the file still ends on
// a whole line of the hash chain, and logging resumes when the file can grow again.
TEST(AuditFaultTest, AuditFileThatCannotGrowRefusesRequestsAndKeepsWholeRecords) {
  core::TempDir dir;
  core::FakeClock clock;
  storage::MemoryBackend backend;  // only the audit file touches the disk in this test
  absl::StatusOr<std::unique_ptr<testing::DevNode>> started =
      testing::DevNode::Start(backend, clock);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<testing::DevNode> node = *std::move(started);
  const std::string log = dir.Join("audit.log");
  ASSERT_EQ(node->Root("PUT", "sys/audit/file",
                       R"({"type":"file","options":{"file_path":")" + log + R"("}})")
                .status,
            204);
  ASSERT_EQ(node->Root("PUT", "secret/data/app", R"({"data":{"v":"one"}})").status, 200);
  const std::string before = ReadAll(log);
  ASSERT_FALSE(before.empty());
  ASSERT_EQ(before.back(), '\n');

  {
    // Room for a few bytes more than the file holds: the next record is written partly.
    FileSizeLimit limit(before.size() + 40);
    net::HttpResponse read = node->Root("GET", "secret/data/app");
    ExpectVaultError(read, 500);
    EXPECT_EQ(Body(read).at("errors").at(0).as_string(), "audit: failed to log request");
    net::HttpResponse write = node->Root("PUT", "secret/data/app", R"({"data":{"v":"two"}})");
    ExpectVaultError(write, 500);
    EXPECT_EQ(ReadAll(log), before);  // no partial record
  }

  // The refused write never ran.
  net::HttpResponse read = node->Root("GET", "secret/data/app");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(Body(read).at("data").at("data").at("v").as_string(), "one");
  EXPECT_EQ(Body(read).at("data").at("metadata").at("version").as_int64(), 1);
  // Logging resumed on the same chain: the file verifies from its first line to its last.
  std::string after = ReadAll(log);
  ASSERT_GT(after.size(), before.size());
  EXPECT_EQ(after.substr(0, before.size()), before);
  audit::VerifyOptions verify;
  verify.allow_open_tail = true;
  absl::StatusOr<audit::VerifyReport> report = audit::VerifyLog(after, verify);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->problem.has_value()) << report->problem->message;
}

}  // namespace
}  // namespace ward::api
