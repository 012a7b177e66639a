#include "auth/policy.h"

#include <algorithm>
#include <cctype>
#include <string>

#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace ward::auth {
namespace {

// ---------------------------------------------------------------------------------------------
// A small syntax tree shared by the HCL and JSON front ends: HCL `path "a" { ... }` becomes an
// item with keys ["path", "a"] and an object value; JSON {"path": {"a": {...}}} becomes an item
// with keys ["path"] whose object value holds an item with keys ["a"].

struct Node;
struct Item;

struct Node {
  enum class Kind { kString, kNumber, kBool, kList, kObject };
  Kind kind = Kind::kString;
  std::string text;  // kString, kNumber (as written), kBool ("true"/"false")
  std::vector<Node> list;
  std::vector<Item> items;
  int line = 0;
};

struct Item {
  std::vector<std::string> keys;
  Node value;
  int line = 0;
};

absl::Status SyntaxError(int line, int column, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("policy parse error at line ", line, ", column ",
                                                 column, ": ", core::ToAbsl(what)));
}

// ---------------------------------------------------------------------------------------------
// HCL tokenizer.

enum class Tok { kString, kIdent, kNumber, kEquals, kLBrace, kRBrace, kLBracket, kRBracket, kComma, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;
  int line = 1;
  int column = 1;
};

std::string Describe(const Token& t) {
  switch (t.kind) {
    case Tok::kString:
      return absl::StrCat("string \"", t.text, "\"");
    case Tok::kIdent:
      return absl::StrCat("'", t.text, "'");
    case Tok::kNumber:
      return absl::StrCat("number ", t.text);
    case Tok::kEquals:
      return "'='";
    case Tok::kLBrace:
      return "'{'";
    case Tok::kRBrace:
      return "'}'";
    case Tok::kLBracket:
      return "'['";
    case Tok::kRBracket:
      return "']'";
    case Tok::kComma:
      return "','";
    case Tok::kEnd:
      return "end of input";
  }
  return "?";
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  // The next token. Errors: kInvalidArgument (SyntaxError) for bad characters, unterminated
  // strings or comments, and bad escapes.
  absl::StatusOr<Token> Next() {
    WARD_RETURN_IF_ERROR(SkipSpaceAndComments());
    Token t;
    t.line = line_;
    t.column = column_;
    if (pos_ >= text_.size()) return t;
    char c = text_[pos_];
    auto single = [&](Tok kind) {
      Advance();
      t.kind = kind;
      t.text = std::string(1, c);
      return t;
    };
    switch (c) {
      case '=':
      case ':':  // HCL accepts JSON-style key: value too
        return single(Tok::kEquals);
      case '{':
        return single(Tok::kLBrace);
      case '}':
        return single(Tok::kRBrace);
      case '[':
        return single(Tok::kLBracket);
      case ']':
        return single(Tok::kRBracket);
      case ',':
        return single(Tok::kComma);
      case '"':
        return String(t);
      default:
        break;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      t.kind = Tok::kIdent;
      while (pos_ < text_.size()) {
        char d = text_[pos_];
        if (!std::isalnum(static_cast<unsigned char>(d)) && d != '_' && d != '-' && d != '.') break;
        t.text.push_back(d);
        Advance();
      }
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-') {
      t.kind = Tok::kNumber;
      t.text.push_back(c);
      Advance();
      while (pos_ < text_.size() &&
             (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.')) {
        t.text.push_back(text_[pos_]);
        Advance();
      }
      if (t.text == "-") return SyntaxError(t.line, t.column, "unexpected character '-'");
      return t;
    }
    if (std::isprint(static_cast<unsigned char>(c))) {
      return SyntaxError(line_, column_, absl::StrCat("unexpected character '", std::string(1, c), "'"));
    }
    return SyntaxError(line_, column_,
                       absl::StrCat("unexpected byte 0x", absl::Hex(static_cast<unsigned char>(c))));
  }

 private:
  void Advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++pos_;
  }

  absl::Status SkipSpaceAndComments() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        Advance();
      } else if (c == '#' || (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/')) {
        while (pos_ < text_.size() && text_[pos_] != '\n') Advance();
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '*') {
        int line = line_, column = column_;
        Advance();
        Advance();
        while (true) {
          if (pos_ + 1 >= text_.size()) return SyntaxError(line, column, "unterminated comment");
          if (text_[pos_] == '*' && text_[pos_ + 1] == '/') break;
          Advance();
        }
        Advance();
        Advance();
      } else if (c == '/') {
        return SyntaxError(line_, column_, "unexpected character '/'");
      } else {
        break;
      }
    }
    return absl::OkStatus();
  }

  // Appends the UTF-8 encoding of `cp` to `out`.
  static void AppendUtf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  absl::StatusOr<Token> String(Token t) {
    t.kind = Tok::kString;
    Advance();  // opening quote
    while (true) {
      if (pos_ >= text_.size() || text_[pos_] == '\n') {
        return SyntaxError(t.line, t.column, "unterminated string");
      }
      char c = text_[pos_];
      if (c == '"') {
        Advance();
        return t;
      }
      if (c != '\\') {
        t.text.push_back(c);
        Advance();
        continue;
      }
      int line = line_, column = column_;
      Advance();
      if (pos_ >= text_.size()) return SyntaxError(t.line, t.column, "unterminated string");
      char e = text_[pos_];
      Advance();
      switch (e) {
        case '"':
        case '\\':
        case '/':
          t.text.push_back(e);
          break;
        case 'n':
          t.text.push_back('\n');
          break;
        case 't':
          t.text.push_back('\t');
          break;
        case 'r':
          t.text.push_back('\r');
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) return SyntaxError(line, column, "invalid escape \\u");
          uint32_t cp = 0;
          for (int i = 0; i < 4; ++i) {
            char h = text_[pos_];
            if (!std::isxdigit(static_cast<unsigned char>(h))) {
              return SyntaxError(line, column, "invalid escape \\u");
            }
            cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                    ? h - '0'
                                                    : (std::tolower(h) - 'a' + 10));
            Advance();
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) {
            return SyntaxError(line, column, "invalid escape: surrogate code point");
          }
          AppendUtf8(cp, t.text);
          break;
        }
        default:
          return SyntaxError(line, column, absl::StrCat("invalid escape \\", std::string(1, e)));
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
};

// ---------------------------------------------------------------------------------------------
// HCL parser (the subset Vault policies use):
//   body   := (item ','?)*
//   item   := key+ ( '=' value | object )        key := IDENT | STRING
//   value  := STRING | NUMBER | 'true' | 'false' | list | object
//   list   := '[' (value (',' value)* ','?)? ']'
//   object := '{' body '}'

class Parser {
 public:
  explicit Parser(std::string_view text) : lexer_(text) {}

  absl::StatusOr<std::vector<Item>> File() {
    WARD_RETURN_IF_ERROR(Shift());
    std::vector<Item> items;
    WARD_RETURN_IF_ERROR(Body(Tok::kEnd, items));
    return items;
  }

 private:
  absl::Status Shift() {
    WARD_ASSIGN_OR_RETURN(tok_, lexer_.Next());
    return absl::OkStatus();
  }

  absl::Status Expected(std::string_view what) const {
    return SyntaxError(tok_.line, tok_.column,
                       absl::StrCat("expected ", core::ToAbsl(what), ", found ", Describe(tok_)));
  }

  // Items up to (not including) `end`.
  absl::Status Body(Tok end, std::vector<Item>& items) {
    while (tok_.kind != end) {
      if (tok_.kind != Tok::kIdent && tok_.kind != Tok::kString) {
        return Expected(end == Tok::kEnd ? "a key" : "a key or '}'");
      }
      Item item;
      item.line = tok_.line;
      while (tok_.kind == Tok::kIdent || tok_.kind == Tok::kString) {
        item.keys.push_back(tok_.text);
        WARD_RETURN_IF_ERROR(Shift());
      }
      if (tok_.kind == Tok::kEquals) {
        WARD_RETURN_IF_ERROR(Shift());
        WARD_RETURN_IF_ERROR(Value(item.value));
      } else if (tok_.kind == Tok::kLBrace) {
        WARD_RETURN_IF_ERROR(Value(item.value));
      } else {
        return Expected(item.keys.size() == 1 ? "'='" : "'=' or '{'");
      }
      items.push_back(std::move(item));
      if (tok_.kind == Tok::kComma) WARD_RETURN_IF_ERROR(Shift());
    }
    return absl::OkStatus();
  }

  absl::Status Value(Node& node) {
    node.line = tok_.line;
    switch (tok_.kind) {
      case Tok::kString:
        node.kind = Node::Kind::kString;
        node.text = tok_.text;
        return Shift();
      case Tok::kNumber:
        node.kind = Node::Kind::kNumber;
        node.text = tok_.text;
        return Shift();
      case Tok::kIdent:
        if (tok_.text != "true" && tok_.text != "false") return Expected("a value");
        node.kind = Node::Kind::kBool;
        node.text = tok_.text;
        return Shift();
      case Tok::kLBracket: {
        WARD_RETURN_IF_ERROR(Enter());
        node.kind = Node::Kind::kList;
        WARD_RETURN_IF_ERROR(Shift());
        while (tok_.kind != Tok::kRBracket) {
          Node element;
          WARD_RETURN_IF_ERROR(Value(element));
          node.list.push_back(std::move(element));
          if (tok_.kind == Tok::kComma) {
            WARD_RETURN_IF_ERROR(Shift());
          } else if (tok_.kind != Tok::kRBracket) {
            return Expected("',' or ']'");
          }
        }
        --depth_;
        return Shift();
      }
      case Tok::kLBrace: {
        WARD_RETURN_IF_ERROR(Enter());
        node.kind = Node::Kind::kObject;
        WARD_RETURN_IF_ERROR(Shift());
        WARD_RETURN_IF_ERROR(Body(Tok::kRBrace, node.items));
        --depth_;
        return Shift();
      }
      default:
        return Expected("a value");
    }
  }

  // Counts one more level of '[' or '{' nesting. The parser recurses per level, so without a
  // bound a policy of a few hundred thousand '[' overflows the stack. Real policies nest three
  // levels; the JSON form has Boost.JSON's limit of 32.
  // Errors: kInvalidArgument (SyntaxError) past kMaxDepth levels.
  absl::Status Enter() {
    if (++depth_ > kMaxDepth) {
      return SyntaxError(tok_.line, tok_.column,
                         absl::StrCat("nested deeper than ", kMaxDepth, " levels"));
    }
    return absl::OkStatus();
  }

  static constexpr int kMaxDepth = 32;
  Lexer lexer_;
  Token tok_;
  int depth_ = 0;  // '[' and '{' levels open at tok_
};

// ---------------------------------------------------------------------------------------------
// JSON front end: Boost.JSON, with the error offset turned into line and column.

Node FromJson(const boost::json::value& v, int line) {
  Node n;
  n.line = line;
  switch (v.kind()) {
    case boost::json::kind::string:
      n.kind = Node::Kind::kString;
      n.text = std::string(v.get_string());
      break;
    case boost::json::kind::bool_:
      n.kind = Node::Kind::kBool;
      n.text = v.get_bool() ? "true" : "false";
      break;
    case boost::json::kind::array:
      n.kind = Node::Kind::kList;
      for (const auto& e : v.get_array()) n.list.push_back(FromJson(e, line));
      break;
    case boost::json::kind::object:
      n.kind = Node::Kind::kObject;
      for (const auto& kv : v.get_object()) {
        Item item;
        item.keys.emplace_back(kv.key());
        item.value = FromJson(kv.value(), line);
        item.line = line;
        n.items.push_back(std::move(item));
      }
      break;
    case boost::json::kind::null:
      n.kind = Node::Kind::kList;  // null reads as empty
      break;
    default:
      n.kind = Node::Kind::kNumber;
      n.text = boost::json::serialize(v);
      break;
  }
  return n;
}

absl::StatusOr<std::vector<Item>> ParseJson(std::string_view text) {
  boost::json::stream_parser parser;
  boost::system::error_code ec;
  size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    int line = 1, column = 1;
    for (size_t i = 0; i < consumed && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return SyntaxError(line, column, ec.message());
  }
  Node root = FromJson(parser.release(), 1);
  if (root.kind != Node::Kind::kObject) return SyntaxError(1, 1, "expected a JSON object");
  return std::move(root.items);
}

// ---------------------------------------------------------------------------------------------
// Interpretation of the tree as a policy.

struct CapabilityEntry {
  std::string_view name;
  CapabilitySet bit;
};

constexpr CapabilityEntry kCapabilityNames[] = {
    {"create", CapabilityBit(Capability::kCreate)}, {"delete", CapabilityBit(Capability::kDelete)},
    {"deny", kDenyBit},                             {"list", CapabilityBit(Capability::kList)},
    {"patch", CapabilityBit(Capability::kPatch)},   {"read", CapabilityBit(Capability::kRead)},
    {"subscribe", kSubscribeBit},                   {"sudo", CapabilityBit(Capability::kSudo)},
    {"update", CapabilityBit(Capability::kUpdate)},
};

absl::Status StringList(const Node& node, std::string_view path, std::string_view key,
                        std::vector<std::string>& out) {
  if (node.kind == Node::Kind::kString) {
    out.push_back(node.text);
    return absl::OkStatus();
  }
  if (node.kind != Node::Kind::kList) {
    return absl::InvalidArgumentError(absl::StrCat("path \"", core::ToAbsl(path), "\": ",
                                                   core::ToAbsl(key), " must be a list of strings"));
  }
  for (const Node& e : node.list) {
    if (e.kind != Node::Kind::kString) {
      return absl::InvalidArgumentError(absl::StrCat(
          "path \"", core::ToAbsl(path), "\": ", core::ToAbsl(key), " must be a list of strings"));
    }
    out.push_back(e.text);
  }
  return absl::OkStatus();
}

absl::StatusOr<PathRule> PathBody(std::string path, const Node& body) {
  if (body.kind != Node::Kind::kObject) {
    return absl::InvalidArgumentError(
        absl::StrCat("path \"", path, "\": expected a block on line ", body.line));
  }
  std::vector<std::string> capabilities;
  std::string shorthand;
  for (const Item& item : body.items) {
    if (item.keys.size() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid key \"", item.keys[0], "\" on line ", item.line));
    }
    const std::string& key = item.keys[0];
    if (key == "capabilities") {
      WARD_RETURN_IF_ERROR(StringList(item.value, path, key, capabilities));
    } else if (key == "policy") {
      if (item.value.kind != Node::Kind::kString) {
        return absl::InvalidArgumentError(
            absl::StrCat("path \"", path, "\": policy must be a string"));
      }
      shorthand = item.value.text;
    } else if (key == "comment") {
      // Free text; ignored.
    } else if (key == "allowed_parameters" || key == "denied_parameters" ||
               key == "required_parameters" || key == "min_wrapping_ttl" ||
               key == "max_wrapping_ttl" || key == "control_group" || key == "mfa_methods" ||
               key == "subscribe_event_types") {
      return absl::InvalidArgumentError(
          absl::StrCat("path \"", path, "\": ", key, " is not supported by Ward"));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid key \"", key, "\" on line ", item.line));
    }
  }
  PathRule rule;
  if (!shorthand.empty()) {
    constexpr CapabilitySet kRead = CapabilityBit(Capability::kRead) | CapabilityBit(Capability::kList);
    constexpr CapabilitySet kWrite = kRead | CapabilityBit(Capability::kCreate) |
                                     CapabilityBit(Capability::kUpdate) |
                                     CapabilityBit(Capability::kDelete);
    if (shorthand == "deny") {
      rule.capabilities = kDenyBit;
    } else if (shorthand == "read") {
      rule.capabilities = kRead;
    } else if (shorthand == "write") {
      rule.capabilities = kWrite;
    } else if (shorthand == "sudo") {
      rule.capabilities = kWrite | CapabilityBit(Capability::kSudo);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("path \"", path, "\": invalid policy \"", shorthand, "\""));
    }
  }
  for (const std::string& name : capabilities) {
    const auto* found = std::find_if(std::begin(kCapabilityNames), std::end(kCapabilityNames),
                                     [&](const CapabilityEntry& e) { return e.name == name; });
    if (found == std::end(kCapabilityNames)) {
      return absl::InvalidArgumentError(
          absl::StrCat("path \"", path, "\": invalid capability \"", name, "\""));
    }
    rule.capabilities |= found->bit;
  }
  if (rule.capabilities & kDenyBit) rule.capabilities = kDenyBit;
  if (absl::StrContains(path, "+*")) {
    return absl::InvalidArgumentError(
        absl::StrCat("path \"", path, "\": invalid use of wildcards ('+*' is forbidden)"));
  }
  if (!path.empty() && path.front() == '/') path.erase(0, 1);
  rule.templated = absl::StrContains(path, "{{");
  rule.path = std::move(path);
  return rule;
}

absl::Status PathItems(const Item& item, std::vector<PathRule>& rules) {
  if (item.keys.size() == 2) {
    WARD_ASSIGN_OR_RETURN(PathRule rule, PathBody(item.keys[1], item.value));
    rules.push_back(std::move(rule));
    return absl::OkStatus();
  }
  if (item.keys.size() > 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid key \"", item.keys[2], "\" on line ", item.line));
  }
  // path = { "a" = {...}, ... } (the JSON form), or a list of such objects.
  std::vector<const Node*> objects;
  if (item.value.kind == Node::Kind::kObject) {
    objects.push_back(&item.value);
  } else if (item.value.kind == Node::Kind::kList) {
    for (const Node& e : item.value.list) objects.push_back(&e);
  }
  if (objects.empty() && item.value.kind != Node::Kind::kList) {
    return absl::InvalidArgumentError(
        absl::StrCat("path must be an object of path blocks (line ", item.line, ")"));
  }
  for (const Node* object : objects) {
    if (object->kind != Node::Kind::kObject) {
      return absl::InvalidArgumentError(
          absl::StrCat("path must be an object of path blocks (line ", object->line, ")"));
    }
    for (const Item& inner : object->items) {
      if (inner.keys.size() != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid key \"", inner.keys[1], "\" on line ", inner.line));
      }
      WARD_ASSIGN_OR_RETURN(PathRule rule, PathBody(inner.keys[0], inner.value));
      rules.push_back(std::move(rule));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view CapabilityName(Capability capability) {
  switch (capability) {
    case Capability::kCreate:
      return "create";
    case Capability::kRead:
      return "read";
    case Capability::kUpdate:
      return "update";
    case Capability::kPatch:
      return "patch";
    case Capability::kDelete:
      return "delete";
    case Capability::kList:
      return "list";
    case Capability::kSudo:
      return "sudo";
  }
  return "";
}

std::vector<std::string> CapabilityNames(CapabilitySet set) {
  std::vector<std::string> out;
  if (!(set & kDenyBit)) {
    for (const CapabilityEntry& e : kCapabilityNames) {  // already sorted by name
      if (e.bit != kDenyBit && (set & e.bit)) out.emplace_back(e.name);
    }
  }
  if (out.empty()) out.emplace_back("deny");
  return out;
}

absl::StatusOr<std::vector<PathRule>> ParsePolicy(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  std::vector<Item> items;
  if (first != std::string_view::npos && text[first] == '{') {
    WARD_ASSIGN_OR_RETURN(items, ParseJson(text));
  } else {
    Parser parser(text);
    WARD_ASSIGN_OR_RETURN(items, parser.File());
  }
  std::vector<PathRule> rules;
  for (const Item& item : items) {
    const std::string& key = item.keys[0];
    if (key == "path") {
      WARD_RETURN_IF_ERROR(PathItems(item, rules));
    } else if (key == "name") {
      // Vault allows (and ignores) a name; the policy's name comes from its route.
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid key \"", key, "\" on line ", item.line));
    }
  }
  return rules;
}

absl::StatusOr<std::shared_ptr<const CompiledPolicy>> CompiledPolicy::Compile(std::string name,
                                                                              std::string text) {
  WARD_ASSIGN_OR_RETURN(std::vector<PathRule> rules, ParsePolicy(text));
  std::shared_ptr<CompiledPolicy> p(new CompiledPolicy(std::move(name), std::move(text)));
  auto merge_into = [](absl::flat_hash_map<std::string, CapabilitySet>& map, std::string key,
                       CapabilitySet caps) {
    auto [it, inserted] = map.try_emplace(std::move(key), caps);
    if (!inserted) it->second = MergeCapabilities(it->second, caps);
  };
  for (PathRule& rule : rules) {
    if (rule.templated) continue;
    const std::string& path = rule.path;
    // Vault: a "+" segment makes a segment-wildcard path (a trailing '*' then stays part of
    // it); otherwise a trailing '*' makes a prefix glob.
    bool segment_wildcards = path == "+" || absl::StrContains(path, "/+") ||
                             absl::StartsWith(path, "+/");
    if (segment_wildcards) {
      auto existing = std::find_if(p->wildcard_.begin(), p->wildcard_.end(),
                                   [&](const WildcardRule& w) { return w.pattern == path; });
      if (existing != p->wildcard_.end()) {
        existing->capabilities = MergeCapabilities(existing->capabilities, rule.capabilities);
        continue;
      }
      WildcardRule w;
      w.pattern = path;
      w.is_prefix = !path.empty() && path.back() == '*';
      w.wc_path = w.is_prefix ? path.substr(0, path.size() - 1) : path;
      for (absl::string_view s : absl::StrSplit(w.wc_path, '/')) {
        w.segments.emplace_back(s);
        if (s == "+") ++w.wildcards;
      }
      size_t plus = path.find('+');
      w.first_wildcard = plus == std::string::npos ? path.size() : plus;
      w.capabilities = rule.capabilities;
      p->wildcard_.push_back(std::move(w));
    } else if (!path.empty() && path.back() == '*') {
      merge_into(p->prefix_, path.substr(0, path.size() - 1), rule.capabilities);
    } else {
      merge_into(p->exact_, path, rule.capabilities);
    }
  }
  for (const auto& [prefix, caps] : p->prefix_) p->prefix_lengths_.push_back(prefix.size());
  std::sort(p->prefix_lengths_.begin(), p->prefix_lengths_.end(), std::greater<>());
  p->prefix_lengths_.erase(std::unique(p->prefix_lengths_.begin(), p->prefix_lengths_.end()),
                           p->prefix_lengths_.end());
  return std::shared_ptr<const CompiledPolicy>(std::move(p));
}

std::optional<CapabilitySet> CompiledPolicy::Exact(std::string_view path) const {
  auto it = exact_.find(core::ToAbsl(path));
  if (it == exact_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::pair<size_t, CapabilitySet>> CompiledPolicy::LongestPrefix(
    std::string_view path) const {
  for (size_t length : prefix_lengths_) {
    if (length > path.size()) continue;
    auto it = prefix_.find(core::ToAbsl(path.substr(0, length)));
    if (it != prefix_.end()) return std::make_pair(length, it->second);
  }
  return std::nullopt;
}

const CompiledPolicy* PolicySet::Find(std::string_view name) const {
  auto it = policies.find(core::ToAbsl(name));
  return it == policies.end() ? nullptr : it->second.get();
}

}  // namespace ward::auth
