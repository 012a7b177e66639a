#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "net/http_client.h"

namespace ward::cli {

// Where and how the CLI talks to Ward. Flags win over WARD_* variables, which win over VAULT_*.
struct ClientSettings {
  std::string address;  // -address, WARD_ADDR, VAULT_ADDR; default https://127.0.0.1:8200
  std::string ca_cert;  // -ca-cert, WARD_CACERT, VAULT_CACERT
  std::string token;    // WARD_TOKEN, VAULT_TOKEN
  // Client certificate (PEM chain) and key for mutual TLS; both or neither.
  std::string client_cert;  // -client-cert, WARD_CLIENT_CERT, VAULT_CLIENT_CERT
  std::string client_key;   // -client-key, WARD_CLIENT_KEY, VAULT_CLIENT_KEY
  bool tls_skip_verify = false;  // -tls-skip-verify, WARD_SKIP_VERIFY, VAULT_SKIP_VERIFY
};

// Fills unset fields from the environment.
ClientSettings ResolveSettings(ClientSettings flags);

// A parsed API reply.
struct ApiReply {
  int status = 0;
  std::string body;  // raw JSON (or empty for 204)
};

// A thin Vault-API client over net::HttpClient. Not thread-safe.
class ApiClient {
 public:
  static absl::StatusOr<std::unique_ptr<ApiClient>> Create(const ClientSettings& settings);

  // Sends METHOD /v1/<path> with the token header and `json_body`. A status >= 400 becomes an
  // error carrying the server's messages: kNotFound for 404 (message may be empty), otherwise
  // kFailedPrecondition with "Code: N. Errors: ..." text. Transport failures: kUnavailable.
  absl::StatusOr<ApiReply> Call(std::string_view method, std::string_view path,
                                std::string_view json_body = "",
                                std::string_view content_type = "application/json");

 private:
  explicit ApiClient(std::unique_ptr<net::HttpClient> http, std::string token)
      : http_(std::move(http)), token_(std::move(token)) {}
  std::unique_ptr<net::HttpClient> http_;
  std::string token_;
};

}  // namespace ward::cli
