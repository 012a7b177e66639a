// Fuzzes the bytes a client sends before any Ward code runs: Beast's HTTP/1.1 request parser
// configured as Ward's listener configures it (net/http_server.cc: request_parser<string_body>,
// header_limit 16 KiB, body_limit = listener.max_request_size), then the conversion into
// net::HttpRequest the server performs, and net/internal/http_syntax's checks.
//
// Beast is compiled header-only here and only its synchronous parser is used: no Asio I/O and
// no coroutine, so clang-14 with ASan builds it (the coroutine TUs of ward_net it cannot).
//
// Input: raw bytes as they arrive on the socket (seeds are plain HTTP/1.1 requests). They are
// parsed twice: in one piece, and in 13-byte reads (a slow peer splitting lines and CRLFs), and
// both parses must accept the same requests. Invariants (abort on violation):
//   - every field name Beast accepts is an RFC 9110 token, every value it accepts is free of
//     CR/LF/NUL, and the method is a token: Ward's http_syntax agrees with Beast;
//   - the body never exceeds the body limit and the header block never the header limit;
//   - whole and chunked parses accept the same requests (method, target, fields, body);
//   - nothing throws.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "absl/strings/ascii.h"
#include "core/strings.h"
#include "net/http.h"
#include "net/internal/http_syntax.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;

// Ward's defaults: net::HttpServerOptions::header_limit. The body limit is smaller than the
// default max_request_size (32 MiB) so that the limit is reachable by fuzz inputs; the check is
// the same code either way.
constexpr uint32_t kHeaderLimit = 16 * 1024;
constexpr uint64_t kBodyLimit = 4 * 1024;

[[noreturn]] void Fail(std::string_view what) {
  std::fprintf(stderr, "http_syntax_fuzzer: invariant violated: %.*s\n",
               static_cast<int>(what.size()), what.data());
  std::abort();
}

std::string Text(beast::string_view s) { return std::string(s.data(), s.size()); }

// Parses requests from `input` one after another, as a keep-alive connection would. Returns a
// summary of what was parsed (methods, targets, headers, bodies and the final error).
std::string ParseStream(std::string_view input, size_t chunk) {
  std::string summary;
  size_t offset = 0;
  for (int requests = 0; requests < 8 && offset < input.size(); ++requests) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    beast::error_code ec;
    beast::flat_buffer buffer;
    // Feed the bytes the way http::read does: append a chunk, let the parser consume what it
    // can, repeat; at the end of the input, tell the parser the stream ended.
    while (!parser.is_done()) {
      size_t n = std::min(chunk, input.size() - offset);
      if (n > 0) {
        auto dst = buffer.prepare(n);
        std::memcpy(dst.data(), input.data() + offset, n);
        buffer.commit(n);
        offset += n;
      } else if (buffer.size() == 0) {
        parser.put_eof(ec);
        break;
      }
      size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == http::error::need_more) ec = {};
      if (ec) break;
      if (n == 0 && used == 0 && !parser.is_done()) {
        // No new bytes and nothing consumed: the peer has closed.
        parser.put_eof(ec);
        break;
      }
    }
    // Bytes the parser did not consume belong to the next request.
    offset -= buffer.size();
    if (ec || !parser.is_done()) {
      // Rejected. Which error Beast reports for a malformed head can depend on where the reads
      // were cut (a start line is checked when its CRLF arrives, a whole head at once), and
      // every error closes the connection, so only the requests before it are compared.
      summary += "|rejected";
      return summary;
    }

    http::request<http::string_body>& req = parser.get();
    ward::net::HttpRequest request;
    request.method = Text(req.method_string());
    request.target = Text(req.target());
    if (!ward::net::internal::IsHttpToken(request.method)) Fail("method is not a token");
    if (request.target.empty()) Fail("empty target");
    for (const auto& field : req) {
      std::string name = Text(field.name_string());
      std::string value = Text(field.value());
      if (!ward::net::internal::IsHttpToken(name)) Fail("field name is not a token");
      if (!ward::net::internal::IsHttpFieldValue(value)) Fail("field value holds CR, LF or NUL");
      request.headers.emplace_back(absl::AsciiStrToLower(ward::core::ToAbsl(name)), value);
    }
    request.body = std::move(req.body());
    if (request.body.size() > kBodyLimit) Fail("body over the limit");
    // The lookups the handler does on every request.
    (void)request.Header("x-vault-token");
    (void)request.Header("authorization");
    summary += "|" + request.method + " " + request.target;
    for (const auto& [name, value] : request.headers) summary += "\n" + name + ":" + value;
    summary += "\n\n" + request.body;
    if (!req.keep_alive()) return summary;
  }
  return summary;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string whole = ParseStream(input, std::max<size_t>(input.size(), 1));
  std::string chunked = ParseStream(input, 13);
  if (whole != chunked) {
    std::fprintf(stderr, "whole:   %s\nchunked: %s\n", whole.c_str(), chunked.c_str());
    Fail("whole and chunked parses differ");
  }
  // The syntax checks on their own, over arbitrary text (the client uses them on header values
  // it is given).
  (void)ward::net::internal::IsHttpToken(input);
  (void)ward::net::internal::IsHttpFieldValue(input);
  return 0;
}
