#pragma once

// Test support: an in-process Ward API node (Core + VaultHandler, initialised with a single
// unseal key, unsealed, with a root token) and a gtest fixture that owns one over a
// MemoryBackend and a FakeClock. For unit tests that drive the Vault HTTP API through
// VaultHandler::Handle without a listener. Never linked into the server.

#include <boost/json.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "api/core.h"
#include "api/handler.h"
#include "core/clock.h"
#include "core/testing/fake_clock.h"
#include "gtest/gtest.h"
#include "net/http.h"
#include "storage/backend.h"
#include "storage/memory_backend.h"

namespace ward::api::testing {

// The JSON body of `response`; records a test failure (and returns null) if it is not JSON.
boost::json::value Body(const net::HttpResponse& response);

// The first message of a Vault error body {"errors":[...]}: "" if the list is empty,
// "<no errors>" if the body has no "errors" list.
std::string FirstError(const net::HttpResponse& response);

// A Core and a VaultHandler over a borrowed backend and clock, initialised and unsealed (as
// `ward server --dev` does, without the listener), with a root token.
//
// `backend` and `clock` are borrowed and must outlive the node. Call/Send may be used from
// several threads at once (VaultHandler is thread-safe); Start is not thread-safe.
class DevNode {
 public:
  struct Options {
    Core::Options core;
    HandlerOptions handler;
    // The request id every request built by Request() carries (it shows in response bodies
    // and audit records).
    std::string request_id = "00000000-0000-4000-8000-000000000001";
  };

  // Creates the Core over `backend`, initialises it with a single unseal key, unseals it,
  // creates a root token and the handler.
  // Errors: those of Core::Create, Core::InitializeSingleKey (kFailedPrecondition if `backend`
  // already holds an initialised node), Core::UnsealWithKey and TokenStore::CreateRootToken.
  static absl::StatusOr<std::unique_ptr<DevNode>> Start(storage::Backend& backend,
                                                        core::Clock& clock, Options options);
  static absl::StatusOr<std::unique_ptr<DevNode>> Start(storage::Backend& backend,
                                                        core::Clock& clock) {
    return Start(backend, clock, Options{});
  }

  DevNode(const DevNode&) = delete;
  DevNode& operator=(const DevNode&) = delete;

  // A request as the listener would hand it over: target "/v1/" + `path` (which may carry a
  // query), header X-Vault-Token if `token` is not empty, Content-Type application/json if
  // `body` is not empty, peer 127.0.0.1:50000, the node's request id, no client certificate.
  net::HttpRequest Request(const std::string& method, const std::string& path,
                           const std::string& token, const std::string& body = "") const;

  // Handles `request` and returns the response once it may be sent (net::AwaitHeld: a
  // response held for audit records is waited for).
  net::HttpResponse Send(const net::HttpRequest& request);

  // Send(Request(method, path, token, body)).
  net::HttpResponse Call(const std::string& method, const std::string& path,
                         const std::string& token, const std::string& body = "");

  // Call(method, path, root_token(), body).
  net::HttpResponse Root(const std::string& method, const std::string& path,
                         const std::string& body = "");

  Core& core() { return *core_; }
  VaultHandler& handler() { return *handler_; }
  // The root token created by Start.
  const std::string& root_token() const { return root_token_; }

 private:
  explicit DevNode(Options options) : options_(std::move(options)) {}

  const Options options_;
  std::unique_ptr<Core> core_;
  std::unique_ptr<VaultHandler> handler_;
  std::string root_token_;
};

// A gtest fixture owning a DevNode over a MemoryBackend (backend_) and a FakeClock (clock_),
// started in SetUp. `root_` is the node's root token. Derived fixtures that override SetUp
// call DevNodeTest::SetUp() first (and return if HasFatalFailure()); to change the node's
// options, override NodeOptions().
class DevNodeTest : public ::testing::Test {
 protected:
  void SetUp() override;

  // The options SetUp starts the node with (default: DevNode::Options{}).
  virtual DevNode::Options NodeOptions() const { return DevNode::Options{}; }

  // Forwarders to the node.
  net::HttpRequest Request(const std::string& method, const std::string& path,
                           const std::string& token, const std::string& body = "") const {
    return node_->Request(method, path, token, body);
  }
  net::HttpResponse Send(const net::HttpRequest& request) { return node_->Send(request); }
  net::HttpResponse Call(const std::string& method, const std::string& path,
                         const std::string& token, const std::string& body = "") {
    return node_->Call(method, path, token, body);
  }
  net::HttpResponse Root(const std::string& method, const std::string& path,
                         const std::string& body = "") {
    return node_->Root(method, path, body);
  }
  Core& core() { return node_->core(); }
  VaultHandler& handler() { return node_->handler(); }

  // Declared before node_ so that they outlive it.
  core::FakeClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<DevNode> node_;
  std::string root_;
};

}  // namespace ward::api::testing
