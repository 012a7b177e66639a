#pragma once

// The tamper-evident line format of audit files and its offline verifier (docs/audit.md).
//
// Every line is one JSON object. Records carry "seq" (1, 2, 3, ...; a rotated file's successor
// carries on) and "prev_hash", the lower-case hex SHA-256 of the previous line's bytes (without
// its newline; kGenesisHash for the first line of a file that is not a rotation successor).
// Checkpoint lines are
//   {"type":"checkpoint","seq":N,"hash":H,"time":T,"sig":S}
// where H plays the role of prev_hash and S is the hex Ed25519 signature of
// CheckpointMessage(N, H, T) under the device's checkpoint key.
//
// A file that a device started after its previous file was rotated away (SIGHUP) begins with
// a rotation line instead of a first record:
//   {"type":"rotation","seq":N,"hash":H,"time":T,"sig":S}
// H and N-1 are the hash and seq of the last line of the previous file, so the chain runs on
// across files, and S signs RotationMessage(N, H, T): a signed rotation line cannot be made
// out of an ordinary checkpoint (a file cut back to a checkpoint does not pass as a rotated
// file under the key).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/hmac.h"

namespace ward::audit {

// prev_hash of the first line of every file.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The position of a chain: the seq and hash of its last line.
struct ChainHead {
  uint64_t seq = 0;
  std::string hash = std::string(kGenesisHash);
  bool last_is_checkpoint = false;  // the last line is a checkpoint or rotation line
};

// Lower-case hex SHA-256 of one line (without its newline).
std::string LineHash(std::string_view line);

// Returns `record_json` (a serialized JSON object, "{...}") with ,"seq":seq,"prev_hash":...
// appended inside its closing brace. REQUIRES: record_json is a non-empty JSON object.
std::string ChainLine(std::string_view record_json, uint64_t seq, std::string_view prev_hash);

// A record on its way into the chain, hashed as far as it can be before the chain head is
// known. A record's line is its bytes up to the closing brace, then
// ,"seq":N,"prev_hash":"H"} (ChainLine): only that suffix (about 100 bytes) depends on the
// head. The constructor hashes the rest, so that AppendLine, which a device runs under its
// write lock, hashes only the suffix.
//
// Borrows `record_json`, which must outlive the object. Not thread-safe; movable.
class PrehashedRecord {
 public:
  // REQUIRES: record_json is a non-empty JSON object ("{...}").
  explicit PrehashedRecord(std::string_view record_json);

  // Appends ChainLine(record_json, seq, prev_hash) and a newline to `out`, and returns the
  // LineHash of that line. Spends the object: call once, on an rvalue.
  std::string AppendLine(uint64_t seq, std::string_view prev_hash, std::string& out) &&;

  // At least the number of bytes AppendLine appends (with a prev_hash of 64 hex digits, as
  // every chain hash is).
  size_t LineSizeBound() const;

 private:
  std::string_view body_;             // the record without its closing brace
  bool empty_object_;                 // "{}": no comma before "seq"
  crypto::Sha256Stream prefix_hash_;  // has absorbed body_ and the comma
};

// The bytes a checkpoint signature covers.
std::string CheckpointMessage(uint64_t seq, std::string_view hash, std::string_view time);

// A checkpoint line (no newline).
std::string CheckpointLine(uint64_t seq, std::string_view hash, std::string_view time,
                           std::string_view sig_hex);

// The bytes a rotation line's signature covers (distinct from CheckpointMessage).
std::string RotationMessage(uint64_t seq, std::string_view hash, std::string_view time);

// A rotation line (no newline): the first line of a file that continues the chain of a
// rotated file.
std::string RotationLine(uint64_t seq, std::string_view hash, std::string_view time,
                         std::string_view sig_hex);

// The chain head after `line`, the last complete line of an existing file.
// Errors: kDataLoss if the line is not a record or checkpoint with a seq.
absl::StatusOr<ChainHead> HeadAfter(std::string_view line);

// What `ward audit verify` checks.
struct VerifyOptions {
  // Hex Ed25519 public key of the device's checkpoint key; "" = check the hash chain only.
  std::string public_key_hex;
  // Accept records after the last checkpoint (a file still being written).
  bool allow_open_tail = false;
};

enum class ProblemKind {
  kModified,      // a line's bytes changed
  kRemoved,       // records are missing
  kInserted,      // a line that was not written by the device
  kReordered,     // records out of order
  kTruncated,     // the file ends inside a line
  kBadSignature,  // a checkpoint whose signature does not verify under the key
  kOpenTail,      // records after the last checkpoint: truncated, or not closed cleanly
};

std::string_view ProblemKindName(ProblemKind kind);

struct VerifyProblem {
  ProblemKind kind;
  size_t line = 0;      // 1-based line number the problem is reported at
  std::string message;  // for operators; names lines and seqs only
};

struct VerifyReport {
  size_t lines = 0;
  size_t records = 0;
  size_t checkpoints = 0;
  size_t checkpoints_verified = 0;       // 0 when no key was given (rotation lines count)
  size_t last_checkpoint_line = 0;       // 0 = none
  std::optional<VerifyProblem> problem;  // the first problem found; nullopt = the file is intact
  // Where the file's chain starts and ends, to check that rotated files follow each other
  // (FollowsFrom). A file that starts with a rotation line starts at that line's seq and hash;
  // any other file at seq 1 and kGenesisHash. Valid only if `problem` is empty.
  bool starts_with_rotation = false;
  uint64_t first_seq = 0;
  std::string first_link;  // the hash the first line links to
  uint64_t last_seq = 0;
  std::string last_hash;  // hash of the last line
};

// True if `later` is the file the device started when `earlier` was rotated away: `later`
// starts with a rotation line linking to the last line of `earlier`. Both reports must be
// free of problems.
bool FollowsFrom(const VerifyReport& earlier, const VerifyReport& later);

// Verifies the contents of one audit file on its own. A file may start with a rotation line
// (its chain then starts there; with a key, the rotation signature is checked); use
// FollowsFrom to check that rotated files link up. Never fails: problems are in the report.
// Errors: kInvalidArgument only if options.public_key_hex is not a 32-byte hex key.
absl::StatusOr<VerifyReport> VerifyLog(std::string_view contents, const VerifyOptions& options);

// Reads `path` and verifies it. Errors: as VerifyLog; kNotFound / kPermissionDenied /
// kInternal if the file cannot be read.
absl::StatusOr<VerifyReport> VerifyFile(const std::string& path, const VerifyOptions& options);

}  // namespace ward::audit
