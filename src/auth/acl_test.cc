#include "auth/acl.h"

#include "gtest/gtest.h"

namespace ward::auth {
namespace {

TokenEntry WithPolicies(std::vector<std::string> policies) {
  TokenEntry entry;
  entry.policies = std::move(policies);
  return entry;
}

constexpr Capability kAll[] = {Capability::kCreate, Capability::kRead,   Capability::kUpdate,
                               Capability::kPatch,  Capability::kDelete, Capability::kList,
                               Capability::kSudo};

TEST(AclTest, RootMayDoAnything) {
  TokenEntry root = WithPolicies({"root"});
  for (Capability c : kAll) {
    EXPECT_TRUE(Allowed(root, "secret/data/app", c)) << CapabilityName(c);
    EXPECT_TRUE(Allowed(root, "sys/seal", c)) << CapabilityName(c);
  }
}

TEST(AclTest, DefaultPolicyAllowsOnlyItsSelfServicePaths) {
  TokenEntry entry = WithPolicies({"default"});
  EXPECT_TRUE(Allowed(entry, "auth/token/lookup-self", Capability::kRead));
  EXPECT_TRUE(Allowed(entry, "auth/token/lookup-self", Capability::kUpdate));
  EXPECT_FALSE(Allowed(entry, "auth/token/lookup-self", Capability::kDelete));
  EXPECT_TRUE(Allowed(entry, "auth/token/renew-self", Capability::kUpdate));
  EXPECT_FALSE(Allowed(entry, "auth/token/renew-self", Capability::kRead));
  EXPECT_TRUE(Allowed(entry, "auth/token/revoke-self", Capability::kUpdate));
  EXPECT_FALSE(Allowed(entry, "auth/token/revoke-self", Capability::kCreate));
  EXPECT_TRUE(Allowed(entry, "sys/capabilities-self", Capability::kUpdate));
  EXPECT_FALSE(Allowed(entry, "sys/capabilities-self", Capability::kSudo));
  EXPECT_TRUE(Allowed(entry, "sys/internal/ui/mounts/secret", Capability::kRead));
  EXPECT_TRUE(Allowed(entry, "sys/internal/ui/mounts/secret/data/x", Capability::kRead));
  EXPECT_FALSE(Allowed(entry, "sys/internal/ui/mounts/secret", Capability::kUpdate));

  // Exact paths are exact; a glob covers only what is below its prefix.
  EXPECT_FALSE(Allowed(entry, "auth/token/lookup-self/extra", Capability::kRead));
  EXPECT_FALSE(Allowed(entry, "auth/token/lookup", Capability::kUpdate));
  EXPECT_FALSE(Allowed(entry, "sys/internal/ui/mounts", Capability::kRead));
  EXPECT_FALSE(Allowed(entry, "sys/internal/ui/mountsx", Capability::kRead));
  EXPECT_FALSE(Allowed(entry, "auth/token/create", Capability::kUpdate));
  EXPECT_FALSE(Allowed(entry, "secret/data/app", Capability::kRead));
  EXPECT_FALSE(Allowed(entry, "", Capability::kRead));
}

TEST(AclTest, OtherPoliciesGrantNothingYet) {
  TokenEntry dev_only = WithPolicies({"dev"});
  EXPECT_FALSE(Allowed(dev_only, "auth/token/lookup-self", Capability::kRead));
  EXPECT_FALSE(Allowed(dev_only, "secret/data/app", Capability::kRead));
  TokenEntry none = WithPolicies({});
  for (Capability c : kAll) EXPECT_FALSE(Allowed(none, "auth/token/lookup-self", c));
  // "default" grants no more alongside other names.
  TokenEntry both = WithPolicies({"default", "dev"});
  EXPECT_TRUE(Allowed(both, "auth/token/renew-self", Capability::kUpdate));
  EXPECT_FALSE(Allowed(both, "secret/data/app", Capability::kRead));
}

TEST(AclTest, CapabilityNamesAreVaults) {
  EXPECT_EQ(CapabilityName(Capability::kCreate), "create");
  EXPECT_EQ(CapabilityName(Capability::kRead), "read");
  EXPECT_EQ(CapabilityName(Capability::kUpdate), "update");
  EXPECT_EQ(CapabilityName(Capability::kPatch), "patch");
  EXPECT_EQ(CapabilityName(Capability::kDelete), "delete");
  EXPECT_EQ(CapabilityName(Capability::kList), "list");
  EXPECT_EQ(CapabilityName(Capability::kSudo), "sudo");
}

}  // namespace
}  // namespace ward::auth
