#include "cli/client.h"

#include <cstdlib>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/strings.h"

namespace ward::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string FirstSet(std::initializer_list<std::string> values) {
  for (const std::string& v : values) {
    if (!v.empty()) return v;
  }
  return "";
}

}  // namespace

ClientSettings ResolveSettings(ClientSettings flags) {
  flags.address = FirstSet({flags.address, Env("WARD_ADDR"), Env("VAULT_ADDR"),
                            "https://127.0.0.1:8200"});
  flags.ca_cert = FirstSet({flags.ca_cert, Env("WARD_CACERT"), Env("VAULT_CACERT")});
  flags.token = FirstSet({flags.token, Env("WARD_TOKEN"), Env("VAULT_TOKEN")});
  flags.client_cert =
      FirstSet({flags.client_cert, Env("WARD_CLIENT_CERT"), Env("VAULT_CLIENT_CERT")});
  flags.client_key = FirstSet({flags.client_key, Env("WARD_CLIENT_KEY"), Env("VAULT_CLIENT_KEY")});
  std::string skip = FirstSet({Env("WARD_SKIP_VERIFY"), Env("VAULT_SKIP_VERIFY")});
  if (skip == "1" || skip == "true") flags.tls_skip_verify = true;
  return flags;
}

absl::StatusOr<std::unique_ptr<ApiClient>> ApiClient::Create(const ClientSettings& settings) {
  net::HttpClientOptions options;
  options.address = settings.address;
  options.ca_file = settings.ca_cert;
  options.tls_skip_verify = settings.tls_skip_verify;
  options.client_cert_file = settings.client_cert;
  options.client_key_file = settings.client_key;
  auto http = net::HttpClient::Create(options);
  if (!http.ok()) return http.status();
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(*http), settings.token));
}

absl::StatusOr<ApiReply> ApiClient::Call(std::string_view method, std::string_view path,
                                         std::string_view json_body,
                                         std::string_view content_type) {
  std::vector<std::pair<std::string, std::string>> headers = {{"X-Vault-Request", "true"}};
  if (!token_.empty()) headers.emplace_back("X-Vault-Token", token_);
  if (!json_body.empty()) headers.emplace_back("Content-Type", std::string(content_type));
  auto response = http_->Send(method, absl::StrCat("/v1/", core::ToAbsl(path)), headers, json_body);
  if (!response.ok()) return response.status();
  ApiReply reply{response->status, std::move(response->body)};
  if (reply.status < 400) return reply;
  std::vector<std::string> errors;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(reply.body, ec);
  if (!ec && v.is_object() && v.as_object().contains("errors") &&
      v.as_object().at("errors").is_array()) {
    for (const auto& e : v.as_object().at("errors").as_array()) {
      if (e.is_string()) errors.emplace_back(e.as_string());
    }
  }
  std::string message = absl::StrCat("Code: ", reply.status, ". Errors: ",
                                     errors.empty() ? "(none)" : absl::StrJoin(errors, "; "));
  if (reply.status == 404) return absl::NotFoundError(message);
  return absl::FailedPreconditionError(message);
}

}  // namespace ward::cli
