#include "core/secure_bytes.h"

#include "gtest/gtest.h"

namespace ward::core {
namespace {

TEST(SecureBytesTest, MoveLeavesSourceEmpty) {
  SecureBytes a(std::string_view("secret"));
  SecureBytes b(std::move(a));
  EXPECT_EQ(b.view(), "secret");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
}

TEST(SecureBytesTest, ClearZeroesAndEmpties) {
  SecureBytes a(std::string_view("secret"));
  a.Clear();
  EXPECT_TRUE(a.empty());
}

TEST(SecureBytesTest, ResizeKeepsPrefix) {
  SecureBytes a(std::string_view("abc"));
  a.resize(10);
  EXPECT_EQ(a.size(), 10u);
  EXPECT_EQ(a.view().substr(0, 3), "abc");
  a.resize(2);
  EXPECT_EQ(a.view(), "ab");
}

TEST(SecureBytesTest, CopyIsIndependent) {
  SecureBytes a(std::string_view("abc"));
  SecureBytes b = a.Copy();
  a.Clear();
  EXPECT_EQ(b.view(), "abc");
}

}  // namespace
}  // namespace ward::core
