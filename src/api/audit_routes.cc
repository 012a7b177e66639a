// sys/audit, sys/audit-hash and the audit records around every request (docs/audit.md).

#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <optional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "api/handler.h"
#include "api/internal/json.h"
#include "api/internal/request.h"
#include "audit/broker.h"
#include "core/secure_bytes.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "spdlog/spdlog.h"

namespace ward::api {

using internal::ErrorResponse;
namespace json = boost::json;
using internal::Request;

namespace {

constexpr std::string_view kRequestFailed = "audit: failed to log request";
constexpr std::string_view kResponseFailed = "audit: failed to log response";

// How long a response waits for its audit records before it is refused (FileDeviceOptions::
// timeout bounds a blocking append likewise).
constexpr std::chrono::milliseconds kAuditWait{5000};

// Joins the outcome of a response's audit records (Broker::LogAsync) and the HTTP server's
// hold of the response, whichever comes first, and releases the response: as it is if the
// records were written, else as a 500 with the audit error. Thread-safe.
class AuditLatch {
 public:
  void Complete(absl::Status status) {
    net::HttpResponse::Release release;
    {
      absl::MutexLock lock(&mu_);
      if (!release_) {
        outcome_ = std::move(status);
        return;
      }
      release = std::move(release_);
    }
    release(Replacement(status));
  }

  // The outcome, if the records were already written (or refused).
  std::optional<absl::Status> Outcome() {
    absl::MutexLock lock(&mu_);
    return outcome_;
  }

  void Hold(net::HttpResponse::Release release) {
    absl::Status outcome;
    {
      absl::MutexLock lock(&mu_);
      if (!outcome_.has_value()) {
        release_ = std::move(release);
        return;
      }
      outcome = *outcome_;
    }
    release(Replacement(outcome));
  }

 private:
  static std::optional<net::HttpResponse> Replacement(const absl::Status& status) {
    if (status.ok()) return std::nullopt;
    return ErrorResponse(500, std::string(status.message()));
  }

  absl::Mutex mu_;
  std::optional<absl::Status> outcome_ ABSL_GUARDED_BY(mu_);
  net::HttpResponse::Release release_ ABSL_GUARDED_BY(mu_);
};

bool IsPath(const std::string& path, std::string_view route) {
  return path == route || (path.size() == route.size() + 1 &&
                           absl::StartsWith(path, core::ToAbsl(route)) && path.back() == '/');
}

// Vault leaves these out of the audit log: load balancers poll them.
bool Exempt(const std::string& path) {
  return IsPath(path, "sys/health") || IsPath(path, "sys/seal-status");
}

std::string OperationFor(const std::string& method) {
  if (method == "GET" || method == "HEAD") return "read";
  if (method == "LIST") return "list";
  if (method == "DELETE") return "delete";
  if (method == "PATCH") return "patch";
  return "update";
}

audit::AuthInfo AuthFor(const auth::TokenEntry& e, const std::string& token, absl::Time now) {
  audit::AuthInfo a;
  a.known = true;
  a.client_token = token;
  a.accessor = e.accessor;
  a.display_name = e.display_name;
  a.policies = e.policies;
  a.metadata = e.meta;
  a.token_type = e.type;
  a.num_uses = e.num_uses;
  a.token_ttl =
      e.expire_time == absl::InfiniteFuture() ? 0 : absl::ToInt64Seconds(e.RemainingTtl(now));
  a.token_issue_time = e.creation_time;
  return a;
}

audit::RequestInfo RequestFor(const Request& req, const UnsealedState* state,
                              const std::string& token, const auth::TokenEntry* entry) {
  audit::RequestInfo r;
  r.id = std::string(req.request_id());
  r.operation = OperationFor(req.method);
  r.path = req.path;
  if (absl::StartsWith(req.path, "sys/")) {
    r.mount_type = "system";
    r.mount_point = "sys/";
  } else if (absl::StartsWith(req.path, "auth/token/")) {
    r.mount_type = "token";
    r.mount_point = "auth/token/";
  } else if (state != nullptr && state->mounts != nullptr) {
    if (auto m = state->mounts->Find(req.path)) {
      r.mount_type = m->entry->type;
      r.mount_point = m->entry->path;
    }
  }
  const std::string& body = req.http.body;
  if (!body.empty()) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    // A body that is not JSON is still recorded, as one (hashed) string.
    r.data = ec ? json::value(body) : std::move(v);
  } else if (!req.query.empty()) {
    json::object q;
    for (const auto& [k, v] : req.query) q[k] = v;
    r.data = std::move(q);
  }
  r.remote_address = req.http.remote_address;
  r.remote_port = req.http.remote_port;
  r.client_token = token;
  if (entry != nullptr) r.client_token_accessor = entry->accessor;
  return r;
}

// What the records say about `resp`. `given` is what the handler said about its data
// (Request::response_data), if anything: then the body is not parsed. The result may refer to
// `given`, which must outlive it.
audit::ResponseInfo ResponseFor(const net::HttpResponse& resp,
                                const std::optional<Request::ResponseData>& given) {
  audit::ResponseInfo r;
  r.status_code = resp.status;
  if (given.has_value()) {
    r.data_json = given->json;
    r.data_identity = given->identity;
    r.data_detail = given->detail;
    return r;
  }
  if (resp.body.empty()) return r;
  boost::system::error_code ec;
  json::value v = json::parse(resp.body, ec);
  if (ec) {
    r.data = json::value(resp.body);  // hashed like any string
    return r;
  }
  if (!v.is_object()) {
    r.data = std::move(v);
    return r;
  }
  json::object& o = v.as_object();
  if (const json::value* errors = o.if_contains("errors");
      errors != nullptr && errors->is_array()) {
    std::vector<std::string> messages;
    for (const json::value& e : errors->as_array()) {
      if (e.is_string()) messages.emplace_back(e.as_string());
    }
    // Error messages never carry secret values (house rule), so they stay readable.
    r.error = absl::StrJoin(messages, "; ");
    if (r.error.empty()) r.error = absl::StrCat("status ", resp.status);
    return r;
  }
  if (o.contains("request_id") && o.contains("data")) {  // Vault's response envelope
    r.data = std::move(o["data"]);
    if (json::value* a = o.if_contains("auth")) r.auth = std::move(*a);
    if (const json::value* w = o.if_contains("warnings"); w != nullptr && w->is_array()) {
      for (const json::value& e : w->as_array()) {
        if (e.is_string()) r.warnings.emplace_back(e.as_string());
      }
    }
    return r;
  }
  r.data = std::move(v);  // a bare body (sys/seal-status style): all of it is data
  return r;
}

}  // namespace

net::HttpResponse VaultHandler::DispatchAudited(Request& req) {
  if (Exempt(req.path)) return Dispatch(req);
  std::shared_ptr<const UnsealedState> state = core_.State();
  std::shared_ptr<const audit::DeviceSet> devices;
  if (state != nullptr && state->audit != nullptr) devices = state->audit->Snapshot();

  const std::string& token = req.client_token;
  audit::AuthInfo auth;
  audit::RequestInfo info;
  absl::Cleanup zero = [&] {
    core::SecureZero(auth.client_token);
    core::SecureZero(info.client_token);
  };
  auto describe = [&](const std::shared_ptr<const UnsealedState>& state_ptr) {
    const UnsealedState& s = *state_ptr;
    const auth::TokenEntry* entry = nullptr;
    std::optional<auth::TokenEntry> identity;
    if (!token.empty() && s.tokens != nullptr) {
      const absl::StatusOr<auth::TokenEntry>& looked_up = LookupToken(req, state_ptr);
      if (looked_up.ok()) entry = &*looked_up;
    } else if (token.empty()) {
      // Direct certificate identity (docs/cert-auth.md): the record shows the cert role's
      // in-memory identity, as Authenticate will use it.
      identity = CertIdentity(s, req.http, clock_.Now());
      if (identity.has_value()) entry = &*identity;
    }
    if (entry != nullptr) auth = AuthFor(*entry, token, clock_.Now());
    info = RequestFor(req, &s, token, entry);
  };

  if (devices == nullptr || devices->empty()) {
    net::HttpResponse resp = Dispatch(req);
    // The request that unseals the node could not be logged before it ran (no device was
    // open while sealed): log it and its response now, so the trail shows the unseal.
    if (state == nullptr && IsPath(req.path, "sys/unseal")) {
      std::shared_ptr<const UnsealedState> now = core_.State();
      if (now != nullptr && now->audit != nullptr && !now->audit->Snapshot()->empty()) {
        auto opened = now->audit->Snapshot();
        describe(now);
        if (!now->audit->LogRequest(*opened, auth, info).ok() ||
            !now->audit->LogResponse(*opened, auth, info, ResponseFor(resp, req.response_data))
                 .ok()) {
          return ErrorResponse(500, kResponseFailed);
        }
      }
    }
    return resp;
  }

  describe(state);
  // A read that changes nothing may run before its request record is written: both records
  // are written together after it, and its response is sent only once they are (at once for
  // devices on local files, through a hold for queued devices).
  const bool read_only = IsSideEffectFreeRead(
      req.http, *state, token.empty() ? nullptr : &LookupToken(req, state));
  if (!read_only) {
    if (!state->audit->LogRequest(*devices, auth, info).ok()) {
      return ErrorResponse(500, kRequestFailed);
    }
    // Writing the record may have waited for the device: authenticate with the token as it is
    // now (a revocation acknowledged meanwhile holds), not as it was looked up before.
    req.token_lookup.reset();
  }
  net::HttpResponse resp = Dispatch(req);
  auto latch = std::make_shared<AuditLatch>();
  state->audit->LogAsync(*devices, auth, info, /*with_request=*/read_only,
                         ResponseFor(resp, req.response_data),
                         [latch](absl::Status s) { latch->Complete(std::move(s)); });
  // Devices on local files write on this thread: the outcome is known now, nothing to hold.
  if (std::optional<absl::Status> written = latch->Outcome()) {
    if (written->ok()) return resp;
    return ErrorResponse(500, std::string(written->message()));
  }
  resp.hold = [latch](net::HttpResponse::Release release) { latch->Hold(std::move(release)); };
  resp.hold_timeout = kAuditWait;
  static const auto kTimedOut =
      std::make_shared<const net::HttpResponse>(ErrorResponse(500, kResponseFailed));
  resp.hold_timeout_response = kTimedOut;
  return resp;
}

net::HttpResponse VaultHandler::HandleAudit(Request& req) {
  // Authorize has checked the policy (sys/audit is root-protected: sudo).
  const std::string& p = req.path;
  audit::Broker& broker = *req.state->audit;
  if (absl::StartsWith(p, "sys/audit-hash/")) {
    if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
    auto body = internal::ParseBody(req.http.body);
    if (!body.ok()) return ErrorResponse(body.status());
    auto input = internal::GetString(*body, "input");
    if (!input.ok()) return ErrorResponse(input.status());
    auto hash =
        broker.Hash(p.substr(std::string_view("sys/audit-hash/").size()), input->value_or(""));
    if (input->has_value()) core::SecureZero(**input);
    if (!hash.ok()) return ErrorResponse(hash.status());
    return internal::Envelope(req.request_id(), json::object{{"hash", *hash}}, nullptr, "system",
                              true);
  }
  if (IsPath(p, "sys/audit")) {
    if (req.method != "GET") return ErrorResponse(405, "unsupported operation");
    json::object data;
    for (const audit::DeviceInfo& d : broker.List()) {
      json::object options;
      for (const auto& [k, v] : d.options) options[k] = v;
      data[d.path] = json::object{{"type", d.type},
                                  {"description", d.description},
                                  {"options", std::move(options)},
                                  {"path", d.path},
                                  {"local", false},
                                  {"checkpoint_public_key", d.checkpoint_public_key}};
    }
    return internal::Envelope(req.request_id(), std::move(data), nullptr, "system", true);
  }
  std::string path = p.substr(std::string_view("sys/audit/").size());
  if (req.method == "DELETE") {
    absl::Status s = broker.Disable(path);
    if (!s.ok()) return ErrorResponse(s);
    return internal::NoContent();
  }
  if (req.method != "PUT") return ErrorResponse(405, "unsupported operation");
  auto body = internal::ParseBody(req.http.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto type = internal::GetString(*body, "type");
  auto description = internal::GetString(*body, "description");
  auto options = internal::GetStringMap(*body, "options");
  if (!type.ok()) return ErrorResponse(type.status());
  if (!description.ok()) return ErrorResponse(description.status());
  if (!options.ok()) return ErrorResponse(options.status());
  absl::Status s = broker.Enable(path, type->value_or(""), description->value_or(""),
                                 options->value_or(std::map<std::string, std::string>{}));
  if (!s.ok()) {
    // Vault answers a device it cannot set up with 400.
    return ErrorResponse(400, absl::StrCat("failed to enable audit backend: ", s.message()));
  }
  return internal::NoContent();
}

}  // namespace ward::api
