// Fuzzes what `ward audit verify` does with an audit file (audit/chain.h: VerifyLog, HeadAfter)
// and what an audit device does when it reopens an existing file (audit::FileDevice::Open reads
// the file's last line to continue the chain). Audit files sit on disk where anyone with write
// access can edit them; the verifier exists precisely for files that were tampered with.
//
// Input: the contents of an audit file (seeds are real files written by FileDevice with the
// checkpoint key of TestSeed()). Invariants (abort on violation):
//   - VerifyLog never fails for a valid key, and its report is consistent: records +
//     checkpoints <= lines, a problem's line is within 1..lines, verified signatures only
//     with a key, and every checkpoint verified when the file passed with the key;
//   - passing with the key implies passing without it; passing with allow_open_tail = false
//     implies passing with it;
//   - continuing an intact file (possibly with an incomplete last line, which Open cuts off)
//     with FileDevice (one more record, then Close) leaves a file that verifies with the key
//     and allow_open_tail = false;
//   - nothing throws.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "audit/chain.h"
#include "audit/file_device.h"
#include "audit/keys.h"
#include "core/secure_bytes.h"
#include "core/testing/fake_clock.h"

namespace {

using ward::audit::ProblemKind;
using ward::audit::VerifyOptions;
using ward::audit::VerifyReport;

[[noreturn]] void Fail(std::string_view what) {
  std::fprintf(stderr, "audit_verify_fuzzer: invariant violated: %.*s\n",
               static_cast<int>(what.size()), what.data());
  std::abort();
}

// The checkpoint seed the seed corpus was written with (32 bytes of 's', as audit/test_util.h).
ward::core::SecureBytes TestSeed() { return ward::core::SecureBytes(std::string(32, 's')); }

const std::string& PublicKey() {
  static const std::string* key = [] {
    auto signer = ward::audit::CheckpointSigner::Create(TestSeed());
    if (!signer.ok()) std::abort();
    return new std::string(signer->public_key_hex());
  }();
  return *key;
}

const std::filesystem::path& Dir() {
  static const std::filesystem::path* dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    auto* p = new std::filesystem::path(base / absl::StrCat("ward-fuzz-verify-", ::getpid()));
    std::filesystem::create_directories(*p);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(Dir(), ec);
    });
    return p;
  }();
  return *dir;
}

size_t CountLines(std::string_view contents) {
  size_t n = 0;
  size_t start = 0;
  while (start < contents.size()) {
    size_t nl = contents.find('\n', start);
    ++n;
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return n;
}

VerifyReport Verify(std::string_view contents, bool with_key, bool allow_open_tail) {
  VerifyOptions options;
  if (with_key) options.public_key_hex = PublicKey();
  options.allow_open_tail = allow_open_tail;
  auto report = ward::audit::VerifyLog(contents, options);
  if (!report.ok()) Fail(absl::StrCat("VerifyLog failed: ", report.status().ToString()));
  size_t lines = CountLines(contents);
  if (report->lines != lines) Fail("wrong line count");
  if (report->records + report->checkpoints > report->lines) Fail("more records than lines");
  if (report->last_checkpoint_line > report->lines) Fail("last checkpoint past the end");
  if (!with_key && report->checkpoints_verified != 0) Fail("signatures verified without a key");
  if (report->checkpoints_verified > report->checkpoints) Fail("more verified than checkpoints");
  if (report->problem.has_value()) {
    if (report->problem->line < 1 || report->problem->line > lines) Fail("problem line out of range");
    (void)ward::audit::ProblemKindName(report->problem->kind);
  } else if (with_key && report->checkpoints_verified != report->checkpoints) {
    Fail("an intact file with unverified checkpoints");
  }
  return *std::move(report);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Continues the file with FileDevice, as a node reopening its audit device does, and checks
// that the chain still verifies.
void CheckContinuation(std::string_view contents) {
  std::string path = (Dir() / "audit.log").string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  }
  ward::core::FakeClock clock;
  auto signer = ward::audit::CheckpointSigner::Create(TestSeed());
  if (!signer.ok()) std::abort();
  ward::audit::FileDeviceOptions options;
  options.timeout = absl::Seconds(30);
  auto device = ward::audit::FileDevice::Open(
      path, ward::audit::Hasher(ward::core::SecureBytes(std::string(32, 'k'))), *signer, clock,
      options);
  if (!device.ok()) {
    Fail(absl::StrCat("FileDevice cannot continue a file that verifies: ",
                      device.status().ToString()));
  }
  if (!(*device)->Append(R"({"type":"request","time":"2023-11-14T22:13:20Z"})").ok() ||
      !(*device)->Close().ok()) {
    Fail("FileDevice cannot append to a file that verifies");
  }
  device->reset();
  std::string after = ReadAll(path);
  VerifyReport report = Verify(after, /*with_key=*/true, /*allow_open_tail=*/false);
  if (report.problem.has_value()) {
    std::fprintf(stderr, "after continuing: line %zu: %s\n", report.problem->line,
                 report.problem->message.c_str());
    Fail("a continued file no longer verifies");
  }
  std::filesystem::remove(path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view contents(reinterpret_cast<const char*>(data), size);
  VerifyReport plain = Verify(contents, /*with_key=*/false, /*allow_open_tail=*/false);
  VerifyReport open = Verify(contents, /*with_key=*/false, /*allow_open_tail=*/true);
  VerifyReport keyed = Verify(contents, /*with_key=*/true, /*allow_open_tail=*/true);
  if (!plain.problem.has_value() && open.problem.has_value()) {
    Fail("allow_open_tail rejects what the strict check accepts");
  }
  if (!keyed.problem.has_value() && open.problem.has_value()) {
    Fail("the keyed check accepts what the unkeyed check rejects");
  }

  // The chain head FileDevice::Open would take from the last line.
  size_t end = contents.size();
  if (end > 0 && contents[end - 1] == '\n') --end;
  size_t begin = contents.rfind('\n', end == 0 ? 0 : end - 1);
  begin = (begin == std::string_view::npos || end == 0) ? 0 : begin + 1;
  auto head = ward::audit::HeadAfter(contents.substr(begin, end - begin));
  if (!keyed.problem.has_value() && keyed.lines > 0 && !head.ok()) {
    Fail("HeadAfter rejects the last line of an intact file");
  }

  // An intact file, or one whose only problem is an incomplete last line: a device continues it.
  bool intact = !keyed.problem.has_value();
  bool torn_tail = keyed.problem.has_value() && keyed.problem->kind == ProblemKind::kTruncated &&
                   keyed.problem->line == keyed.lines;
  if (intact || torn_tail) CheckContinuation(contents);
  return 0;
}
