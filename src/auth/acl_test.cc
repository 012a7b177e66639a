#include "auth/acl.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace ward::auth {
namespace {

constexpr Capability kAll[] = {Capability::kCreate, Capability::kRead,   Capability::kUpdate,
                               Capability::kPatch,  Capability::kDelete, Capability::kList,
                               Capability::kSudo};

std::shared_ptr<const PolicySet> SetOf(const std::map<std::string, std::string>& texts) {
  auto set = std::make_shared<PolicySet>();
  for (const auto& [name, text] : texts) {
    auto compiled = CompiledPolicy::Compile(name, text);
    EXPECT_TRUE(compiled.ok()) << name << ": " << compiled.status();
    if (compiled.ok()) set->policies[name] = *compiled;
  }
  return set;
}

// "create,read" style rendering of what `acl` grants on `path`, for compact tables.
std::string Granted(const Acl& acl, const std::string& path, bool list = false) {
  std::string out;
  for (Capability c : kAll) {
    if (!acl.Allowed(path, c, list)) continue;
    if (!out.empty()) out += ",";
    out += std::string(CapabilityName(c));
  }
  return out.empty() ? "-" : out;
}

TEST(AclTest, RootMayDoAnything) {
  Acl root(SetOf({}), {"root"});
  EXPECT_TRUE(root.IsRoot());
  for (Capability c : kAll) {
    EXPECT_TRUE(root.Allowed("secret/data/app", c)) << CapabilityName(c);
    EXPECT_TRUE(root.Allowed("sys/seal", c)) << CapabilityName(c);
  }
  EXPECT_EQ(root.CapabilityNamesOn("anything"), (std::vector<std::string>{"root"}));
  EXPECT_TRUE(root.HasMountAccess("secret/"));
}

TEST(AclTest, NoPoliciesOrUnknownPoliciesGrantNothing) {
  auto set = SetOf({{"dev", R"(path "secret/*" { capabilities = ["read"] })"}});
  for (const auto& names : {std::vector<std::string>{}, std::vector<std::string>{"missing"}}) {
    Acl acl(set, names);
    for (Capability c : kAll) EXPECT_FALSE(acl.Allowed("secret/data/x", c));
    EXPECT_EQ(acl.CapabilityNamesOn("secret/data/x"), (std::vector<std::string>{"deny"}));
  }
}

// Each row: a request path and the capabilities the policy below grants on it.
TEST(AclTest, MatchingTable) {
  auto set = SetOf({{"p", R"(
path "secret/data/exact"   { capabilities = ["read"] }
path "secret/data/glob/*"  { capabilities = ["list"] }
path "secret/data/glob/deeper/*" { capabilities = ["update"] }
path "secret/data/+/one"   { capabilities = ["create"] }
path "secret/data/+/+/two" { capabilities = ["delete"] }
path "secret/data/plus/+"  { capabilities = ["patch"] }
path "secret/data/pg/+/x*" { capabilities = ["sudo"] }
path "secret/data/denied/*" { capabilities = ["deny"] }
path "secret/data/denied/except" { capabilities = ["read"] }
path "kv/*"                { capabilities = ["read"] }
path "kv/+/fixed"          { capabilities = ["update"] }
path "empty/*"             { capabilities = [] }
path "empty/x/*"           { capabilities = ["read"] }
)"}});
  Acl acl(set, {"p"});
  struct Row {
    std::string path;
    std::string want;
  } rows[] = {
      // Exact is exact.
      {"secret/data/exact", "read"},
      {"secret/data/exact/", "-"},
      {"secret/data/exactly", "-"},
      // A glob is a plain prefix, even mid-segment, and not the bare prefix's parent.
      {"secret/data/glob/", "list"},
      {"secret/data/glob/a/b/c", "list"},
      {"secret/data/glob", "-"},
      {"secret/data/globx", "-"},
      // Longer glob wins over shorter.
      {"secret/data/glob/deeper/x", "update"},
      // '+' is exactly one segment.
      {"secret/data/a/one", "create"},
      {"secret/data/a/b/one", "-"},
      {"secret/data/a/one/more", "-"},
      {"secret/data/a/b/two", "delete"},
      {"secret/data/plus/z", "patch"},
      {"secret/data/plus/z/y", "-"},
      // '+' with a trailing glob: prefix on the last segment.
      {"secret/data/pg/a/x", "sudo"},
      {"secret/data/pg/a/xyz/more", "sudo"},
      {"secret/data/pg/a/y", "-"},
      // Deny under a glob; an exact rule is more specific and wins.
      {"secret/data/denied/anything", "-"},
      {"secret/data/denied/except", "read"},
      // "kv/+/fixed": first wildcard (index 3) is later than kv/*'s glob (index 3)? Both at 3:
      // then the non-glob wins.
      {"kv/a/fixed", "update"},
      {"kv/a/other", "read"},
      // A matching rule that grants nothing still wins over shorter rules, and grants nothing.
      {"empty/a", "-"},
      {"empty/x/a", "read"},
      {"unrelated", "-"},
  };
  for (const Row& row : rows) EXPECT_EQ(Granted(acl, row.path), row.want) << row.path;
}

// Vault's "Priority matching" examples and each of its five tie-breaks.
TEST(AclTest, PriorityRules) {
  struct Case {
    std::string first, second, path, winner;
  } cases[] = {
      // 1. The first wildcard later in the path wins.
      {"secret/*", "secret/data/+", "secret/data/x", "secret/data/+"},
      {"secret/+/x", "secret/data/*", "secret/data/x", "secret/data/*"},
      // 2. Not ending in '*' beats ending in '*' (same first wildcard position).
      {"secret/+/x*", "secret/+/x", "secret/a/x", "secret/+/x"},
      // 3. Fewer '+' segments win.
      {"a/+/+/d", "a/+/c/d", "a/b/c/d", "a/+/c/d"},
      // 4. The longer pattern wins.
      {"a/+/c*", "a/+/cd*", "a/b/cde", "a/+/cd*"},
      // 5. Lexically larger wins ('+' sorts before letters).
      {"a/+/+/d", "a/+/c/+", "a/b/c/d", "a/+/c/+"},
      {"a/+/c/+", "a/+/+/d", "a/b/c/d", "a/+/c/+"},
      // The same pattern in one policy: merged, no winner.
      {"a/+/b", "a/+/b", "a/q/b", "a/+/b"},
  };
  for (const Case& c : cases) {
    auto set = SetOf({{"p", "path \"" + c.first + "\" { capabilities = [\"read\"] }\n"
                               "path \"" + c.second + "\" { capabilities = [\"update\"] }"}});
    Acl acl(set, {"p"});
    std::string want = c.winner == c.second ? "update" : "read";
    if (c.first == c.second) want = "read,update";
    EXPECT_EQ(Granted(acl, c.path), want) << c.first << " vs " << c.second << " on " << c.path;
  }
}

TEST(AclTest, PoliciesMergeOnTheSamePatternAndDenyWins) {
  auto set = SetOf({
      {"reader", R"(path "secret/data/*" { capabilities = ["read", "list"] })"},
      {"writer", R"(path "secret/data/*" { capabilities = ["create", "update"] }
                    path "secret/data/team/x" { capabilities = ["read"] })"},
      {"blocker", R"(path "secret/data/*" { capabilities = ["deny"] })"},
      {"narrow", R"(path "secret/data/team/*" { capabilities = ["patch"] })"},
  });
  EXPECT_EQ(Granted(Acl(set, {"reader", "writer"}), "secret/data/app"), "create,read,update,list");
  EXPECT_EQ(Granted(Acl(set, {"reader", "writer", "blocker"}), "secret/data/app"), "-");
  // Deny merges only into the same pattern: a more specific rule elsewhere still wins.
  EXPECT_EQ(Granted(Acl(set, {"reader", "blocker", "narrow"}), "secret/data/team/y"), "patch");
  EXPECT_EQ(Granted(Acl(set, {"blocker", "writer"}), "secret/data/team/x"), "read");
  // Capabilities are not unioned across different patterns: the most specific wins.
  EXPECT_EQ(Granted(Acl(set, {"reader", "narrow"}), "secret/data/team/y"), "patch");
}

TEST(AclTest, ListFallsBackToExactRuleWithoutTrailingSlash) {
  auto set = SetOf({{"p", R"(path "secret/metadata/app" { capabilities = ["list"] })"}});
  Acl acl(set, {"p"});
  EXPECT_TRUE(acl.Allowed("secret/metadata/app/", Capability::kList, /*list_operation=*/true));
  EXPECT_FALSE(acl.Allowed("secret/metadata/app/", Capability::kList, /*list_operation=*/false));
}

// Every KV v2 route is its own policy path: a capability on one grants nothing on the others.
TEST(AclTest, EachCapabilityAgainstEveryKvV2Route) {
  const std::string kRoutes[] = {"data", "metadata", "delete", "undelete", "destroy", "subkeys"};
  for (const std::string& granted_route : kRoutes) {
    for (Capability granted : kAll) {
      auto set = SetOf({{"p", "path \"secret/" + granted_route + "/app/*\" { capabilities = [\"" +
                                  std::string(CapabilityName(granted)) + "\"] }"}});
      Acl acl(set, {"p"});
      for (const std::string& route : kRoutes) {
        for (Capability asked : kAll) {
          bool want = route == granted_route && asked == granted;
          EXPECT_EQ(acl.Allowed("secret/" + route + "/app/db", asked), want)
              << "granted " << CapabilityName(granted) << " on " << granted_route << ", asked "
              << CapabilityName(asked) << " on " << route;
        }
      }
    }
  }
}

TEST(AclTest, CapabilityNamesForSysCapabilities) {
  auto set = SetOf({{"p", R"(path "secret/data/*" { capabilities = ["update", "read", "create"] }
                             path "secret/data/no" { capabilities = ["deny"] })"}});
  Acl acl(set, {"p", "default"});
  EXPECT_EQ(acl.CapabilityNamesOn("secret/data/x"),
            (std::vector<std::string>{"create", "read", "update"}));
  EXPECT_EQ(acl.CapabilityNamesOn("secret/data/no"), (std::vector<std::string>{"deny"}));
  EXPECT_EQ(acl.CapabilityNamesOn("elsewhere"), (std::vector<std::string>{"deny"}));
}

TEST(AclTest, MountAccess) {
  auto set = SetOf({
      {"deep", R"(path "secret/data/app/db" { capabilities = ["read"] })"},
      {"glob", R"(path "kv/team/*" { capabilities = ["list"] })"},
      {"plus", R"(path "+/data/x" { capabilities = ["read"] })"},
      {"denied", R"(path "secret/data/app/db" { capabilities = ["deny"] })"},
      {"nothing", R"(path "secret/data/empty" { capabilities = [] })"},
  });
  EXPECT_TRUE(Acl(set, {"deep"}).HasMountAccess("secret/"));
  EXPECT_FALSE(Acl(set, {"deep"}).HasMountAccess("kv/"));
  EXPECT_TRUE(Acl(set, {"glob"}).HasMountAccess("kv/"));
  EXPECT_TRUE(Acl(set, {"plus"}).HasMountAccess("other/"));
  EXPECT_FALSE(Acl(set, {"deep", "denied"}).HasMountAccess("secret/"));
  EXPECT_FALSE(Acl(set, {"nothing"}).HasMountAccess("secret/"));
  EXPECT_FALSE(Acl(set, {}).HasMountAccess("secret/"));
}

TEST(AclTest, RootProtectedPaths) {
  for (const char* path : {"sys/seal", "sys/rotate", "sys/step-down", "sys/audit", "sys/audit/file",
                           "sys/auth/approle", "sys/raw/core", "sys/remount", "sys/config/cors",
                           "auth/token/revoke-orphan", "auth/token/accessors/",
                           "sys/leases/revoke-prefix/x", "sys/seal/"}) {
    EXPECT_TRUE(IsRootProtected(path)) << path;
  }
  for (const char* path : {"sys/auth", "sys/mounts", "sys/policies/acl/x", "sys/seal-status",
                           "sys/leases/lookup", "auth/token/create", "secret/data/x",
                           "sys/capabilities-self", "sys/sealx"}) {
    EXPECT_FALSE(IsRootProtected(path)) << path;
  }
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
