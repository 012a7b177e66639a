#pragma once

// A gtest fixture for suites whose tests share one dev server (started once per suite).

#include <memory>
#include <string>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {

// Derive, and start the suite's server from SetUpTestSuite:
//   class ApiTest : public SharedDevServerTest {
//    protected:
//     static void SetUpTestSuite() { StartSuiteServer("root-token-for-tests"); }
//   };
// Each test gets `client_`, a fresh HTTPS client for the server.
class SharedDevServerTest : public ::testing::Test {
 protected:
  // Starts `ward server --dev` in a temporary data dir with `root_token` as its root token
  // ("" lets the server choose one). Records a fatal failure if it does not start.
  static void StartSuiteServer(const std::string& root_token) {
    dir_ = new core::TempDir();
    std::vector<std::string> args;
    if (!root_token.empty()) args.push_back("--dev-root-token-id=" + root_token);
    auto p = WardProcess::StartDev(dir_->Join("data"), args);
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = p->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    client_ = server_->Client();
    ASSERT_NE(client_, nullptr);
  }

  // Sends a request with the root token.
  Reply Root(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& content_type = "application/json") {
    return Call(*client_, method, path, server_->root_token(), body, content_type);
  }

  static inline core::TempDir* dir_ = nullptr;
  static inline WardProcess* server_ = nullptr;
  std::unique_ptr<net::HttpClient> client_;
};

}  // namespace ward::testing
