#pragma once

// The parsed form of one API request, shared by the route files. Private to src/api.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "api/core.h"
#include "api/internal/json.h"
#include "auth/token_store.h"
#include "net/http.h"

namespace ward::api::internal {

struct Request {
  const net::HttpRequest& http;
  std::string method;                        // GET, PUT (POST folds into PUT), PATCH, DELETE, LIST, HEAD
  std::string path;                          // after "/v1/", no leading slash
  std::map<std::string, std::string> query;  // decoded
  std::shared_ptr<const UnsealedState> state;
  std::optional<auth::TokenEntry> token;     // set once authenticated
  std::string client_token;                  // the raw token; zeroed when the request ends
  // The token store's answer for client_token (VaultHandler::LookupToken keeps it, so that a
  // request hashes and looks up its token once), and the unsealed state whose store gave it
  // (held, so that a later state can never be mistaken for it).
  std::optional<absl::StatusOr<auth::TokenEntry>> token_lookup = std::nullopt;
  std::shared_ptr<const UnsealedState> token_lookup_state = nullptr;
  // Set by a handler that knows its response's data as text and what identifies it (a KV read:
  // the version's stored data, and the metadata as JSON), so that the audit records need not
  // parse the response and a device can reuse what it hashed for an earlier response with the
  // same identity and detail (audit::ResponseInfo). `json` holds secret values: zeroed when
  // the request ends.
  struct ResponseData {
    std::string json;  // the envelope's "data" value
    std::shared_ptr<const void> identity;
    std::string detail;
  };
  std::optional<ResponseData> response_data = std::nullopt;

  ~Request();
  std::string_view request_id() const { return http.request_id; }
  // The query parameter `name`, or "" if absent.
  std::string Query(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? "" : it->second;
  }
};

// The token a request carries: the X-Vault-Token header, else an "Authorization: Bearer"
// header; "" if neither.
std::string TokenFromHeaders(const net::HttpRequest& http);

// `s` without leading and trailing '/'.
std::string_view TrimSlashes(std::string_view s);

// Whole seconds of `d`, as Vault's JSON shows TTLs.
inline int64_t Seconds(absl::Duration d) { return absl::ToInt64Seconds(d); }

}  // namespace ward::api::internal
