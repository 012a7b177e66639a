// Fuzzes Ward's HTTP API below the transport: a sequence of requests goes through
// api::VaultHandler::Handle (target parsing, routing, authentication, ACL checks, audit, quotas
// and every JSON body a route accepts) on a dev-initialised, unsealed Core over a MemoryBackend.
//
// Input: a readable script, so seeds are easy to write and crashes easy to read (fuzz/README.md):
//
//   PUT /v1/secret/data/app
//   x-vault-token: $ROOT
//
//   {"data":{"password":"hunter2"}}
//   ~~~
//   GET /v1/secret/data/app
//   x-vault-token: $ROOT
//
// Requests are separated by a line "~~~". The first line is "METHOD TARGET"; header lines
// follow up to an empty line (names are lower-cased, as the server does); the rest is the body.
// Placeholders in the target, header values and body are replaced before the request is sent:
// $ROOT by the root token, and $TOKEN, $ACCESSOR, $ROLE_ID, $SECRET_ID, $SECRET_ID_ACCESSOR by
// the last such value any earlier response of the same input returned (so a script can create a
// token or an AppRole secret-id and then use it).
//
// Every input starts from a fresh node, so an input that seals the node, revokes the root token
// or installs a 1-request quota cannot starve the inputs after it, and every crash reproduces
// from its input alone.
//
// Run with WARD_FUZZ_VERBOSE=1 to print every request and response.
//
// Invariants checked on every response (a violation aborts, so libFuzzer reports it):
//   - the status is in 200..599;
//   - a 4xx/5xx answer has a JSON object body with an "errors" array of strings (except HEAD
//     answers, which have no body, sys/health's, which has its own, and KV v2's 404 envelope for
//     a deleted version);
//   - every header name is an HTTP token and no value holds CR, LF or NUL (response splitting);
//   - nothing throws (Ward's code does not throw; the server would turn it into a 500).
//
// Audit devices the input enables are redirected to a private temp dir: any "file_path" key
// in a JSON body is rewritten before the request is sent.

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "api/core.h"
#include "api/handler.h"
#include "core/strings.h"
#include "core/testing/fake_clock.h"
#include "net/http.h"
#include "net/internal/http_syntax.h"
#include "spdlog/spdlog.h"
#include "storage/memory_backend.h"

namespace {

namespace json = boost::json;
using ward::core::ToAbsl;

constexpr std::string_view kRootToken = "root-fuzz-token";
constexpr size_t kMaxRequests = 16;

[[noreturn]] void Fail(const ward::net::HttpRequest& req, const ward::net::HttpResponse& resp,
                       std::string_view what) {
  std::fprintf(stderr, "api_request_fuzzer: invariant violated: %.*s\n  request: %s %s\n"
               "  response %d: %.*s\n",
               static_cast<int>(what.size()), what.data(), req.method.c_str(), req.target.c_str(),
               resp.status, static_cast<int>(std::min<size_t>(resp.body.size(), 2000)),
               resp.body.data());
  std::abort();
}

// A private directory for audit files, emptied after every input.
const std::filesystem::path& AuditDir() {
  static const std::filesystem::path* dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    auto* p = new std::filesystem::path(base / absl::StrCat("ward-fuzz-audit-", ::getpid()));
    std::filesystem::create_directories(*p);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(AuditDir(), ec);
    });
    return p;
  }();
  return *dir;
}

// Rewrites every "file_path" value in `v` (at any depth) to a file in AuditDir().
bool RedirectFilePaths(json::value& v, int& counter) {
  bool changed = false;
  if (v.is_object()) {
    for (auto& kv : v.as_object()) {
      if (kv.key() == "file_path") {
        kv.value() = (AuditDir() / absl::StrCat("audit-", counter++, ".log")).string();
        changed = true;
      } else {
        changed |= RedirectFilePaths(kv.value(), counter);
      }
    }
  } else if (v.is_array()) {
    for (auto& e : v.as_array()) changed |= RedirectFilePaths(e, counter);
  }
  return changed;
}

// Parses the body exactly as api::internal::ParseBody does; if it is JSON, keeps audit files in
// AuditDir().
void ConfineAuditFiles(std::string& body, int& counter) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(body);
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(trimmed.data(), trimmed.size()), ec);
  if (ec) return;
  if (RedirectFilePaths(v, counter)) body = json::serialize(v);
}

// Remembers the credentials responses hand out, for the placeholders of later requests.
void Capture(const json::value& v, std::map<std::string, std::string>& vars, int depth = 0) {
  if (depth > 8) return;
  if (v.is_object()) {
    for (const auto& kv : v.as_object()) {
      std::string_view key(kv.key().data(), kv.key().size());
      if (kv.value().is_string()) {
        const json::string& s = kv.value().as_string();
        if (key == "client_token") vars["$TOKEN"] = std::string(s);
        if (key == "accessor") vars["$ACCESSOR"] = std::string(s);
        if (key == "role_id") vars["$ROLE_ID"] = std::string(s);
        if (key == "secret_id") vars["$SECRET_ID"] = std::string(s);
        if (key == "secret_id_accessor") vars["$SECRET_ID_ACCESSOR"] = std::string(s);
      } else {
        Capture(kv.value(), vars, depth + 1);
      }
    }
  } else if (v.is_array()) {
    for (const auto& e : v.as_array()) Capture(e, vars, depth + 1);
  }
}

std::string Substitute(std::string_view text, const std::map<std::string, std::string>& vars) {
  if (text.find('$') == std::string_view::npos) return std::string(text);
  // Longest names first, so $SECRET_ID_ACCESSOR is not read as $SECRET_ID + "_ACCESSOR".
  std::vector<std::pair<absl::string_view, absl::string_view>> r;
  for (auto it = vars.rbegin(); it != vars.rend(); ++it) r.emplace_back(it->first, it->second);
  std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return absl::StrReplaceAll(ToAbsl(text), r);
}

// Splits one request block into an HttpRequest (before substitution).
ward::net::HttpRequest ParseBlock(std::string_view block) {
  ward::net::HttpRequest req;
  size_t eol = block.find('\n');
  std::string_view line = block.substr(0, eol);
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 1);
  size_t sp = line.find(' ');
  req.method = std::string(line.substr(0, sp));
  if (sp != std::string_view::npos) req.target = std::string(line.substr(sp + 1));
  while (!rest.empty()) {
    eol = rest.find('\n');
    line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    std::string name(line.substr(0, colon));
    std::string value;
    if (colon != std::string_view::npos) {
      value = std::string(absl::StripAsciiWhitespace(ToAbsl(line.substr(colon + 1))));
    }
    req.headers.emplace_back(absl::AsciiStrToLower(name), std::move(value));
  }
  req.body = std::string(rest);
  return req;
}

// Whether Beast's parser could hand this request to the handler: the method and header names
// are tokens, the target is non-empty and has no control characters or spaces, header values
// have no CR/LF/NUL. Anything else never reaches the handler in production.
bool Transportable(const ward::net::HttpRequest& req) {
  if (!ward::net::internal::IsHttpToken(req.method) || req.target.empty()) return false;
  for (char c : req.target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  for (const auto& [name, value] : req.headers) {
    if (!ward::net::internal::IsHttpToken(name) || !ward::net::internal::IsHttpFieldValue(value)) {
      return false;
    }
  }
  return true;
}

void CheckResponse(const ward::net::HttpRequest& req, const ward::net::HttpResponse& resp) {
  if (resp.status < 200 || resp.status > 599) Fail(req, resp, "status outside 200..599");
  for (const auto& [name, value] : resp.headers) {
    if (!ward::net::internal::IsHttpToken(name)) Fail(req, resp, "header name is not a token");
    if (!ward::net::internal::IsHttpFieldValue(value)) {
      Fail(req, resp, absl::StrCat("header ", name, " holds CR, LF or NUL"));
    }
  }
  // A HEAD answer has no body (sys/health answers HEAD with its status code alone); Ward reads
  // methods without regard to case, so "HEaD" is a HEAD too.
  if (resp.status >= 400 && !absl::EqualsIgnoreCase(req.method, "HEAD")) {
    boost::system::error_code ec;
    json::value v = json::parse(resp.body, ec);
    if (ec || !v.is_object()) Fail(req, resp, "error body is not a JSON object");
    // sys/health answers every status (503 sealed, 501 uninitialised, any ?activecode=) with
    // its own body, as Vault does.
    const json::object& o = v.as_object();
    if (o.contains("initialized") && o.contains("sealed") && o.contains("standby")) return;
    // KV v2 answers a read of a deleted or destroyed version with 404 and the usual envelope
    // (data null, the version's metadata), as Vault does.
    if (resp.status == 404 && o.contains("request_id") && o.contains("data")) return;
    const json::value* errors = o.if_contains("errors");
    if (errors == nullptr || !errors->is_array()) Fail(req, resp, "error body has no errors array");
    for (const json::value& e : errors->as_array()) {
      if (!e.is_string()) Fail(req, resp, "an error is not a string");
    }
  }
}

// WARD_FUZZ_VERBOSE=1 prints every request and response (for writing seeds and reading crashes).
bool Verbose() {
  static const bool verbose = std::getenv("WARD_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

// One dev node: MemoryBackend, single unseal key, unsealed, with a root token.
struct Node {
  ward::storage::MemoryBackend storage;
  std::unique_ptr<ward::api::Core> core;
  std::unique_ptr<ward::api::VaultHandler> handler;

  explicit Node(ward::core::Clock& clock) {
    ward::api::Core::Options options;
    options.audit.device.timeout = absl::Seconds(30);
    auto c = ward::api::Core::Create(storage, clock, options);
    if (!c.ok()) std::abort();
    core = std::move(*c);
    auto key = core->InitializeSingleKey();
    if (!key.ok() || !core->UnsealWithKey(*key).ok()) std::abort();
    auto state = core->State();
    if (state == nullptr || !state->tokens->CreateRootToken(kRootToken).ok()) std::abort();
    ward::api::HandlerOptions handler_options;
    handler_options.cluster_id = "00000000-0000-4000-8000-000000000000";
    handler = std::make_unique<ward::api::VaultHandler>(*core, clock, handler_options);
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The handler logs events at info level; keep the fuzzer's output readable.
  spdlog::set_level(spdlog::level::off);
  AuditDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ward::core::FakeClock clock;
  int audit_files = 0;
  {
    Node node(clock);
    std::map<std::string, std::string> vars = {{"$ROOT", std::string(kRootToken)}};
    size_t start = 0;
    for (size_t n = 0; n < kMaxRequests && start <= input.size(); ++n) {
      size_t sep = input.find("\n~~~\n", start);
      std::string_view block = input.substr(start, sep == std::string_view::npos ? sep : sep - start);
      start = sep == std::string_view::npos ? input.size() + 1 : sep + 5;

      ward::net::HttpRequest raw = ParseBlock(block);
      ward::net::HttpRequest req;
      req.method = raw.method;
      req.target = Substitute(raw.target, vars);
      for (auto& [name, value] : raw.headers) req.headers.emplace_back(name, Substitute(value, vars));
      req.body = Substitute(raw.body, vars);
      if (!Transportable(req)) continue;
      ConfineAuditFiles(req.body, audit_files);
      req.remote_address = "127.0.0.1";
      req.remote_port = 40000;
      req.request_id = absl::StrCat("00000000-0000-4000-8000-", 100000000000 + n);

      ward::net::HttpResponse resp = ward::net::AwaitHeld(node.handler->Handle(req));
      if (Verbose()) {
        std::fprintf(stderr, "%s %s -> %d %.*s\n", req.method.c_str(), req.target.c_str(),
                     resp.status, static_cast<int>(std::min<size_t>(resp.body.size(), 300)),
                     resp.body.data());
      }
      CheckResponse(req, resp);
      boost::system::error_code ec;
      json::value v = json::parse(resp.body, ec);
      if (!ec) Capture(v, vars);
      // Let time pass between requests, so TTLs and rate limits move (deterministically).
      clock.Advance(absl::Milliseconds(250));
    }
  }
  if (audit_files > 0) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(AuditDir(), ec)) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  return 0;
}
