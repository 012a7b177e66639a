// Durability and confidentiality at rest: acknowledged writes survive SIGKILL, data persists
// across dev restarts, and no plaintext secret reaches the data directory.

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

// Whether any file under `dir` contains `needle`.
std::string FindInFiles(const std::string& dir, const std::string& needle) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str().find(needle) != std::string::npos) return entry.path().string();
  }
  return "";
}

TEST(DurabilityTest, PlaintextNeverReachesTheDataDirectory) {
  core::TempDir dir;
  std::string data = dir.Join("data");
  auto server = WardProcess::StartDev(data);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client();
  const std::string marker = "plaintext-marker-7d1e0b5a93c4";
  const std::string path_marker = "custom-meta-marker-41c2";
  ASSERT_EQ(Call(*client, "PUT", "secret/data/scan", (*server)->root_token(),
                 R"({"data":{"password":")" + marker + R"("}})")
                .status,
            200);
  ASSERT_EQ(Call(*client, "PUT", "secret/metadata/scan", (*server)->root_token(),
                 R"({"custom_metadata":{"note":")" + path_marker + R"("}})")
                .status,
            204);
  // While running (the WAL holds recent commits) and after a clean stop.
  EXPECT_EQ(FindInFiles(data, marker), "");
  EXPECT_EQ(FindInFiles(data, path_marker), "");
  EXPECT_EQ(FindInFiles(data, (*server)->root_token()), "");
  std::string token = (*server)->root_token();
  (*server)->Terminate();
  EXPECT_EQ(FindInFiles(data, marker), "");
  EXPECT_EQ(FindInFiles(data, path_marker), "");
  EXPECT_EQ(FindInFiles(data, token), "");
}

TEST(DurabilityTest, DevDataPersistsAcrossRestarts) {
  core::TempDir dir;
  std::string data = dir.Join("data");
  std::string tls = dir.Join("tls");
  {
    auto server = WardProcess::StartDev(
        data, {"--dev-root-token-id=persist-root", "--dev-tls-cert-dir=" + tls});
    ASSERT_TRUE(server.ok()) << server.status();
    // The dev CA lands where --dev-tls-cert-dir says, with the server pair beside it.
    EXPECT_EQ((*server)->ca_cert(), tls + "/ca.pem");
    EXPECT_TRUE(std::filesystem::exists(tls + "/server.pem"));
    EXPECT_EQ(std::filesystem::status(tls + "/server-key.pem").permissions() &
                  std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    auto client = (*server)->Client();
    ASSERT_EQ(Call(*client, "PUT", "secret/data/keep", "persist-root", R"({"data":{"v":"kept"}})").status, 200);
  }
  auto server = WardProcess::StartDev(data, {"--dev-root-token-id=persist-root"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client();
  Reply r = Call(*client, "GET", "secret/data/keep", "persist-root");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("kept"), std::string::npos);
}

// Writers hammer the server; it is killed with SIGKILL mid-stream; after a restart every
// write that was acknowledged with 200 must be readable with the acknowledged value.
TEST(DurabilityTest, AcknowledgedWritesSurviveSigkill) {
  core::TempDir dir;
  std::string data = dir.Join("data");
  std::map<std::string, std::string> acknowledged;  // path -> value
  for (int round = 0; round < 3; ++round) {
    auto server = WardProcess::StartDev(data, {"--dev-root-token-id=crash-root"});
    ASSERT_TRUE(server.ok()) << server.status();
    // Everything acknowledged in earlier rounds is still there.
    {
      auto client = (*server)->Client();
      for (const auto& [path, value] : acknowledged) {
        Reply r = Call(*client, "GET", "secret/data/" + path, "crash-root");
        ASSERT_EQ(r.status, 200) << path << " lost after round " << round << ": " << r.body;
        ASSERT_NE(r.body.find(value), std::string::npos) << path;
      }
    }
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::atomic<int> acks{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        auto client = (*server)->Client();
        for (int i = 0; !stop; ++i) {
          std::string path = "crash/r" + std::to_string(round) + "-w" + std::to_string(w) + "-" + std::to_string(i);
          std::string value = "value-" + path;
          Reply r = Call(*client, "PUT", "secret/data/" + path, "crash-root",
                         R"({"data":{"v":")" + value + R"("}})");
          if (r.status == 200) {
            std::lock_guard<std::mutex> lock(mu);
            acknowledged[path] = value;
            ++acks;
          } else if (r.status == -1) {
            return;  // connection died with the server
          }
        }
      });
    }
    while (acks < 40 * (round + 1)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    (*server)->Kill();
    stop = true;
    for (auto& t : writers) t.join();
  }
  auto server = WardProcess::StartDev(data, {"--dev-root-token-id=crash-root"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->Client();
  for (const auto& [path, value] : acknowledged) {
    Reply r = Call(*client, "GET", "secret/data/" + path, "crash-root");
    ASSERT_EQ(r.status, 200) << path << ": " << r.body;
    ASSERT_NE(r.body.find(value), std::string::npos) << path;
  }
  EXPECT_GE(acknowledged.size(), 120u);
}

}  // namespace
}  // namespace ward::testing
