#include "auth/policy.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ward::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr CapabilitySet kRead = CapabilityBit(Capability::kRead);
constexpr CapabilitySet kList = CapabilityBit(Capability::kList);
constexpr CapabilitySet kCreate = CapabilityBit(Capability::kCreate);
constexpr CapabilitySet kUpdate = CapabilityBit(Capability::kUpdate);
constexpr CapabilitySet kDelete = CapabilityBit(Capability::kDelete);
constexpr CapabilitySet kPatch = CapabilityBit(Capability::kPatch);
constexpr CapabilitySet kSudo = CapabilityBit(Capability::kSudo);

TEST(PolicyParseTest, HclBlocksWithAllCommentStylesAndTrailingCommas) {
  auto rules = ParsePolicy(R"(
# hash comment
path "secret/data/*" {          // line comment
  capabilities = ["read", "list",]   /* block
  comment */
}
path "secret/metadata/app" { capabilities = ["create","update","patch","delete","sudo"] },
path "/sys/seal" {
  capabilities = ["deny", "read"]
  comment = "deny wins inside a rule"
}
)");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 3u);
  EXPECT_EQ((*rules)[0].path, "secret/data/*");
  EXPECT_EQ((*rules)[0].capabilities, kRead | kList);
  EXPECT_EQ((*rules)[1].path, "secret/metadata/app");
  EXPECT_EQ((*rules)[1].capabilities, kCreate | kUpdate | kPatch | kDelete | kSudo);
  EXPECT_EQ((*rules)[2].path, "sys/seal");  // leading '/' dropped
  EXPECT_EQ((*rules)[2].capabilities, kDenyBit);
}

TEST(PolicyParseTest, StringEscapesAndEmptyPolicy) {
  auto rules = ParsePolicy(R"(path "a\"b\\c\u0041" { capabilities = ["read"] })");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ((*rules)[0].path, "a\"b\\cA");
  auto empty = ParsePolicy("  # nothing but a comment\n");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
}

TEST(PolicyParseTest, JsonFormMatchesHcl) {
  auto json = ParsePolicy(
      R"({"path": {"secret/*": {"capabilities": ["read"]}, "sys/x": {"policy": "write"}}})");
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_EQ(json->size(), 2u);
  EXPECT_EQ((*json)[0].path, "secret/*");
  EXPECT_EQ((*json)[0].capabilities, kRead);
  EXPECT_EQ((*json)[1].path, "sys/x");
  EXPECT_EQ((*json)[1].capabilities, kCreate | kRead | kUpdate | kDelete | kList);
  // The list-of-objects JSON form too.
  auto list = ParsePolicy(R"({"path": [{"a": {"capabilities": ["list"]}}]})");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)[0].capabilities, kList);
}

TEST(PolicyParseTest, DeprecatedPolicyShorthand) {
  struct Case {
    std::string policy;
    CapabilitySet want;
  } cases[] = {
      {"deny", kDenyBit},
      {"read", kRead | kList},
      {"write", kCreate | kRead | kUpdate | kDelete | kList},
      {"sudo", kCreate | kRead | kUpdate | kDelete | kList | kSudo},
  };
  for (const Case& c : cases) {
    auto rules = ParsePolicy("path \"p\" { policy = \"" + c.policy + "\" }");
    ASSERT_TRUE(rules.ok()) << c.policy << ": " << rules.status();
    EXPECT_EQ((*rules)[0].capabilities, c.want) << c.policy;
  }
  auto bad = ParsePolicy(R"(path "p" { policy = "admin" })");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "path \"p\": invalid policy \"admin\"");
}

TEST(PolicyParseTest, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {"path \"a\" {\n  capabilities = [\"read\"]\n}\npath \"b\" {\n  capabilities [\"read\"]\n}",
       "policy parse error at line 5, column 16: expected '=', found '['"},
      {"path \"a\" {\n  capabilities = [\"read\" \"list\"]\n}",
       "policy parse error at line 2, column 26: expected ',' or ']', found string \"list\""},
      {"path \"a\" { capabilities = [\"read\"] ", "policy parse error at line 1, column 36: "
                                                 "expected a key or '}', found end of input"},
      {"path \"unterminated {\n}", "policy parse error at line 1, column 6: unterminated string"},
      {"/* never closed\npath", "policy parse error at line 1, column 1: unterminated comment"},
      {"path \"a\" { capabilities = [\"r\\qx\"] }",
       "policy parse error at line 1, column 30: invalid escape \\q"},
      {"path \"a\" { capabilities = @ }",
       "policy parse error at line 1, column 27: unexpected character '@'"},
      {"{\"path\": {\"a\": {\"capabilities\": [\"read\"]}},\n  oops}",
       "policy parse error at line 2, column 3: syntax error"},
  };
  for (const Case& c : cases) {
    auto rules = ParsePolicy(c.text);
    ASSERT_FALSE(rules.ok()) << c.text;
    EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(rules.status().message()), HasSubstr(c.message)) << c.text;
  }
}

// Found by fuzz/policy_fuzzer: the HCL parser recursed once per '[' or '{' with no bound, so a
// policy body of nested brackets overflowed the stack and killed the server.
TEST(PolicyParseTest, DeepNestingIsASyntaxErrorNotAStackOverflow) {
  for (const std::string& text :
       {"path \"a\" { x = " + std::string(500000, '[') + " }",
        "path \"a\" {" + [] {
          std::string s;
          for (int i = 0; i < 200000; ++i) s += " x {";
          return s;
        }(),
        "path \"a\" { capabilities = " + std::string(32, '[') + std::string(32, ']') + " }"}) {
    auto rules = ParsePolicy(text);
    ASSERT_FALSE(rules.ok());
    EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(rules.status().message()), HasSubstr("nested deeper than 32 levels"));
  }
  // 32 levels (the path block plus 31 lists) still parse; the policy is then rejected for what
  // it says, not for its shape.
  auto at_limit =
      ParsePolicy("path \"a\" { capabilities = " + std::string(31, '[') + std::string(31, ']') + " }");
  ASSERT_FALSE(at_limit.ok());
  EXPECT_THAT(std::string(at_limit.status().message()), Not(HasSubstr("nested deeper")));
}

TEST(PolicyParseTest, SemanticErrors) {
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {R"(path "secret/*" { capabilities = ["raed"] })",
       "path \"secret/*\": invalid capability \"raed\""},
      {R"(path "secret/+*" { capabilities = ["read"] })",
       "path \"secret/+*\": invalid use of wildcards ('+*' is forbidden)"},
      {"path \"a\" {\n capabilities = [\"read\"]\n}\nbogus \"x\" { }", "invalid key \"bogus\" on line 4"},
      {"path \"a\" {\n  colour = \"red\"\n}", "invalid key \"colour\" on line 2"},
      {R"(path "a" { capabilities = ["read"], allowed_parameters = { "x" = [] } })",
       "path \"a\": allowed_parameters is not supported by Ward"},
      {R"(path "a" { capabilities = "read" , denied_parameters = {} })",
       "path \"a\": denied_parameters is not supported by Ward"},
      {R"(path "a" { capabilities = [1] })", "path \"a\": capabilities must be a list of strings"},
      {R"({"path": {"a": {"capabilities": ["bogus"]}}})", "path \"a\": invalid capability \"bogus\""},
  };
  for (const Case& c : cases) {
    auto rules = ParsePolicy(c.text);
    ASSERT_FALSE(rules.ok()) << c.text;
    EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(rules.status().message(), c.message) << c.text;
  }
}

TEST(PolicyParseTest, TemplatedPathsAreMarked) {
  auto rules = ParsePolicy(R"(path "identity/entity/id/{{identity.entity.id}}" { capabilities = ["read"] })");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_TRUE((*rules)[0].templated);
}

TEST(CompiledPolicyTest, GroupsRulesAndMergesDuplicates) {
  auto p = CompiledPolicy::Compile("p", R"(
path "a/b" { capabilities = ["read"] }
path "a/b" { capabilities = ["list"] }
path "a/*" { capabilities = ["update"] }
path "a/*" { capabilities = ["deny"] }
path "a/+/c" { capabilities = ["read"] }
path "a/+/c" { capabilities = ["create"] }
path "x/{{identity.entity.id}}" { capabilities = ["read"] }
)");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->Exact("a/b"), kRead | kList);
  EXPECT_EQ((*p)->Exact("a/c"), std::nullopt);
  auto prefix = (*p)->LongestPrefix("a/zzz");
  ASSERT_TRUE(prefix.has_value());
  EXPECT_EQ(prefix->first, 2u);
  EXPECT_EQ(prefix->second, kDenyBit);
  ASSERT_EQ((*p)->wildcard_rules().size(), 1u);
  EXPECT_EQ((*p)->wildcard_rules()[0].capabilities, kRead | kCreate);
  EXPECT_EQ((*p)->exact_rules().size(), 1u);  // the templated rule is not compiled
}

TEST(CapabilityNamesTest, SortedOrDeny) {
  EXPECT_EQ(CapabilityNames(kUpdate | kRead | kCreate | kList),
            (std::vector<std::string>{"create", "list", "read", "update"}));
  EXPECT_EQ(CapabilityNames(0), (std::vector<std::string>{"deny"}));
  EXPECT_EQ(CapabilityNames(kDenyBit), (std::vector<std::string>{"deny"}));
  EXPECT_EQ(CapabilityNames(kSudo | kPatch | kDelete),
            (std::vector<std::string>{"delete", "patch", "sudo"}));
}

}  // namespace
}  // namespace ward::auth
