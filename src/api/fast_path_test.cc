// The KV read fast path (docs/benchmarks.md): VaultHandler::MayRunInline, which lets the HTTP
// server run non-blocking requests on its event loop, and the KV read response that is written
// without a JSON tree. Core runs over a MemoryBackend with a fake clock.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/internal/json.h"
#include "api/testing/dev_node.h"
#include "audit/test_util.h"
#include "core/testing/temp_dir.h"
#include "core/time_format.h"
#include "gtest/gtest.h"

namespace ward::api {
namespace {

namespace json = boost::json;
using testing::Body;

class FastPathTest : public testing::DevNodeTest {
 protected:
  // The request id is checked in KvReadResponseIsTheVaultEnvelope. (The mount table mounts
  // KV v2 at secret/ on first use.)
  testing::DevNode::Options NodeOptions() const override {
    testing::DevNode::Options options;
    options.request_id = "00000000-0000-4000-8000-000000000003";
    return options;
  }

  // MayRunInline's answer, checked against HandleInline's: a response exactly when allowed.
  bool Inline(const std::string& method, const std::string& path, const std::string& token) {
    const net::HttpRequest request = Request(method, path, token);
    const bool allowed = handler().MayRunInline(request);
    std::optional<net::HttpResponse> served = handler().HandleInline(request);
    if (served.has_value()) served = net::AwaitHeld(std::move(*served));
    EXPECT_EQ(served.has_value(), allowed) << method << " " << path;
    return allowed;
  }

  // Enables the audit device "file" writing to `path`; returns the status.
  int EnableFileDevice(const std::string& path) {
    return Call("PUT", "sys/audit/file", root_,
                absl::StrCat(R"({"type":"file","options":{"file_path":")", path, R"("}})"))
        .status;
  }

  // A child token of root with `num_uses` uses (0: unlimited).
  std::string ChildToken(int num_uses) {
    net::HttpResponse r = Call("POST", "auth/token/create", root_,
                               absl::StrCat(R"({"policies":["root"],"num_uses":)", num_uses, "}"));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "";
    return std::string(Body(r).at("auth").at("client_token").as_string());
  }
};

TEST_F(FastPathTest, KvReadsAndStatusRoutesMayRunInline) {
  EXPECT_TRUE(Inline("GET", "secret/data/a", root_));
  EXPECT_TRUE(Inline("HEAD", "secret/data/a", root_));
  EXPECT_TRUE(Inline("GET", "secret/data/a?version=2", root_));
  EXPECT_TRUE(Inline("GET", "secret/metadata/a", root_));
  EXPECT_TRUE(Inline("LIST", "secret/metadata/", root_));
  EXPECT_TRUE(Inline("GET", "secret/metadata/?list=true", root_));
  EXPECT_TRUE(Inline("GET", "auth/token/lookup-self", root_));
  EXPECT_TRUE(Inline("GET", "sys/health", ""));
  EXPECT_TRUE(Inline("GET", "sys/seal-status", ""));
  // An unknown token is a fast 403 (no storage either).
  EXPECT_TRUE(Inline("GET", "secret/data/a", "not-a-token"));
}

TEST_F(FastPathTest, WritesAndOtherRoutesRunOnTheWorkerPool) {
  for (const char* method : {"PUT", "POST", "PATCH", "DELETE", "get", "OPTIONS"}) {
    EXPECT_FALSE(Inline(method, "secret/data/a", root_)) << method;
  }
  EXPECT_FALSE(Inline("GET", "secret/config", root_));
  EXPECT_FALSE(Inline("GET", "secret/subkeys/a", root_));
  EXPECT_FALSE(Inline("GET", "sys/mounts", root_));
  EXPECT_FALSE(Inline("GET", "auth/token/lookup-accessor", root_));
  EXPECT_FALSE(Inline("GET", "nomount/data/a", root_));
  // Percent-encoded paths and targets outside /v1/ take the general path.
  EXPECT_FALSE(Inline("GET", "secret/data/%61", root_));
  net::HttpRequest odd = Request("GET", "secret/data/a", root_);
  odd.target = "/v2/secret/data/a";
  EXPECT_FALSE(handler().MayRunInline(odd));
  // No token: direct certificate identity or a 403, both on the pool.
  EXPECT_FALSE(Inline("GET", "secret/data/a", ""));
}

TEST_F(FastPathTest, AConnectionRemembersItsTokensHashButChecksTheTokenEveryTime) {
  ASSERT_EQ(Call("PUT", "secret/data/a", root_, R"({"data":{"v":"1"}})").status, 200);
  const std::string child = ChildToken(0);
  ASSERT_FALSE(child.empty());
  std::unique_ptr<net::ConnectionMemo> memo;  // one connection's, as the listener keeps it
  auto read = [&](const std::string& token) {
    net::HttpRequest request = Request("GET", "secret/data/a", token);
    request.connection_memo = &memo;
    std::optional<net::HttpResponse> served = handler().HandleInline(request);
    EXPECT_TRUE(served.has_value());
    return served.has_value() ? net::AwaitHeld(std::move(*served)).status : 0;
  };
  EXPECT_EQ(read(child), 200);
  ASSERT_NE(memo, nullptr);  // the token's hash, remembered for the connection
  const net::ConnectionMemo* remembered = memo.get();
  EXPECT_EQ(read(child), 200);
  EXPECT_EQ(memo.get(), remembered);  // used, not replaced
  // Another token on the same connection is looked up as itself (and replaces the memo).
  EXPECT_EQ(read("not-a-token"), 403);
  EXPECT_EQ(read(child), 200);
  // A revoked token is refused although its hash is remembered: the entry is checked on
  // every request.
  ASSERT_EQ(read(child), 200);
  ASSERT_EQ(Call("POST", "auth/token/revoke", root_,
                 absl::StrCat(R"({"token":")", child, R"("})")).status,
            204);
  EXPECT_EQ(read(child), 403);
  EXPECT_EQ(read(root_), 200);
}

TEST_F(FastPathTest, UseLimitedTokensRunOnTheWorkerPool) {
  // Each request consumes a use, which is a storage commit: it must not run on the event loop.
  const std::string limited = ChildToken(5);
  ASSERT_FALSE(limited.empty());
  EXPECT_FALSE(Inline("GET", "secret/data/a", limited));
  const std::string unlimited = ChildToken(0);
  ASSERT_FALSE(unlimited.empty());
  EXPECT_TRUE(Inline("GET", "secret/data/a", unlimited));
}

TEST_F(FastPathTest, HandleInlineServesAllowedReadsAndLeavesTheRestUntouched) {
  ASSERT_EQ(Call("PUT", "secret/data/a", root_, R"({"data":{"v":"1"}})").status, 200);
  std::optional<net::HttpResponse> read =
      handler().HandleInline(Request("GET", "secret/data/a", root_));
  ASSERT_TRUE(read.has_value());
  net::HttpResponse inline_read = net::AwaitHeld(*std::move(read));
  net::HttpResponse pool_read = Call("GET", "secret/data/a", root_);
  EXPECT_EQ(inline_read.status, 200);
  EXPECT_EQ(inline_read.body, pool_read.body);
  // A write is refused for the loop and not performed.
  EXPECT_FALSE(
      handler().HandleInline(Request("PUT", "secret/data/b", root_, R"({"data":{"v":"2"}})")));
  EXPECT_EQ(Call("GET", "secret/data/b", root_).status, 404);
  // A use-limited token is not spent by the refusal.
  const std::string limited = ChildToken(2);
  ASSERT_FALSE(limited.empty());
  EXPECT_FALSE(handler().HandleInline(Request("GET", "secret/data/a", limited)));
  net::HttpResponse self = Call("GET", "auth/token/lookup-self", limited);
  ASSERT_EQ(self.status, 200);
  EXPECT_EQ(Body(self).at("data").at("num_uses"), 1);  // this lookup used one of the two
}

TEST_F(FastPathTest, NothingRunsInlineWhileSealed) {
  core().Seal();
  EXPECT_FALSE(Inline("GET", "sys/health", ""));
  EXPECT_FALSE(Inline("GET", "secret/data/a", root_));
}

TEST_F(FastPathTest, AuditedReadsRunInlineAndWriteTheirRecordsBeforeAnswering) {
  core::TempDir dir;
  const std::string log = dir.Join("audit.log");
  ASSERT_EQ(EnableFileDevice(log), 204);
  EXPECT_TRUE(Inline("GET", "secret/data/a", root_));
  EXPECT_TRUE(Inline("GET", "auth/token/lookup-self", root_));
  EXPECT_TRUE(Inline("GET", "sys/health", ""));
  ASSERT_EQ(Call("PUT", "secret/data/a", root_, R"({"data":{"v":"0"}})").status, 200);
  const size_t before = audit::testing::Lines(audit::testing::ReadAll(log)).size();

  // A read: a device on a local file is written by the serving thread, so both records are in
  // the file when the handler returns, and there is nothing to hold the response for.
  net::HttpResponse sent = handler().Handle(Request("GET", "secret/data/a", root_));
  EXPECT_TRUE(sent.hold == nullptr);
  EXPECT_EQ(sent.status, 200) << sent.body;
  std::vector<std::string> lines = audit::testing::Lines(audit::testing::ReadAll(log));
  ASSERT_EQ(lines.size(), before + 2);
  EXPECT_NE(lines[before].find(R"("type":"request")"), std::string::npos) << lines[before];
  EXPECT_NE(lines[before + 1].find(R"("type":"response")"), std::string::npos);
  EXPECT_NE(lines[before + 1].find(R"("path":"secret/data/a")"), std::string::npos);

  // A write: its request record is written before it runs, its response record before it
  // is answered.
  sent = handler().Handle(Request("PUT", "secret/data/b", root_, R"({"data":{"v":"1"}})"));
  EXPECT_TRUE(sent.hold == nullptr);
  EXPECT_EQ(sent.status, 200);
  lines = audit::testing::Lines(audit::testing::ReadAll(log));
  ASSERT_EQ(lines.size(), before + 4);
  EXPECT_NE(lines[before + 2].find(R"("type":"request")"), std::string::npos);
  EXPECT_NE(lines[before + 3].find(R"("type":"response")"), std::string::npos);

  ASSERT_EQ(Call("DELETE", "sys/audit/file", root_).status, 204);
  EXPECT_TRUE(Inline("GET", "secret/data/a", root_));
  sent = handler().Handle(Request("GET", "secret/data/a", root_));
  EXPECT_TRUE(sent.hold == nullptr);  // nothing to wait for without a device
}

// The response records of KV reads hash the data of the version served, even though a device
// remembers the hashed data of a version it has seen (audit::Hasher): a new version, changed
// metadata, and a version number that comes back with other data after the secret was deleted
// are each hashed anew.
TEST_F(FastPathTest, AuditedKvReadsRecordTheDataOfTheVersionServed) {
  core::TempDir dir;
  const std::string log = dir.Join("audit.log");
  ASSERT_EQ(EnableFileDevice(log), 204);
  auto hash = [&](const std::string& input) {
    net::HttpResponse r = Call("PUT", "sys/audit-hash/file", root_,
                               json::serialize(json::object{{"input", input}}));
    EXPECT_EQ(r.status, 200) << r.body;
    return Body(r).at("data").at("hash");
  };
  // The response data of the last read's record.
  auto recorded = [&]() -> json::value {
    net::HttpResponse sent = handler().Handle(Request("GET", "secret/data/memo", root_));
    std::vector<std::string> lines = audit::testing::Lines(audit::testing::ReadAll(log));
    EXPECT_GE(lines.size(), 1u);
    if (lines.empty()) return nullptr;
    json::value last = json::parse(lines.back());
    EXPECT_EQ(last.at("type"), "response");
    EXPECT_EQ(last.at("response").at("status_code"), sent.status);
    return last.at("response").at("data");
  };

  ASSERT_EQ(Call("PUT", "secret/data/memo", root_, R"({"data":{"v":"first"}})").status, 200);
  json::value first = recorded();
  EXPECT_EQ(first.at("data").at("v"), hash("first"));
  EXPECT_EQ(first.at("metadata").at("version"), 1);
  EXPECT_EQ(recorded(), first);  // read again: the same record data

  ASSERT_EQ(Call("PUT", "secret/data/memo", root_, R"({"data":{"v":"second"}})").status, 200);
  json::value second = recorded();
  EXPECT_EQ(second.at("data").at("v"), hash("second"));
  EXPECT_EQ(second.at("metadata").at("version"), 2);

  ASSERT_EQ(Call("POST", "secret/metadata/memo", root_,
                 R"({"custom_metadata":{"owner":"team-a"}})")
                .status,
            204);
  json::value with_owner = recorded();
  EXPECT_EQ(with_owner.at("data").at("v"), hash("second"));
  EXPECT_EQ(with_owner.at("metadata").at("custom_metadata").at("owner"), hash("team-a"));

  // Deleted for good, then written again: version 1 again, with other data.
  ASSERT_EQ(Call("DELETE", "secret/metadata/memo", root_).status, 204);
  ASSERT_EQ(Call("PUT", "secret/data/memo", root_, R"({"data":{"v":"third"}})").status, 200);
  json::value third = recorded();
  EXPECT_EQ(third.at("data").at("v"), hash("third"));
  EXPECT_EQ(third.at("metadata").at("version"), 1);

  // Soft-deleted: 404, with no data and the metadata.
  ASSERT_EQ(Call("DELETE", "secret/data/memo", root_).status, 204);
  json::value deleted = recorded();
  EXPECT_TRUE(deleted.at("data").is_null());
  EXPECT_EQ(deleted.at("metadata").at("version"), 1);
  EXPECT_NE(deleted.at("metadata").at("deletion_time"), hash(""));
}

TEST_F(FastPathTest, AReadAuditedToAPipeHoldsItsResponseForTheWriter) {
  // A pipe's write can wait for its reader, so its records go through the device's writer
  // thread and the response is held (the serving thread is not blocked) until they are
  // written. The pipe is filled first, so the writer must wait until this test drains it.
  core::TempDir dir;
  const std::string fifo = dir.Join("audit.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_EQ(Call("PUT", "sys/audit/pipe", root_,
                 absl::StrCat(R"({"type":"file","options":{"file_path":")", fifo, R"("}})"))
                .status,
            204);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  auto drain = [reader] {
    std::string all, chunk(1 << 16, '\0');
    ssize_t n;
    while ((n = ::read(reader, chunk.data(), chunk.size())) > 0) all.append(chunk, 0, n);
    return all;
  };
  drain();
  const int filler = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(filler, 0);
  const std::string newlines(4096, '\n');
  while (::write(filler, newlines.data(), newlines.size()) > 0) {
  }
  ::close(filler);

  net::HttpResponse held = handler().Handle(Request("GET", "sys/health", ""));  // not audited
  EXPECT_TRUE(held.hold == nullptr);
  held = handler().Handle(Request("GET", "auth/token/lookup-self", root_));
  ASSERT_TRUE(held.hold != nullptr);  // the writer is stuck on the full pipe
  std::string records;
  std::thread reader_thread([&] {
    for (int i = 0; i < 500 && records.find("\"type\":\"response\"") == std::string::npos; ++i) {
      records += drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  EXPECT_EQ(net::AwaitHeld(std::move(held)).status, 200);
  reader_thread.join();
  ::close(reader);
  std::vector<std::string> lines;
  for (std::string& l : audit::testing::Lines(records)) {
    if (!l.empty()) lines.push_back(std::move(l));
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(R"("type":"request")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(R"("type":"response")"), std::string::npos) << lines[1];
  ASSERT_EQ(Call("DELETE", "sys/audit/pipe", root_).status, 204);
}

TEST_F(FastPathTest, KvReadResponseIsTheVaultEnvelope) {
  ASSERT_EQ(Call("PUT", "secret/metadata/a", root_,
                 R"({"custom_metadata":{"owner":"team \"a\" \\ b","z":"\u00e9"}})")
                .status,
            204);
  ASSERT_EQ(Call("PUT", "secret/data/a", root_, R"({"data":{"b":[1,2,{"c":null}],"a":"x\"y\n\u0001"}})")
                .status,
            200);
  net::HttpResponse r = Call("GET", "secret/data/a", root_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("cache-control"), "no-store");
  ASSERT_FALSE(r.body.empty());
  EXPECT_EQ(r.body.back(), '\n');
  json::value body = Body(r);
  const json::object& o = body.as_object();
  // Keys in the order the tree-built envelope had them.
  std::vector<std::string> keys;
  for (const auto& kv : o) keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"request_id", "lease_id", "renewable",
                                            "lease_duration", "data", "wrap_info", "warnings",
                                            "auth", "mount_type"}));
  EXPECT_EQ(o.at("request_id"), "00000000-0000-4000-8000-000000000003");
  EXPECT_EQ(o.at("lease_id"), "");
  EXPECT_EQ(o.at("renewable"), false);
  EXPECT_EQ(o.at("lease_duration"), 0);
  EXPECT_TRUE(o.at("wrap_info").is_null());
  EXPECT_TRUE(o.at("warnings").is_null());
  EXPECT_TRUE(o.at("auth").is_null());
  EXPECT_EQ(o.at("mount_type"), "kv");
  EXPECT_EQ(o.at("data").at("data"), json::parse(R"({"a":"x\"y\n\u0001","b":[1,2,{"c":null}]})"));
  const json::object& meta = o.at("data").at("metadata").as_object();
  EXPECT_EQ(meta.at("version"), 1);
  EXPECT_EQ(meta.at("destroyed"), false);
  EXPECT_EQ(meta.at("deletion_time"), "");
  EXPECT_EQ(meta.at("created_time"), json::value(core::FormatRfc3339Nanos(clock_.Now())));
  EXPECT_EQ(meta.at("custom_metadata"), json::parse(R"({"owner":"team \"a\" \\ b","z":"\u00e9"})"));
}

TEST_F(FastPathTest, DeletedVersionIs404WithItsMetadata) {
  ASSERT_EQ(Call("PUT", "secret/data/a", root_, R"({"data":{"k":"v"}})").status, 200);
  ASSERT_EQ(Call("DELETE", "secret/data/a", root_).status, 204);
  net::HttpResponse r = Call("GET", "secret/data/a", root_);
  ASSERT_EQ(r.status, 404) << r.body;
  json::value body = Body(r);
  EXPECT_TRUE(body.at("data").at("data").is_null());
  EXPECT_TRUE(body.at("data").at("metadata").at("custom_metadata").is_null());
  EXPECT_EQ(body.at("data").at("metadata").at("deletion_time"),
            json::value(core::FormatRfc3339Nanos(clock_.Now())));
}

TEST(AppendJsonStringTest, EscapesAsBoostJsonDoes) {
  std::string every_ascii;
  for (int c = 0; c < 0x80; ++c) every_ascii.push_back(static_cast<char>(c));
  for (const std::string& s : {std::string(), std::string("plain"), every_ascii,
                               std::string("caf\xc3\xa9 \xe2\x82\xac")}) {
    std::string out = "prefix";
    internal::AppendJsonString(out, s);
    EXPECT_EQ(out, "prefix" + json::serialize(json::string(s)));
  }
}

}  // namespace
}  // namespace ward::api
