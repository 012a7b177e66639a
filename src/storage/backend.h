#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ward::storage {

// A stored value and the revision of the commit that last wrote it.
struct Record {
  std::string value;
  uint64_t revision = 0;
};

// One operation of an atomic commit.
struct Op {
  enum class Kind {
    kPut,     // set `key` to `value`
    kDelete,  // remove `key` (no error if absent)
    kCheck,   // abort the commit unless `key`'s revision equals `revision` (0: key is absent)
  };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  uint64_t revision = 0;

  static Op Put(std::string key, std::string value) {
    return Op{Kind::kPut, std::move(key), std::move(value), 0};
  }
  static Op Delete(std::string key) { return Op{Kind::kDelete, std::move(key), {}, 0}; }
  static Op Check(std::string key, uint64_t revision) {
    return Op{Kind::kCheck, std::move(key), {}, revision};
  }
};

// What a commit changed, for change listeners.
struct Change {
  uint64_t revision = 0;          // the commit's revision
  std::vector<std::string> keys;  // keys put or deleted by the commit
};

// A page of keys from List.
struct ListPage {
  std::vector<std::string> keys;  // full keys, ascending byte order
  bool more = false;              // true if keys beyond this page exist
};

// One record of a ScanPage: a key with its value and revision.
struct KeyedRecord {
  std::string key;
  std::string value;
  uint64_t revision = 0;
};

// A page of records from Scan.
struct ScanPage {
  std::vector<KeyedRecord> records;  // ascending byte order of key
  bool more = false;                 // true if records beyond this page exist
};

// A durable, ordered key-value store with atomic multi-key commits.
//
// Keys are byte strings compared bytewise; values are opaque bytes (the barrier stores
// ciphertext here). Revisions are a global counter: each successful commit gets the next one,
// and every key it writes carries it. This maps directly onto SQLite and PostgreSQL (a
// revision column and a sequence), so nothing above this interface changes with the backend.
//
// Thread-safe. Every method may block on I/O; call from worker threads, not event loops.
class Backend {
 public:
  virtual ~Backend() = default;

  // Returns the record stored at `key`.
  // Errors: kNotFound if absent; kUnavailable/kInternal on I/O failure.
  virtual absl::StatusOr<Record> Get(std::string_view key) = 0;

  // Applies `ops` atomically and durably: when this returns OK the commit survives a crash
  // (kill -9, power loss within what fsync promises). Checks are evaluated first, against the
  // state before the commit. Returns the commit's revision.
  // Errors: kAborted if a kCheck did not match (nothing written); kInvalidArgument for an
  //         empty key; kUnavailable/kInternal on I/O failure (nothing written).
  virtual absl::StatusOr<uint64_t> Commit(std::vector<Op> ops) = 0;

  // Lists keys starting with `prefix`, in ascending order, strictly after `after` (if not
  // empty), at most `limit` of them (0: no limit).
  // Errors: kUnavailable/kInternal on I/O failure.
  virtual absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                        size_t limit) = 0;

  // Returns the records (key, value, revision) whose keys start with `prefix`, in ascending
  // key order, strictly after `after` (if not empty), at most `limit` of them (0: no limit):
  // List and Get in one call, for loading many records at once (one query instead of one per
  // key). This default implementation is List followed by a Get per key (a key deleted in
  // between is left out); backends override it with a single read.
  // Errors: kUnavailable/kInternal on I/O failure.
  virtual absl::StatusOr<ScanPage> Scan(std::string_view prefix, std::string_view after,
                                        size_t limit) {
    absl::StatusOr<ListPage> keys = List(prefix, after, limit);
    if (!keys.ok()) return keys.status();
    ScanPage page;
    page.more = keys->more;
    page.records.reserve(keys->keys.size());
    for (std::string& key : keys->keys) {
      absl::StatusOr<Record> record = Get(key);
      if (absl::IsNotFound(record.status())) continue;
      if (!record.ok()) return record.status();
      page.records.push_back(
          KeyedRecord{std::move(key), std::move(record->value), record->revision});
    }
    return page;
  }

  // Registers `listener`, called after every successful commit (from the committing thread,
  // with no storage lock held) with what changed. Returns an id for RemoveListener.
  virtual uint64_t AddListener(std::function<void(const Change&)> listener) = 0;
  virtual void RemoveListener(uint64_t id) = 0;

  // Convenience wrappers over Commit.
  absl::StatusOr<uint64_t> Put(std::string key, std::string value) {
    std::vector<Op> ops;
    ops.push_back(Op::Put(std::move(key), std::move(value)));
    return Commit(std::move(ops));
  }
  absl::StatusOr<uint64_t> Delete(std::string key) {
    std::vector<Op> ops;
    ops.push_back(Op::Delete(std::move(key)));
    return Commit(std::move(ops));
  }
};

}  // namespace ward::storage
