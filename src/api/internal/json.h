#pragma once

// JSON helpers shared by the api route files. Private to src/api.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/strings.h"
#include "net/http.h"

namespace ward::api::internal {

namespace json = boost::json;

// Parses a request body. An empty body is an empty object.
// Errors: kInvalidArgument "failed to parse JSON input: ..." (Vault's wording) for bad JSON or a
// body that is not an object.
absl::StatusOr<json::object> ParseBody(std::string_view body);

// Typed field readers. Each returns nullopt when the field is absent or null, and
// kInvalidArgument naming the field when it has the wrong type. Numbers given as strings are
// accepted for integers and booleans, as Vault's field decoding does.
absl::StatusOr<std::optional<std::string>> GetString(const json::object& o, std::string_view key);
absl::StatusOr<std::optional<int64_t>> GetInt(const json::object& o, std::string_view key);
absl::StatusOr<std::optional<bool>> GetBool(const json::object& o, std::string_view key);
// Durations: integer seconds or a duration string ("1h").
absl::StatusOr<std::optional<absl::Duration>> GetDuration(const json::object& o,
                                                          std::string_view key);
// String lists: a JSON array of strings, or a comma-separated string (Vault accepts both).
absl::StatusOr<std::optional<std::vector<std::string>>> GetStringList(const json::object& o,
                                                                      std::string_view key);
// Integer lists: an array of integers or numeric strings, or a comma-separated string.
absl::StatusOr<std::optional<std::vector<uint64_t>>> GetUintList(const json::object& o,
                                                                 std::string_view key);
// A string-to-string map (values that are numbers/bools are stringified).
absl::StatusOr<std::optional<std::map<std::string, std::string>>> GetStringMap(
    const json::object& o, std::string_view key);

json::value StringMapToJson(const std::map<std::string, std::string>& m);
json::array StringsToJson(const std::vector<std::string>& v);

// Responses.
net::HttpResponse JsonResponse(int status, const json::value& body);
net::HttpResponse NoContent();
// {"errors":[message]} (or [] when message is empty).
net::HttpResponse ErrorResponse(int status, std::string_view message);
// Maps `status` through HttpStatusFor; kNotFound becomes 404 {"errors":[]} as Vault does.
net::HttpResponse ErrorResponse(const absl::Status& status);

// core::AppendJsonString (core/strings.h), as the routes have always called it.
using core::AppendJsonString;

// The standard Vault response envelope (as Envelope with a null `auth` and no sys_inject)
// around `data_json`, serialized JSON that is copied in verbatim: no JSON tree is built. The
// caller vouches that `data_json` is one valid JSON value.
net::HttpResponse RawEnvelope(std::string_view request_id, std::string_view data_json,
                              std::string_view mount_type, int status = 200);

// The standard Vault response envelope. `data` and `auth` may be null. For sys/ routes Vault
// also copies every key of `data` to the top level; `sys_inject` does that.
net::HttpResponse Envelope(std::string_view request_id, json::value data, json::value auth,
                           std::string_view mount_type, bool sys_inject = false,
                           int status = 200);

}  // namespace ward::api::internal
