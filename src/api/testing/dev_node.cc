#include "api/testing/dev_node.h"

#include <utility>

#include "core/status_macros.h"

namespace ward::api::testing {

boost::json::value Body(const net::HttpResponse& response) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(response.body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << response.body;
  return v;
}

std::string FirstError(const net::HttpResponse& response) {
  boost::json::value v = Body(response);
  if (!v.is_object() || !v.as_object().contains("errors")) return "<no errors>";
  const boost::json::value& errors = v.at("errors");
  if (!errors.is_array() || errors.as_array().empty()) return "";
  const boost::json::value& first = errors.as_array()[0];
  return first.is_string() ? std::string(first.as_string()) : "";
}

absl::StatusOr<std::unique_ptr<DevNode>> DevNode::Start(storage::Backend& backend,
                                                        core::Clock& clock, Options options) {
  std::unique_ptr<DevNode> node(new DevNode(std::move(options)));
  WARD_ASSIGN_OR_RETURN(node->core_, Core::Create(backend, clock, node->options_.core));
  WARD_ASSIGN_OR_RETURN(core::SecureBytes key, node->core_->InitializeSingleKey());
  WARD_RETURN_IF_ERROR(node->core_->UnsealWithKey(key));
  WARD_ASSIGN_OR_RETURN(auth::IssuedToken root, node->core_->State()->tokens->CreateRootToken(""));
  node->root_token_ = root.token;
  node->handler_ = std::make_unique<VaultHandler>(*node->core_, clock, node->options_.handler);
  return node;
}

net::HttpRequest DevNode::Request(const std::string& method, const std::string& path,
                                  const std::string& token, const std::string& body) const {
  net::HttpRequest request;
  request.method = method;
  request.target = "/v1/" + path;
  if (!token.empty()) request.headers.emplace_back("x-vault-token", token);
  if (!body.empty()) request.headers.emplace_back("content-type", "application/json");
  request.body = body;
  request.remote_address = "127.0.0.1";
  request.remote_port = 50000;
  request.request_id = options_.request_id;
  return request;
}

net::HttpResponse DevNode::Send(const net::HttpRequest& request) {
  return net::AwaitHeld(handler_->Handle(request));
}

net::HttpResponse DevNode::Call(const std::string& method, const std::string& path,
                                const std::string& token, const std::string& body) {
  return Send(Request(method, path, token, body));
}

net::HttpResponse DevNode::Root(const std::string& method, const std::string& path,
                                const std::string& body) {
  return Call(method, path, root_token_, body);
}

void DevNodeTest::SetUp() {
  absl::StatusOr<std::unique_ptr<DevNode>> node = DevNode::Start(backend_, clock_, NodeOptions());
  ASSERT_TRUE(node.ok()) << node.status();
  node_ = *std::move(node);
  root_ = node_->root_token();
}

}  // namespace ward::api::testing
