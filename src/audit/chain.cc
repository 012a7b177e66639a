#include "audit/chain.h"

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/keys.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "crypto/hmac.h"

namespace ward::audit {
namespace json = boost::json;

std::string LineHash(std::string_view line) { return crypto::HexEncode(crypto::Sha256(line)); }

std::string ChainLine(std::string_view record_json, uint64_t seq, std::string_view prev_hash) {
  std::string_view body = record_json.substr(0, record_json.size() - 1);  // drop '}'
  bool empty_object = body.size() == 1;
  return absl::StrCat(core::ToAbsl(body), empty_object ? "" : ",", "\"seq\":", seq,
                      ",\"prev_hash\":\"", core::ToAbsl(prev_hash), "\"}");
}

PrehashedRecord::PrehashedRecord(std::string_view record_json)
    : body_(record_json.substr(0, record_json.size() - 1)),  // drop '}'
      empty_object_(body_.size() == 1) {
  prefix_hash_.Update(body_);
  if (!empty_object_) prefix_hash_.Update(",");
}

size_t PrehashedRecord::LineSizeBound() const {
  // ,"seq": (7) + up to 20 digits + ,"prev_hash":" (14) + a hex hash (64) + "} (2) + newline.
  return body_.size() + 7 + 20 + 14 + kGenesisHash.size() + 2 + 1;
}

std::string PrehashedRecord::AppendLine(uint64_t seq, std::string_view prev_hash,
                                        std::string& out) && {
  absl::StrAppend(&out, core::ToAbsl(body_), empty_object_ ? "" : ",");
  const size_t suffix = out.size();
  absl::StrAppend(&out, "\"seq\":", seq, ",\"prev_hash\":\"", core::ToAbsl(prev_hash), "\"}");
  prefix_hash_.Update(std::string_view(out).substr(suffix));
  out.push_back('\n');
  return crypto::HexEncode(prefix_hash_.Final());
}

std::string CheckpointMessage(uint64_t seq, std::string_view hash, std::string_view time) {
  return absl::StrCat("ward-audit-checkpoint-v1\n", seq, "\n", core::ToAbsl(hash), "\n",
                      core::ToAbsl(time));
}

std::string CheckpointLine(uint64_t seq, std::string_view hash, std::string_view time,
                           std::string_view sig_hex) {
  return absl::StrCat("{\"type\":\"checkpoint\",\"seq\":", seq, ",\"hash\":\"", core::ToAbsl(hash),
                      "\",\"time\":\"", core::ToAbsl(time), "\",\"sig\":\"", core::ToAbsl(sig_hex),
                      "\"}");
}

std::string RotationMessage(uint64_t seq, std::string_view hash, std::string_view time) {
  return absl::StrCat("ward-audit-rotation-v1\n", seq, "\n", core::ToAbsl(hash), "\n",
                      core::ToAbsl(time));
}

std::string RotationLine(uint64_t seq, std::string_view hash, std::string_view time,
                         std::string_view sig_hex) {
  return absl::StrCat("{\"type\":\"rotation\",\"seq\":", seq, ",\"hash\":\"", core::ToAbsl(hash),
                      "\",\"time\":\"", core::ToAbsl(time), "\",\"sig\":\"", core::ToAbsl(sig_hex),
                      "\"}");
}

bool FollowsFrom(const VerifyReport& earlier, const VerifyReport& later) {
  return !earlier.problem.has_value() && !later.problem.has_value() &&
         later.starts_with_rotation && earlier.lines > 0 &&
         later.first_seq == earlier.last_seq + 1 && later.first_link == earlier.last_hash;
}

namespace {

// One line, as the verifier understands it.
struct Line {
  bool parsed = false;
  bool checkpoint = false;  // a checkpoint or rotation line (signed)
  bool rotation = false;
  uint64_t seq = 0;
  std::string link;  // prev_hash, or a checkpoint's hash
  std::string time, sig;
  std::string hash;  // of the line's bytes
};

Line ParseLine(std::string_view text) {
  Line l;
  l.hash = LineHash(text);
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return l;
  const json::object& o = v.as_object();
  const json::value* type = o.if_contains("type");
  const json::value* seq = o.if_contains("seq");
  if (type == nullptr || !type->is_string() || seq == nullptr) return l;
  if (seq->is_uint64()) {
    l.seq = seq->as_uint64();
  } else if (seq->is_int64() && seq->as_int64() > 0) {
    l.seq = static_cast<uint64_t>(seq->as_int64());
  } else {
    return l;
  }
  l.rotation = type->as_string() == "rotation";
  l.checkpoint = l.rotation || type->as_string() == "checkpoint";
  const json::value* link = o.if_contains(l.checkpoint ? "hash" : "prev_hash");
  if (link == nullptr || !link->is_string()) return l;
  l.link = std::string(link->as_string());
  if (l.checkpoint) {
    const json::value* time = o.if_contains("time");
    const json::value* sig = o.if_contains("sig");
    if (time == nullptr || !time->is_string() || sig == nullptr || !sig->is_string()) return l;
    l.time = std::string(time->as_string());
    l.sig = std::string(sig->as_string());
  }
  l.parsed = true;
  return l;
}

VerifyProblem Problem(ProblemKind kind, size_t line, std::string message) {
  return VerifyProblem{kind, line, std::move(message)};
}

// Explains the first break in the chain at index i (0-based), where line i does not follow
// from line i-1 (expected seq `e`, expected link `prev`).
VerifyProblem Classify(const std::vector<Line>& lines, size_t i, uint64_t e,
                       const std::string& prev) {
  const Line& cur = lines[i];
  const Line* next = i + 1 < lines.size() && lines[i + 1].parsed ? &lines[i + 1] : nullptr;
  size_t n = i + 1;  // 1-based
  if (next != nullptr && next->seq == e && next->link == prev) {
    // Line i+1 continues the chain from line i-1. If line i is the record that belongs after
    // it (seq e+1, and the line after i+1 links to line i, or nothing follows), the two were
    // swapped; otherwise line i was inserted.
    const Line* after = i + 2 < lines.size() ? &lines[i + 2] : nullptr;
    if (cur.seq == e + 1 && (after == nullptr || after->link == cur.hash)) {
      return Problem(
          ProblemKind::kReordered, n,
          absl::StrCat("line ", n, " is out of order: it swapped places with line ", n + 1));
    }
    return Problem(ProblemKind::kInserted, n,
                   absl::StrCat("line ", n, " was inserted: line ", n + 1,
                                " follows directly from the line before it"));
  }
  if (cur.link == prev && cur.seq != e && (next == nullptr || next->link != cur.hash)) {
    return Problem(ProblemKind::kModified, n,
                   absl::StrCat("line ", n, " was modified (seq ", cur.seq, ", expected ", e, ")"));
  }
  if (cur.seq > e) {
    for (size_t j = i + 1; j < lines.size(); ++j) {
      if (lines[j].parsed && lines[j].seq == e) {
        return Problem(ProblemKind::kReordered, n,
                       absl::StrCat("line ", n, " is out of order: record seq ", e,
                                    " expected here is at line ", j + 1));
      }
    }
    return Problem(ProblemKind::kRemoved, n,
                   absl::StrCat(cur.seq - e, " record(s) (seq ", e, "..", cur.seq - 1,
                                ") were removed before line ", n));
  }
  if (cur.seq < e) {
    for (size_t j = 0; j < i; ++j) {
      if (lines[j].parsed && lines[j].seq == cur.seq) {
        return Problem(ProblemKind::kReordered, n,
                       absl::StrCat("line ", n, " repeats or moves record seq ", cur.seq,
                                    " first seen at line ", j + 1));
      }
    }
    return Problem(
        ProblemKind::kReordered, n,
        absl::StrCat("line ", n, " is out of order (seq ", cur.seq, ", expected ", e, ")"));
  }
  // Right seq, wrong link: the previous line's bytes changed, or this line's link did.
  // With nothing after it, blame the content of the line before (the common edit).
  if (i > 0 && (next == nullptr || next->link == cur.hash)) {
    return Problem(
        ProblemKind::kModified, n - 1,
        absl::StrCat("line ", n - 1, " was modified (line ", n, " no longer matches its hash)"));
  }
  return Problem(ProblemKind::kModified, n, absl::StrCat("line ", n, " was modified"));
}

}  // namespace

std::string_view ProblemKindName(ProblemKind kind) {
  switch (kind) {
    case ProblemKind::kModified:
      return "modified";
    case ProblemKind::kRemoved:
      return "removed";
    case ProblemKind::kInserted:
      return "inserted";
    case ProblemKind::kReordered:
      return "reordered";
    case ProblemKind::kTruncated:
      return "truncated";
    case ProblemKind::kBadSignature:
      return "bad-signature";
    case ProblemKind::kOpenTail:
      return "open-tail";
  }
  return "unknown";
}

absl::StatusOr<ChainHead> HeadAfter(std::string_view line) {
  Line l = ParseLine(line);
  if (!l.parsed) return absl::DataLossError("the last line is not a Ward audit record");
  ChainHead head;
  head.seq = l.seq;
  head.hash = l.hash;
  head.last_is_checkpoint = l.checkpoint;
  return head;
}

absl::StatusOr<VerifyReport> VerifyLog(std::string_view contents, const VerifyOptions& options) {
  if (!options.public_key_hex.empty()) {
    // Validates the key up front so a bad key is a usage error, not a "bad signature".
    WARD_ASSIGN_OR_RETURN(std::string key, HexDecode(options.public_key_hex));
    if (key.size() != 32) return absl::InvalidArgumentError("key must be 32 bytes of hex");
  }
  VerifyReport report;
  std::vector<Line> lines;
  bool partial_tail = false;
  size_t start = 0;
  while (start < contents.size()) {
    size_t nl = contents.find('\n', start);
    if (nl == std::string_view::npos) {
      partial_tail = true;
      nl = contents.size();
    }
    lines.push_back(ParseLine(contents.substr(start, nl - start)));
    start = nl + 1;
  }
  report.lines = lines.size();
  uint64_t expected_seq = 1;
  std::string prev(kGenesisHash);
  if (!lines.empty() && lines[0].parsed && lines[0].rotation) {
    // The file continues the chain of a rotated file: its chain starts at the rotation line.
    report.starts_with_rotation = true;
    expected_seq = lines[0].seq;
    prev = lines[0].link;
  }
  report.first_seq = expected_seq;
  report.first_link = prev;
  for (size_t i = 0; i < lines.size(); ++i) {
    const Line& l = lines[i];
    size_t n = i + 1;
    if (!l.parsed) {
      if (partial_tail && i + 1 == lines.size()) {
        report.problem =
            Problem(ProblemKind::kTruncated, n,
                    absl::StrCat("line ", n, " is incomplete: the file was truncated"));
      } else {
        report.problem = Problem(ProblemKind::kModified, n,
                                 absl::StrCat("line ", n, " is not a valid audit line (modified)"));
      }
      return report;
    }
    if (l.seq != expected_seq || l.link != prev) {
      report.problem = Classify(lines, i, expected_seq, prev);
      return report;
    }
    if (l.checkpoint) {
      ++report.checkpoints;
      report.last_checkpoint_line = n;
      if (!options.public_key_hex.empty()) {
        std::string message = l.rotation ? RotationMessage(l.seq, l.link, l.time)
                                         : CheckpointMessage(l.seq, l.link, l.time);
        WARD_ASSIGN_OR_RETURN(bool valid,
                              VerifyCheckpointSignature(options.public_key_hex, message, l.sig));
        if (!valid) {
          report.problem =
              Problem(ProblemKind::kBadSignature, n,
                      absl::StrCat("line ", n, ": ", l.rotation ? "rotation" : "checkpoint",
                                   " signature does not verify under the key "
                                   "(forged, or the chain before it was rewritten)"));
          return report;
        }
        ++report.checkpoints_verified;
      }
    } else {
      ++report.records;
    }
    prev = l.hash;
    expected_seq = l.seq + 1;
  }
  report.last_seq = expected_seq - 1;
  report.last_hash = prev;
  if (partial_tail) {
    // The last piece parsed as a whole line but lacks its newline: still cut short.
    report.problem = Problem(
        ProblemKind::kTruncated, lines.size(),
        absl::StrCat("line ", lines.size(), " has no final newline: the file was truncated"));
    return report;
  }
  if (!lines.empty() && !lines.back().checkpoint && !options.allow_open_tail) {
    size_t tail = lines.size() - report.last_checkpoint_line;
    report.problem =
        Problem(ProblemKind::kOpenTail, report.last_checkpoint_line + 1,
                absl::StrCat(tail, " line(s) from line ", report.last_checkpoint_line + 1,
                             " on follow the last checkpoint",
                             report.last_checkpoint_line == 0 ? " (there is none)" : "",
                             ": the file was truncated, or the device was not closed cleanly"));
  }
  return report;
}

absl::StatusOr<VerifyReport> VerifyFile(const std::string& path, const VerifyOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string msg = absl::StrCat("cannot read ", path, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InternalError(msg);
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat("error reading ", path));
  return VerifyLog(buf.str(), options);
}

}  // namespace ward::audit
