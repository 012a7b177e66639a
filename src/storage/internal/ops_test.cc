#include "storage/internal/ops.h"

#include "gtest/gtest.h"

namespace ward::storage::internal {
namespace {

using std::string_literals::operator""s;

TEST(PrefixUpperBoundTest, IncrementsLastByte) {
  EXPECT_EQ(PrefixUpperBound("ab"), "ac");
  EXPECT_EQ(PrefixUpperBound("a\x00"s), "a\x01"s);
}

TEST(PrefixUpperBoundTest, CarriesOverTrailingFf) {
  EXPECT_EQ(PrefixUpperBound("a\xff"), "b");
  EXPECT_EQ(PrefixUpperBound("a\xff\xff"), "b");
  EXPECT_EQ(PrefixUpperBound("\x7f\xff"), "\x80");
}

TEST(PrefixUpperBoundTest, NoBoundForEmptyOrAllFf) {
  EXPECT_EQ(PrefixUpperBound(""), std::nullopt);
  EXPECT_EQ(PrefixUpperBound("\xff"), std::nullopt);
  EXPECT_EQ(PrefixUpperBound("\xff\xff"), std::nullopt);
}

TEST(ValidateOpsTest, RejectsEmptyKey) {
  std::vector<Op> ops;
  ops.push_back(Op::Put("a", "1"));
  ops.push_back(Op::Delete(""));
  EXPECT_EQ(ValidateOps(ops).code(), absl::StatusCode::kInvalidArgument);
  ops.pop_back();
  EXPECT_TRUE(ValidateOps(ops).ok());
}

TEST(ChangedKeysTest, SortedUniqueWithoutChecks) {
  std::vector<Op> ops;
  ops.push_back(Op::Put("b", "1"));
  ops.push_back(Op::Check("c", 0));
  ops.push_back(Op::Delete("a"));
  ops.push_back(Op::Put("b", "2"));
  EXPECT_EQ(ChangedKeys(ops), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace ward::storage::internal
