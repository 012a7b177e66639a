#include "audit/record.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ward::audit {
namespace {

namespace json = boost::json;

Hasher TestHasher() { return Hasher(core::SecureBytes(std::string(32, 'k'))); }

std::string H(std::string_view v) { return *TestHasher().Hash(v); }

TEST(HasherTest, HashIsPrefixedHexHmacAndDependsOnSalt) {
  std::string h = H("s3cret");
  ASSERT_TRUE(absl::StartsWith(h, "hmac-sha256:"));
  EXPECT_EQ(h.size(), 12u + 64u);
  EXPECT_EQ(h, H("s3cret"));
  EXPECT_NE(h, H("s3cret2"));
  Hasher other(core::SecureBytes(std::string(32, 'x')));
  EXPECT_NE(*other.Hash("s3cret"), h);
}

TEST(HasherTest, RemembersTextUnderItsKey) {
  const Hasher hasher = TestHasher();
  std::string out = "x";
  EXPECT_FALSE(hasher.AppendRemembered("data:1", out));
  EXPECT_EQ(out, "x");
  hasher.Remember("data:1", "{\"k\":\"h\"}");
  EXPECT_TRUE(hasher.AppendRemembered("data:1", out));
  EXPECT_EQ(out, "x{\"k\":\"h\"}");
  hasher.Remember("data:1", "[]");  // replaces
  out.clear();
  EXPECT_TRUE(hasher.AppendRemembered("data:1", out));
  EXPECT_EQ(out, "[]");
  hasher.Remember("data:2", "{}");
  EXPECT_EQ(hasher.RememberedForTest(), 2u);
}

TEST(HasherTest, ForgetsTheOlderHalfWhenFullButKeepsWhatIsInUse) {
  const Hasher hasher = TestHasher();
  constexpr size_t kHalf = Hasher::kMemoCapacity / 2;
  auto held = std::make_shared<const std::string>("ciphertext");
  std::weak_ptr<const std::string> watch = held;
  hasher.Remember("data:held", "text", held);
  std::string out;
  EXPECT_TRUE(hasher.AppendRemembered("data:held", out, held));
  held.reset();
  EXPECT_TRUE(watch.expired());  // remembering does not keep it alive

  hasher.Remember("hot", "h");
  for (size_t i = 2; i < kHalf; ++i) hasher.Remember(absl::StrCat("k", i), "v");
  EXPECT_EQ(hasher.RememberedForTest(), kHalf);
  hasher.Remember("k2", "again");  // an existing key does not fill the generation
  EXPECT_EQ(hasher.RememberedForTest(), kHalf);
  hasher.Remember("x", "v");  // the newer generation was full: it becomes the older one
  EXPECT_EQ(hasher.RememberedForTest(), kHalf + 1);

  out.clear();
  EXPECT_TRUE(hasher.AppendRemembered("hot", out));  // used: carried into the newer generation
  EXPECT_EQ(out, "h");
  for (size_t i = 0; i < kHalf; ++i) hasher.Remember(absl::StrCat("y", i), "v");
  // Two rotations later everything not used since is forgotten; "hot" is still there.
  out.clear();
  EXPECT_TRUE(hasher.AppendRemembered("hot", out));
  EXPECT_EQ(out, "h");
  EXPECT_FALSE(hasher.AppendRemembered("k3", out));
  EXPECT_FALSE(hasher.AppendRemembered("data:held", out));
  EXPECT_LE(hasher.RememberedForTest(), Hasher::kMemoCapacity);
}

// Threads that remember and look up overlapping keys while the generations rotate under them
// only ever get back the text remembered for the key they asked for.
TEST(HasherTest, ConcurrentUseAcrossRotationsReturnsEachKeysOwnText) {
  const Hasher hasher = TestHasher();
  constexpr int kThreads = 4;
  constexpr int kKeys = static_cast<int>(Hasher::kMemoCapacity);  // more than a generation
  std::atomic<int> wrong{0}, hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string out;
      for (int i = 0; i < 2 * kKeys; ++i) {
        const int k = (i * 7 + t * 1000) % kKeys;  // keys shared between threads
        const std::string key = absl::StrCat("k", k);
        out.clear();
        if (hasher.AppendRemembered(key, out)) {
          hits.fetch_add(1);
          if (out != absl::StrCat("text of ", k)) wrong.fetch_add(1);
        } else {
          hasher.Remember(key, absl::StrCat("text of ", k));
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(hits.load(), 0);
  EXPECT_LE(hasher.RememberedForTest(), Hasher::kMemoCapacity);
}

TEST(HasherTest, BoundsTheBytesRememberedAndSkipsHugeEntries) {
  const Hasher hasher = TestHasher();
  hasher.Remember("huge", std::string(Hasher::kMemoMaxEntryBytes + 1, 'h'));
  EXPECT_EQ(hasher.RememberedForTest(), 0u);
  const std::string text(Hasher::kMemoMaxEntryBytes / 2, 't');
  const size_t per_generation = (Hasher::kMemoMaxBytes / 2) / (text.size() + 4);
  for (size_t i = 0; i < 3 * per_generation; ++i) {
    hasher.Remember(absl::StrCat("k", 1000 + i), text);
    ASSERT_LE(hasher.RememberedForTest() * (text.size() + 5), Hasher::kMemoMaxBytes);
  }
  std::string out;
  EXPECT_FALSE(hasher.AppendRemembered("k1000", out));  // the oldest went first
  EXPECT_TRUE(hasher.AppendRemembered(absl::StrCat("k", 1000 + 3 * per_generation - 1), out));
}

TEST(RecordTest, HashStringsReplacesEveryStringAndKeepsOtherValues) {
  json::value v = json::parse(
      R"({"a":"x","n":5,"b":true,"z":null,"list":["y",2,{"deep":"w"}],"obj":{"k":"v"}})");
  ASSERT_TRUE(HashStrings(TestHasher(), v).ok());
  const json::object& o = v.as_object();
  EXPECT_EQ(o.at("a"), json::value(H("x")));
  EXPECT_EQ(o.at("n"), 5);
  EXPECT_EQ(o.at("b"), true);
  EXPECT_TRUE(o.at("z").is_null());
  EXPECT_EQ(o.at("list").as_array()[0], json::value(H("y")));
  EXPECT_EQ(o.at("list").as_array()[1], 2);
  EXPECT_EQ(o.at("list").as_array()[2].at("deep"), json::value(H("w")));
  EXPECT_EQ(o.at("obj").at("k"), json::value(H("v")));  // keys stay, values are hashed
}

AuthInfo TestAuth() {
  AuthInfo a;
  a.known = true;
  a.client_token = "hvs.tokenvalue";
  a.accessor = "accessorvalue";
  a.display_name = "token-app";
  a.policies = {"default", "app"};
  a.token_type = "service";
  return a;
}

RequestInfo TestRequest() {
  RequestInfo r;
  r.id = "req-1";
  r.operation = "update";
  r.path = "secret/data/app";
  r.mount_type = "kv";
  r.mount_point = "secret/";
  r.data = json::parse(R"({"data":{"password":"hunter2","pin":1234}})");
  r.remote_address = "127.0.0.1";
  r.remote_port = 5555;
  r.client_token = "hvs.tokenvalue";
  r.client_token_accessor = "accessorvalue";
  return r;
}

TEST(RecordTest, RequestRecordHashesTokensAndDataAndHasVaultShape) {
  absl::Time t = absl::FromUnixSeconds(1700000000);
  auto rec = BuildRequestRecord(TestHasher(), t, TestAuth(), TestRequest());
  ASSERT_TRUE(rec.ok()) << rec.status();
  std::string text = json::serialize(*rec);
  for (const char* plain : {"hvs.tokenvalue", "accessorvalue", "hunter2"}) {
    EXPECT_FALSE(absl::StrContains(text, plain)) << plain << " in " << text;
  }
  EXPECT_EQ(rec->at("type"), "request");
  EXPECT_TRUE(absl::StartsWith(std::string(rec->at("time").as_string()), "2023-11-14T22:13:20"));
  EXPECT_EQ(rec->at("error"), "");
  const json::object& auth = rec->at("auth").as_object();
  EXPECT_EQ(auth.at("client_token"), json::value(H("hvs.tokenvalue")));
  EXPECT_EQ(auth.at("accessor"), json::value(H("accessorvalue")));
  EXPECT_EQ(auth.at("display_name"), "token-app");
  EXPECT_EQ(auth.at("policies"), json::parse(R"(["default","app"])"));
  const json::object& req = rec->at("request").as_object();
  EXPECT_EQ(req.at("id"), "req-1");
  EXPECT_EQ(req.at("operation"), "update");
  EXPECT_EQ(req.at("path"), "secret/data/app");
  EXPECT_EQ(req.at("mount_type"), "kv");
  EXPECT_EQ(req.at("remote_address"), "127.0.0.1");
  EXPECT_EQ(req.at("client_token"), json::value(H("hvs.tokenvalue")));
  EXPECT_EQ(req.at("client_token_accessor"), json::value(H("accessorvalue")));
  EXPECT_EQ(req.at("data").at("data").at("password"), json::value(H("hunter2")));
  EXPECT_EQ(req.at("data").at("data").at("pin"), 1234);
}

TEST(RecordTest, UnknownTokenGivesEmptyAuthButHashedRequestToken) {
  AuthInfo none;
  RequestInfo r = TestRequest();
  r.client_token_accessor.clear();
  auto rec = BuildRequestRecord(TestHasher(), absl::UnixEpoch(), none, r);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->at("auth").as_object().empty());
  EXPECT_EQ(rec->at("request").at("client_token"), json::value(H("hvs.tokenvalue")));
  EXPECT_EQ(rec->at("request").at("client_token_accessor"), "");
}

TEST(RecordTest, ResponseRecordHashesDataAndIssuedToken) {
  ResponseInfo resp;
  resp.status_code = 200;
  resp.data = json::parse(R"({"secret_id":"sid-plain","ttl":60,"nested":["unseal-key"]})");
  resp.auth = json::parse(
      R"({"client_token":"hvs.newtoken","accessor":"newaccessor","policies":["default"]})");
  resp.warnings = {"capped"};
  auto rec = BuildResponseRecord(TestHasher(), absl::UnixEpoch(), TestAuth(), TestRequest(), resp);
  ASSERT_TRUE(rec.ok());
  std::string text = json::serialize(*rec);
  for (const char* plain : {"sid-plain", "hvs.newtoken", "newaccessor", "unseal-key", "hunter2"}) {
    EXPECT_FALSE(absl::StrContains(text, plain)) << plain;
  }
  EXPECT_EQ(rec->at("type"), "response");
  const json::object& r = rec->at("response").as_object();
  EXPECT_EQ(r.at("status_code"), 200);
  EXPECT_EQ(r.at("data").at("secret_id"), json::value(H("sid-plain")));
  EXPECT_EQ(r.at("data").at("ttl"), 60);
  EXPECT_EQ(r.at("auth").at("client_token"), json::value(H("hvs.newtoken")));
  EXPECT_EQ(r.at("auth").at("accessor"), json::value(H("newaccessor")));
  EXPECT_EQ(r.at("auth").at("policies"), json::parse(R"(["default"])"));
  EXPECT_EQ(rec->at("request").at("path"), "secret/data/app");
}

TEST(RecordTest, ResponseErrorIsRecorded) {
  ResponseInfo resp;
  resp.status_code = 403;
  resp.error = "permission denied";
  auto rec = BuildResponseRecord(TestHasher(), absl::UnixEpoch(), AuthInfo{}, TestRequest(), resp);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->at("error"), "permission denied");
  EXPECT_FALSE(rec->at("response").as_object().contains("data"));
}

TEST(RecordTest, RecordThatIsNotValidJsonIsAnErrorNotAnException) {
  RequestInfo r = TestRequest();
  r.path = "secret/data/\xff";  // not UTF-8: written through, but no JSON parser accepts it
  auto rec = BuildRequestRecord(TestHasher(), absl::UnixEpoch(), TestAuth(), r);
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kInternal);
}

TEST(RecordTest, TextRecordsEscapeAndKeepEveryShape) {
  AuthInfo auth = TestAuth();
  auth.display_name = "quote\" backslash\\ newline\n tab\t \x01 caf\xc3\xa9";
  auth.metadata = {{"role \"name\"", "line\nbreak"}, {"empty", ""}};
  auth.policies = {};
  RequestInfo r = TestRequest();
  r.data = json::parse(
      R"({"a":[],"b":{},"c":[1,-2,3.5,true,false,null,"s",[["deep"]]],"d":18446744073709551615})");
  ResponseInfo resp;
  resp.status_code = 200;
  resp.data = json::parse(R"([{"k":"v"},[],{}])");
  resp.auth = json::parse(R"({"client_token":"","accessor":7,"lease_duration":0})");
  resp.error = "bad \"thing\"\n";

  const Hasher hasher = TestHasher();  // outlives the builders
  absl::StatusOr<RecordBuilder> b = RecordBuilder::Create(hasher, absl::UnixEpoch(), auth, r);
  ASSERT_TRUE(b.ok()) << b.status();
  boost::system::error_code ec;
  json::value request = json::parse(b->RequestRecord(), ec);
  ASSERT_FALSE(ec) << b->RequestRecord();
  absl::StatusOr<std::string> response_text = b->ResponseRecord(resp);
  ASSERT_TRUE(response_text.ok());
  json::value response = json::parse(*response_text, ec);
  ASSERT_FALSE(ec) << *response_text;

  const json::object& a = request.at("auth").as_object();
  EXPECT_EQ(a.at("display_name"), json::value(auth.display_name));
  EXPECT_EQ(a.at("metadata"),
            json::parse(R"({"empty":"","role \"name\"":"line\nbreak"})"));
  EXPECT_EQ(a.at("policies"), json::array());
  EXPECT_EQ(request.at("request").at("data"),
            json::parse(absl::StrCat(R"({"a":[],"b":{},"c":[1,-2,3.5,true,false,null,")", H("s"),
                                     R"(",[[")", H("deep"), R"("]]],"d":18446744073709551615})")));
  // The response record repeats the request's parts exactly.
  EXPECT_EQ(response.at("auth"), request.at("auth"));
  EXPECT_EQ(response.at("request"), request.at("request"));
  EXPECT_EQ(response.at("time"), request.at("time"));
  const json::object& out = response.at("response").as_object();
  EXPECT_EQ(out.at("data"), json::parse(absl::StrCat(R"([{"k":")", H("v"), R"("},[],{}])")));
  // Only non-empty string tokens and accessors are hashed; other values stay as they are.
  EXPECT_EQ(out.at("auth"), json::parse(R"({"client_token":"","accessor":7,"lease_duration":0})"));
  EXPECT_EQ(response.at("error"), json::value(resp.error));
  // Built twice from the same inputs, the records are identical text.
  absl::StatusOr<RecordBuilder> again = RecordBuilder::Create(hasher, absl::UnixEpoch(), auth, r);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->RequestRecord(), b->RequestRecord());
}

// A KV read's response: its data given as text (which must outlive it) and what identifies it.
ResponseInfo KvReadResponse(const std::string& data_json, std::shared_ptr<const void> identity,
                            std::string detail) {
  ResponseInfo resp;
  resp.status_code = 200;
  resp.data_json = data_json;
  resp.data_identity = std::move(identity);
  resp.data_detail = std::move(detail);
  return resp;
}

// The "data" of the response record `hasher`'s device writes for `resp`.
json::value ResponseData(const Hasher& hasher, const ResponseInfo& resp) {
  absl::StatusOr<RecordBuilder> b =
      RecordBuilder::Create(hasher, absl::UnixEpoch(), TestAuth(), TestRequest());
  EXPECT_TRUE(b.ok()) << b.status();
  absl::StatusOr<std::string> text = b->ResponseRecord(resp);
  EXPECT_TRUE(text.ok()) << text.status();
  if (!text.ok()) return nullptr;
  return json::parse(*text).at("response").at("data");
}

TEST(RecordTest, DataGivenAsTextIsHashedAsParsedDataIs) {
  const Hasher hasher = TestHasher();
  const std::string text =
      R"({"data":{"password":"hunter2","n":[1,"two"]},"metadata":{"version":3,"deletion_time":""}})";
  ResponseInfo parsed;
  parsed.status_code = 200;
  parsed.data = json::parse(text);
  ResponseInfo given = KvReadResponse(text, nullptr, "");
  EXPECT_EQ(ResponseData(hasher, given), ResponseData(hasher, parsed));
  EXPECT_EQ(ResponseData(hasher, given).at("data").at("password"), json::value(H("hunter2")));
  EXPECT_EQ(ResponseData(hasher, given).at("metadata").at("version"), 3);
}

TEST(RecordTest, IdentifiedDataIsHashedOnceAndRememberedByIdentityAndDetail) {
  const Hasher hasher = TestHasher();
  auto version = std::make_shared<const std::string>("stored version");
  const std::string v1 = R"({"data":{"password":"hunter2"},"metadata":{"version":1}})";
  json::value first = ResponseData(hasher, KvReadResponse(v1, version, R"({"version":1})"));
  EXPECT_EQ(first.at("data").at("password"), json::value(H("hunter2")));
  const size_t remembered = hasher.RememberedForTest();

  // Same identity and detail: the remembered text is used, the given text is not even parsed
  // (which is why equal keys must mean equal data).
  const std::string not_json = "not json";
  EXPECT_EQ(ResponseData(hasher, KvReadResponse(not_json, version, R"({"version":1})")), first);
  EXPECT_EQ(hasher.RememberedForTest(), remembered);

  // Other detail (the metadata changed) or another identity (other stored data): hashed anew.
  const std::string v1b = R"({"data":{"password":"hunter2"},"metadata":{"version":1,"x":"y"}})";
  json::value changed = ResponseData(hasher, KvReadResponse(v1b, version, "other detail"));
  EXPECT_EQ(changed.at("metadata").at("x"), json::value(H("y")));
  auto other_version = std::make_shared<const std::string>("other stored version");
  const std::string v2 = R"({"data":{"password":"swordfish"},"metadata":{"version":1}})";
  json::value other = ResponseData(hasher, KvReadResponse(v2, other_version, R"({"version":1})"));
  EXPECT_EQ(other.at("data").at("password"), json::value(H("swordfish")));
  EXPECT_EQ(hasher.RememberedForTest(), remembered + 2);

  // Without an identity nothing is remembered.
  ResponseData(hasher, KvReadResponse(v2, nullptr, R"({"version":1})"));
  EXPECT_EQ(hasher.RememberedForTest(), remembered + 2);
}

TEST(RecordTest, DataTextThatIsNotJsonFailsTheRecord) {
  const Hasher hasher = TestHasher();
  absl::StatusOr<RecordBuilder> b =
      RecordBuilder::Create(hasher, absl::UnixEpoch(), TestAuth(), TestRequest());
  ASSERT_TRUE(b.ok());
  const std::string truncated = R"({"a":)";
  absl::StatusOr<std::string> text = b->ResponseRecord(KvReadResponse(truncated, nullptr, ""));
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(hasher.RememberedForTest(), 2u);  // the token's parts only
}

TEST(RecordTest, TokenPartsAreRememberedByAccessor) {
  const Hasher hasher = TestHasher();
  AuthInfo auth = TestAuth();
  auth.token_issue_time = absl::FromUnixSeconds(1700000000);
  auth.num_uses = 5;
  auth.token_ttl = 60;
  RequestInfo request = TestRequest();
  auto first = BuildRequestRecord(hasher, absl::UnixEpoch(), auth, request);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->at("auth").at("client_token"), json::value(H("hvs.tokenvalue")));
  EXPECT_EQ(first->at("auth").at("token_issue_time"), "2023-11-14T22:13:20.000000000Z");
  EXPECT_EQ(first->at("request").at("client_token_accessor"), json::value(H("accessorvalue")));
  // auth:<accessor> (the auth section), request:<accessor> (the request's hashed token fields)
  EXPECT_EQ(hasher.RememberedForTest(), 2u);
  auto again = BuildRequestRecord(hasher, absl::UnixEpoch(), auth, request);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(hasher.RememberedForTest(), 2u);

  // The use count and TTL left are written for each request; the rest of the auth section is
  // what was remembered for the accessor (a token's other fields never change).
  auth.num_uses = 4;
  auth.token_ttl = 59;
  auth.display_name = "not read again";
  auto later = BuildRequestRecord(hasher, absl::UnixEpoch(), auth, request);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->at("auth").at("num_uses"), 4);
  EXPECT_EQ(later->at("auth").at("token_ttl"), 59);
  EXPECT_EQ(later->at("auth").at("display_name"), json::value(TestAuth().display_name));
  EXPECT_EQ(later->at("auth").at("client_token"), first->at("auth").at("client_token"));

  // A token given without an accessor (not valid) is hashed, not remembered.
  request.client_token = "hvs.unknown";
  request.client_token_accessor = "";
  auto unknown = BuildRequestRecord(hasher, absl::UnixEpoch(), AuthInfo{}, request);
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->at("request").at("client_token"), json::value(H("hvs.unknown")));
  EXPECT_EQ(unknown->at("request").at("client_token_accessor"), json::value(""));
  EXPECT_EQ(unknown->at("auth"), json::object());
  EXPECT_EQ(hasher.RememberedForTest(), 2u);
}

// ---- review tests (memo lifetime and size) ----

// The memo key AppendHashedDataJson uses for `resp` (record.cc).
std::string DataKey(const ResponseInfo& resp) {
  return absl::StrCat("data:", absl::Hex(reinterpret_cast<uintptr_t>(resp.data_identity.get())),
                      ":", resp.data_detail);
}

// A destroyed or trimmed version (or a disabled mount's) must not stay in memory because a
// device once hashed a read of it: the ciphertext, with the barrier key still in memory, is
// the secret.
TEST(RecordTest, RememberedDataDoesNotKeepTheStoredVersionAlive) {
  const Hasher hasher = TestHasher();
  auto version = std::make_shared<const std::string>(std::string(4096, 'c'));
  std::weak_ptr<const std::string> watch = version;
  const std::string v1 = R"({"data":{"password":"hunter2"},"metadata":{"version":1}})";
  ResponseData(hasher, KvReadResponse(v1, version, R"({"version":1})"));
  version.reset();  // the engine drops the version (destroy, trim, metadata delete, unmount)
  EXPECT_TRUE(watch.expired()) << "the memo keeps the version's ciphertext alive";
}

// What one remembered read costs must be bounded: every string becomes a 76-byte hash, so a
// secret made of short strings grows ~25x in the memo (and each device keeps its own).
TEST(RecordTest, OneRememberedReadIsBoundedInSize) {
  const Hasher hasher = TestHasher();
  std::string data = R"({"data":{"k":[)";
  for (int i = 0; i < 100000; ++i) data.append(i == 0 ? R"("")" : R"(,"")");
  data.append(R"(]},"metadata":{"version":1}})");
  auto version = std::make_shared<const std::string>("ciphertext");
  ResponseInfo resp = KvReadResponse(data, version, R"({"version":1})");
  ResponseData(hasher, resp);
  // Hashed, it is about 7.9 MB: over kMemoMaxEntryBytes, so not remembered at all.
  std::string remembered;
  EXPECT_FALSE(hasher.AppendRemembered(DataKey(resp), remembered, version));
  EXPECT_EQ(hasher.RememberedForTest(), 2u);  // the token's parts only
}

// Two identities at one address (an aliasing shared_ptr, or a member and its object) are
// different data: the memo must compare owners, not addresses.
TEST(RecordTest, AnotherIdentityAtTheSameAddressIsNotMistakenForIt) {
  const Hasher hasher = TestHasher();
  struct Stored {
    std::string ciphertext;
  };
  auto first = std::make_shared<const Stored>(Stored{"one"});
  const std::string v1 = R"({"data":{"password":"hunter2"},"metadata":{"version":1}})";
  ResponseData(hasher, KvReadResponse(v1, first, R"({"version":1})"));
  // Same address, another owner and other data.
  auto owner = std::make_shared<const std::string>("two");
  std::shared_ptr<const void> aliased(owner, static_cast<const void*>(first.get()));
  const std::string v2 = R"({"data":{"password":"swordfish"},"metadata":{"version":1}})";
  json::value second = ResponseData(hasher, KvReadResponse(v2, aliased, R"({"version":1})"));
  EXPECT_EQ(second.at("data").at("password"), json::value(H("swordfish")));
}

}  // namespace
}  // namespace ward::audit
