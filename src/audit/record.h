#pragma once

// Builds audit records in Vault's shape (docs/audit.md), with every sensitive string replaced
// by its hashed form.

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/keys.h"

namespace ward::audit {

// The token behind a request, as far as the server knows it. Plain values; the builder
// hashes what is sensitive. A device remembers the record's auth section, all but num_uses and
// token_ttl, under the accessor of a known token: those fields must not change for an
// accessor (a token's are fixed when it is created).
struct AuthInfo {
  bool known = false;        // false: no valid token; only the request's client_token appears
  std::string client_token;  // the raw token (hashed in the record)
  // client_token's accessor (hashed in the record). A device remembers the hashed token under
  // it, so it must be the accessor of this very token.
  std::string accessor;
  std::string display_name;
  std::vector<std::string> policies;
  std::map<std::string, std::string> metadata;
  std::string token_type;  // "service"
  int64_t num_uses = 0;
  int64_t token_ttl = 0;         // seconds left; 0 = no expiry
  absl::Time token_issue_time;  // written as RFC 3339
};

// What the request asked for.
struct RequestInfo {
  std::string id;
  std::string operation;    // read, update, delete, list, patch
  std::string path;         // after /v1/
  std::string mount_type;   // "kv", "system", "token", "" when no mount matched
  std::string mount_point;  // "secret/", "sys/", "auth/token/"
  boost::json::value data;  // the request body (or query parameters); every string is hashed
  std::string remote_address;
  int64_t remote_port = 0;
  std::string client_token;  // the raw token given, "" for none (hashed in the record)
  // client_token's accessor, "" if the token is not valid (hashed in the record). As
  // AuthInfo::accessor, it must belong to client_token.
  std::string client_token_accessor;
};

// What the server answered.
struct ResponseInfo {
  int status_code = 0;
  boost::json::value data;  // null = none (or see data_json); every string is hashed
  // The data as JSON text instead of `data` (when `data` is null): a KV read's data, which the
  // handler gives as it wrote it. Parsed (and hashed) only when the device has not remembered
  // its hashed form: a device remembers it under (data_identity, data_detail) when
  // data_identity is set, so equal pairs must mean equal data. data_identity's owner is
  // compared too, so another object at a reused address is not mistaken for it.
  std::string_view data_json;
  std::shared_ptr<const void> data_identity;
  std::string data_detail;
  boost::json::value auth;  // null = none; client_token and accessor are hashed
  std::vector<std::string> warnings;
  std::string error;  // "" unless the request failed
};

// Builds the records of one request for one device as JSON text, ready for FileDevice. The
// parts both records share (time, auth, request) are hashed and serialized once, each
// distinct token or accessor is hashed once, and the device's Hasher remembers the hashes of
// valid tokens (by accessor) and of identified response data across requests. Not
// thread-safe (one builder per request).
class RecordBuilder {
 public:
  // Hashes and serializes the shared parts. `hasher` must outlive the builder.
  // Errors: kInternal if hashing fails.
  static absl::StatusOr<RecordBuilder> Create(const Hasher& hasher, absl::Time time,
                                              const AuthInfo& auth, const RequestInfo& request);
  RecordBuilder(RecordBuilder&&) = default;
  ~RecordBuilder();

  // The request record: {"time","type":"request","auth",...,"request",...,"error":""}.
  std::string RequestRecord() const;

  // The response record: as the request record with "type":"response", a "response" object
  // and "error" set from `response`. Errors: kInternal if hashing fails.
  absl::StatusOr<std::string> ResponseRecord(const ResponseInfo& response);

 private:
  explicit RecordBuilder(const Hasher& hasher) : hasher_(&hasher) {}
  // `value` hashed; a value hashed before by this builder is not hashed again.
  absl::StatusOr<std::string> HashOnce(std::string_view value);
  // Appends response.data_json hashed, remembered by the device if data_identity is set.
  // Errors: kInternal if the text is not JSON or hashing fails.
  absl::Status AppendHashedDataJson(std::string& out, const ResponseInfo& response);

  const Hasher* hasher_;
  std::vector<std::pair<std::string, std::string>> hashed_;  // raw -> hashed; raw zeroed at end
  std::string head_;  // `{"time":...,"type":"` up to the type's value
  std::string tail_;  // `","auth":{...},"request":{...}`
  std::string mount_type_;
  std::string mount_point_;
};

// Replaces every string inside `v` (object values at any depth, array elements, or `v` itself)
// by its hashed form. Object keys, numbers, booleans and nulls stay. Errors: from Hasher.
absl::Status HashStrings(const Hasher& hasher, boost::json::value& v);

// The records of RecordBuilder as JSON objects (tests and tools).
// Returns a request record: {"time","type":"request","auth",...,"request",...,"error":""}.
// Errors: kInternal if hashing fails.
absl::StatusOr<boost::json::object> BuildRequestRecord(const Hasher& hasher, absl::Time time,
                                                       const AuthInfo& auth,
                                                       const RequestInfo& request);

// Returns a response record: as the request record with "type":"response", a "response"
// object and "error" set from `response`. Errors: kInternal if hashing fails.
absl::StatusOr<boost::json::object> BuildResponseRecord(const Hasher& hasher, absl::Time time,
                                                        const AuthInfo& auth,
                                                        const RequestInfo& request,
                                                        const ResponseInfo& response);

}  // namespace ward::audit
