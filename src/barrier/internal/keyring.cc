#include "barrier/internal/keyring.h"

#include <boost/json.hpp>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace ward::barrier::internal {
namespace {

constexpr int64_t kKeyringVersion = 1;
constexpr size_t kKeySize = 32;

// Where Boost.JSON values and parser scratch space that hold key material live: a monotonic
// arena (freed all at once, which also sidesteps Boost.JSON 1.81 freeing half-parsed keys
// with the wrong alignment when a document is truncated) whose blocks are zeroed before they
// go back to the heap.
class ZeroingArena {
 public:
  ZeroingArena() : arena_(1024, boost::json::storage_ptr(&zeroing_)) {}
  boost::json::storage_ptr storage() { return boost::json::storage_ptr(&arena_); }

 private:
  class ZeroingResource final : public boost::json::memory_resource {
   private:
    void* do_allocate(std::size_t bytes, std::size_t align) override {
      return ::operator new(bytes, std::align_val_t(align));
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t align) override {
      core::SecureZero(p, bytes);
      ::operator delete(p, std::align_val_t(align));
    }
    bool do_is_equal(const boost::json::memory_resource& other) const noexcept override {
      return this == &other;
    }
  };

  ZeroingResource zeroing_;
  boost::json::monotonic_resource arena_;  // after zeroing_: released into it first
};

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError("keyring is corrupt: " + std::string(what));
}

std::optional<int64_t> IntField(const boost::json::object& object, std::string_view name) {
  const boost::json::value* v =
      object.if_contains(boost::json::string_view(name.data(), name.size()));
  if (v == nullptr) return std::nullopt;
  if (const int64_t* i = v->if_int64()) return *i;
  if (const uint64_t* u = v->if_uint64()) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
  }
  return std::nullopt;
}

const boost::json::string* StringField(const boost::json::object& object, std::string_view name) {
  const boost::json::value* v =
      object.if_contains(boost::json::string_view(name.data(), name.size()));
  return v == nullptr ? nullptr : v->if_string();
}

}  // namespace

const KeyringTerm* Keyring::Find(uint32_t term) const {
  auto it = terms.find(term);
  return it == terms.end() ? nullptr : &it->second;
}

Keyring Keyring::Copy() const {
  Keyring out;
  out.active_term = active_term;
  for (const auto& [term, entry] : terms) {
    out.terms.emplace(term, KeyringTerm{entry.key.Copy(), entry.install_time});
  }
  return out;
}

core::SecureBytes EncodeKeyring(const Keyring& keyring) {
  ZeroingArena arena;
  boost::json::storage_ptr storage = arena.storage();
  boost::json::value root(boost::json::object_kind, storage);
  boost::json::object& object = root.get_object();
  object["version"] = kKeyringVersion;
  object["active_term"] = keyring.active_term;
  boost::json::array& terms = object["terms"].emplace_array();
  for (const auto& [term, entry] : keyring.terms) {
    std::string key_base64;
    absl::Base64Escape(core::ToAbsl(entry.key.view()), &key_base64);
    boost::json::object item(storage);
    item["term"] = term;
    item["key"] = boost::json::string_view(key_base64.data(), key_base64.size());
    item["install_time"] = core::FormatRfc3339Nanos(entry.install_time);
    core::SecureZero(key_base64);
    terms.push_back(std::move(item));
  }

  // Serialise straight into the self-zeroing buffer.
  boost::json::serializer serializer;
  serializer.reset(&root);
  core::SecureBytes out(256 + 160 * keyring.terms.size());
  size_t length = 0;
  while (!serializer.done()) {
    if (length == out.size()) out.resize(out.size() * 2);
    boost::json::string_view chunk =
        serializer.read(reinterpret_cast<char*>(out.data()) + length, out.size() - length);
    length += chunk.size();
  }
  out.resize(length);
  return out;
}

absl::StatusOr<Keyring> DecodeKeyring(std::string_view json) {
  ZeroingArena arena;
  boost::json::storage_ptr storage = arena.storage();
  // The parser's scratch space: this buffer first, then the arena; both are zeroed.
  unsigned char scratch[2048];
  boost::json::value root(storage);  // same resource as the parser's result: moves, no copy
  {
    boost::json::parser parser(storage, boost::json::parse_options(), scratch, sizeof(scratch));
    parser.reset(storage);
    boost::system::error_code ec;
    parser.write(json.data(), json.size(), ec);  // the whole text: incomplete JSON is an error
    if (ec) {
      core::SecureZero(scratch, sizeof(scratch));
      return Corrupt("not valid JSON");
    }
    root = parser.release();
  }
  core::SecureZero(scratch, sizeof(scratch));

  const boost::json::object* object = root.if_object();
  if (object == nullptr) return Corrupt("not a JSON object");
  if (IntField(*object, "version") != kKeyringVersion) return Corrupt("unknown version");
  std::optional<int64_t> active = IntField(*object, "active_term");
  const boost::json::value* terms_value = object->if_contains("terms");
  const boost::json::array* terms = terms_value == nullptr ? nullptr : terms_value->if_array();
  if (!active.has_value() || terms == nullptr) return Corrupt("missing active_term or terms");

  Keyring keyring;
  for (const boost::json::value& item_value : *terms) {
    const boost::json::object* item = item_value.if_object();
    if (item == nullptr) return Corrupt("term is not an object");
    std::optional<int64_t> term = IntField(*item, "term");
    const boost::json::string* key_base64 = StringField(*item, "key");
    const boost::json::string* install_text = StringField(*item, "install_time");
    if (!term.has_value() || *term <= 0 || *term > std::numeric_limits<uint32_t>::max()) {
      return Corrupt("term number out of range");
    }
    if (key_base64 == nullptr || install_text == nullptr) return Corrupt("term lacks a field");

    std::string key_bytes;
    bool decoded =
        absl::Base64Unescape(absl::string_view(key_base64->data(), key_base64->size()), &key_bytes);
    core::SecureBytes key(key_bytes);
    core::SecureZero(key_bytes);
    if (!decoded || key.size() != kKeySize) return Corrupt("key is not 32 bytes of base64");

    absl::Time install_time;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full,
                         absl::string_view(install_text->data(), install_text->size()),
                         &install_time, &error)) {
      return Corrupt("unparsable install_time");
    }
    bool inserted =
        keyring.terms
            .emplace(static_cast<uint32_t>(*term), KeyringTerm{std::move(key), install_time})
            .second;
    if (!inserted) return Corrupt("duplicated term");
  }
  if (*active <= 0 || *active > std::numeric_limits<uint32_t>::max() ||
      keyring.Find(static_cast<uint32_t>(*active)) == nullptr) {
    return Corrupt("active term is not in the keyring");
  }
  keyring.active_term = static_cast<uint32_t>(*active);
  return keyring;
}

}  // namespace ward::barrier::internal
