// Fuzzes server::ParseConfig, the ward.yaml parser (yaml-cpp underneath). The config is
// operator input rather than network input, but it is parsed before anything else runs and a
// crash there is a crash at startup with no useful message.
//
// Input: YAML text (seeds are real configs). Invariants (abort on violation):
//   - every error is kInvalidArgument (the documented code) with a non-empty message;
//   - an accepted config is valid: listener.address splits into host:port, the TLS files and
//     storage.path are set, durations and max_request_size are positive, seal.type is shamir;
//   - nothing throws (yaml-cpp throws; ParseConfig must turn every exception into a status).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "absl/status/status.h"
#include "server/config.h"

namespace {

[[noreturn]] void Fail(std::string_view what) {
  std::fprintf(stderr, "config_fuzzer: invariant violated: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = ward::server::ParseConfig(text);
  if (!config.ok()) {
    if (config.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail("error is not kInvalidArgument");
    }
    if (config.status().message().empty()) Fail("error without a message");
    return 0;
  }
  const ward::server::Config& c = *config;
  if (!ward::server::SplitHostPort(c.listener.address, "listener.address").ok()) {
    Fail("accepted an address that does not split");
  }
  if (c.listener.tls_cert_file.empty() || c.listener.tls_key_file.empty()) Fail("no TLS files");
  if (c.storage.path.empty()) Fail("no storage path");
  if (c.listener.max_request_size == 0) Fail("max_request_size is 0");
  if (c.listener.read_timeout <= absl::ZeroDuration() ||
      c.listener.idle_timeout <= absl::ZeroDuration() ||
      c.shutdown_grace <= absl::ZeroDuration()) {
    Fail("a duration is not positive");
  }
  if (c.seal.type != "shamir") Fail("seal.type is not shamir");
  return 0;
}
