#include "secrets/internal/kv_json.h"

#include <string>

#include "gtest/gtest.h"

namespace ward::secrets::internal {
namespace {

namespace json = boost::json;

std::string Canonical(std::string_view text) {
  absl::StatusOr<json::value> v = ParseJson(text, "test");
  EXPECT_TRUE(v.ok()) << v.status();
  if (!v.ok()) return "";
  absl::StatusOr<std::string> s = SerializeCanonical(*v);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

std::string Merge(std::string_view target, std::string_view patch) {
  json::value t = *ParseJson(target, "target");
  ApplyMergePatch(t, *ParseJson(patch, "patch"));
  return *SerializeCanonical(t);
}

std::string Subkeys(std::string_view data, int depth) {
  json::value v = *ParseJson(data, "data");
  return *SerializeCanonical(SubkeysOf(v.get_object(), depth));
}

TEST(KvJsonTest, CanonicalFormSortsKeysAndIsCompact) {
  EXPECT_EQ(Canonical(R"({ "b": 1, "a": {"d": [1, 2], "c": null} })"),
            R"({"a":{"c":null,"d":[1,2]},"b":1})");
}

TEST(KvJsonTest, CanonicalFormKeepsIntegersExact) {
  EXPECT_EQ(Canonical(R"({"big":18446744073709551615,"neg":-9223372036854775808})"),
            R"({"big":18446744073709551615,"neg":-9223372036854775808})");
}

TEST(KvJsonTest, CanonicalFormFormatsDoublesAsGoDoes) {
  EXPECT_EQ(Canonical(R"({"a":1.5,"b":1.0,"c":1e21,"d":1e-7,"e":0.000001,"f":1e20})"),
            R"({"a":1.5,"b":1,"c":1e+21,"d":1e-7,"e":0.000001,"f":100000000000000000000})");
}

TEST(KvJsonTest, CanonicalFormEscapesStrings) {
  EXPECT_EQ(Canonical(R"({"k\"":"line\nbreak \u0001 é"})"),
            "{\"k\\\"\":\"line\\nbreak \\u0001 \xc3\xa9\"}");
}

TEST(KvJsonTest, ParseRejectsInvalidJson) {
  EXPECT_EQ(ParseJson("{", "data").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJson("{} x", "data").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJson("\"\xff\"", "data").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KvJsonTest, ParseRejectsNestingBeyondTheLimit) {
  std::string deep(kMaxJsonDepth + 1, '[');
  deep += std::string(kMaxJsonDepth + 1, ']');
  EXPECT_EQ(ParseJson(deep, "data").status().code(), absl::StatusCode::kInvalidArgument);
  std::string ok(kMaxJsonDepth, '[');
  ok += std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJson(ok, "data").ok());
}

// The examples of RFC 7386 appendix A.
TEST(KvJsonTest, MergePatchFollowsRfc7386) {
  EXPECT_EQ(Merge(R"({"a":"b"})", R"({"a":"c"})"), R"({"a":"c"})");
  EXPECT_EQ(Merge(R"({"a":"b"})", R"({"b":"c"})"), R"({"a":"b","b":"c"})");
  EXPECT_EQ(Merge(R"({"a":"b"})", R"({"a":null})"), R"({})");
  EXPECT_EQ(Merge(R"({"a":"b","b":"c"})", R"({"a":null})"), R"({"b":"c"})");
  EXPECT_EQ(Merge(R"({"a":["b"]})", R"({"a":"c"})"), R"({"a":"c"})");
  EXPECT_EQ(Merge(R"({"a":"c"})", R"({"a":["b"]})"), R"({"a":["b"]})");
  EXPECT_EQ(Merge(R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})"), R"({"a":{"b":"d"}})");
  EXPECT_EQ(Merge(R"({"a":[{"b":"c"}]})", R"({"a":[1]})"), R"({"a":[1]})");
  EXPECT_EQ(Merge(R"({"e":null})", R"({"a":1})"), R"({"a":1,"e":null})");
  EXPECT_EQ(Merge(R"([1,2])", R"({"a":"b","c":null})"), R"({"a":"b"})");
  EXPECT_EQ(Merge(R"({})", R"({"a":{"bb":{"ccc":null}}})"), R"({"a":{"bb":{}}})");
}

TEST(KvJsonTest, SubkeysReplacesValuesWithNull) {
  const char* data = R"({"foo":"abc","bar":{"baz":1,"deep":{"x":[1]}},"empty":{},"list":[1]})";
  EXPECT_EQ(Subkeys(data, 0),
            R"({"bar":{"baz":null,"deep":{"x":null}},"empty":null,"foo":null,"list":null})");
  EXPECT_EQ(Subkeys(data, 1), R"({"bar":null,"empty":null,"foo":null,"list":null})");
  EXPECT_EQ(Subkeys(data, 2),
            R"({"bar":{"baz":null,"deep":null},"empty":null,"foo":null,"list":null})");
  EXPECT_EQ(Subkeys(data, 3), Subkeys(data, 0));
  EXPECT_EQ(Subkeys(data, -1), Subkeys(data, 1));
}

}  // namespace
}  // namespace ward::secrets::internal
