// Crash safety under random SIGKILL: a dev server on a persistent data directory takes a mixed
// write load from several clients (KV put, patch, metadata put, delete, token create) and is
// killed with SIGKILL at a random moment, 50 times. After every restart each acknowledged write
// must be there exactly (value and version), and the store must be consistent: current_version
// is the highest version that exists, versions have no gaps, and created tokens work. A write
// that was in flight at the kill (no reply) may or may not have happened, but if it happened it
// happened whole.
//
// Randomness comes from one seed, printed at the start (set WARD_CRASH_SEED to replay the op
// mix and kill delays; thread timing still varies). WARD_CRASH_ROUNDS overrides the 50 rounds.

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tests/integration/ward_process.h"

namespace ward::testing {
namespace {

namespace json = boost::json;

constexpr char kRoot[] = "crash-root";
constexpr int kWorkers = 4;
constexpr int kPathsPerWorker = 3;

// What one acknowledged (or in-flight) operation did to a secret.
enum class OpKind { kPut, kPatch, kMetadata, kDelete, kToken };

// The expected state of one secret, from the acknowledged operations of the worker owning it.
struct SecretModel {
  std::map<uint64_t, json::object> versions;  // acknowledged version -> its data
  std::set<uint64_t> deleted;                 // acknowledged soft deletes
  uint64_t current = 0;                       // highest acknowledged version
  std::optional<json::object> custom;         // last acknowledged custom_metadata
  // The operation in flight when the server died, if any (it may or may not have happened).
  std::optional<OpKind> in_flight;
  json::object in_flight_data;  // its data (put/patch) or custom_metadata
};

struct RoundModel {
  std::map<std::string, SecretModel> secrets;  // by path under secret/
  std::vector<std::string> tokens;             // acknowledged token creates
  int acks = 0;
};

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

// One worker's load: random operations on its own secrets until a request fails (the server
// was killed). Operations on one secret are sequential, so the model is exact up to the one
// operation that got no reply.
void RunWorker(WardProcess& server, const std::string& prefix, uint64_t seed,
               std::map<std::string, SecretModel>& secrets, std::vector<std::string>& tokens,
               std::atomic<int>& acks) {
  std::mt19937_64 rng(seed);
  std::unique_ptr<net::HttpClient> client = server.Client();
  for (int i = 0;; ++i) {
    const std::string path = prefix + "/s" + std::to_string(rng() % kPathsPerWorker);
    SecretModel& s = secrets[path];
    const bool live = s.current > 0 && !s.deleted.contains(s.current);
    const std::string value = prefix + "-" + std::to_string(i);
    int dice = static_cast<int>(rng() % 100);
    OpKind kind = dice < 40   ? OpKind::kPut
                  : dice < 60 ? OpKind::kPatch
                  : dice < 75 ? OpKind::kMetadata
                  : dice < 85 ? OpKind::kDelete
                              : OpKind::kToken;
    if ((kind == OpKind::kPatch || kind == OpKind::kDelete) && !live) kind = OpKind::kPut;

    Reply r;
    json::object data;
    switch (kind) {
      case OpKind::kPut:
        data["v"] = value;
        r = Call(*client, "PUT", "secret/data/" + path, kRoot,
                 json::serialize(json::object{{"data", data}}));
        break;
      case OpKind::kPatch:
        data = s.versions.at(s.current);
        data["p"] = value;
        r = Call(*client, "PATCH", "secret/data/" + path, kRoot,
                 json::serialize(json::object{{"data", json::object{{"p", value}}}}),
                 "application/merge-patch+json");
        break;
      case OpKind::kMetadata:
        data["m"] = value;
        r = Call(*client, "POST", "secret/metadata/" + path, kRoot,
                 json::serialize(json::object{{"custom_metadata", data}}));
        break;
      case OpKind::kDelete:
        r = Call(*client, "DELETE", "secret/data/" + path, kRoot);
        break;
      case OpKind::kToken:
        r = Call(*client, "POST", "auth/token/create", kRoot, R"({"policies":["default"]})");
        break;
    }
    const bool ok = (kind == OpKind::kPut || kind == OpKind::kPatch || kind == OpKind::kToken)
                        ? r.status == 200
                        : r.status == 204;
    if (!ok) {
      // The server died (or is dying): this operation's outcome is unknown. A reply that is
      // neither a success nor a transport failure would be a bug.
      if (r.status != -1) ADD_FAILURE() << "unexpected reply " << r.status << ": " << r.body;
      if (kind != OpKind::kToken) {
        s.in_flight = kind;
        s.in_flight_data = data;
      }
      return;
    }
    ++acks;
    json::value body = r.status == 200 ? Parse(r.body) : json::value();
    switch (kind) {
      case OpKind::kPut:
      case OpKind::kPatch: {
        uint64_t version = body.at("data").at("version").to_number<uint64_t>();
        EXPECT_EQ(version, s.current + 1) << path;  // versions are consecutive
        s.current = version;
        s.versions[version] = data;
        break;
      }
      case OpKind::kMetadata:
        s.custom = data;
        break;
      case OpKind::kDelete:
        s.deleted.insert(s.current);
        break;
      case OpKind::kToken:
        tokens.push_back(std::string(body.at("auth").at("client_token").as_string()));
        break;
    }
  }
}

// Checks one secret against its model on a restarted server.
void VerifySecret(net::HttpClient& client, const std::string& path, const SecretModel& s) {
  SCOPED_TRACE(path);
  Reply meta = Call(client, "GET", "secret/metadata/" + path, kRoot);
  if (meta.status == 404) {
    // Only possible if nothing about the secret was acknowledged.
    EXPECT_TRUE(s.versions.empty() && !s.custom.has_value()) << "lost: " << meta.body;
    return;
  }
  ASSERT_EQ(meta.status, 200) << meta.body;
  const json::value parsed = Parse(meta.body);
  const json::object& m = parsed.at("data").as_object();
  const uint64_t current = m.at("current_version").to_number<uint64_t>();
  const bool wrote_in_flight = s.in_flight == OpKind::kPut || s.in_flight == OpKind::kPatch;
  if (current != s.current) {
    EXPECT_TRUE(wrote_in_flight && current == s.current + 1)
        << "current_version " << current << ", acknowledged " << s.current;
  }

  // Versions: contiguous up to current_version (older ones only trimmed by max_versions 10).
  const json::object& versions = m.at("versions").as_object();
  std::set<uint64_t> present;
  for (const auto& kv : versions) present.insert(std::stoull(std::string(kv.key())));
  if (current > 0) {
    const uint64_t oldest = current > 10 ? current - 9 : 1;
    std::set<uint64_t> want;
    for (uint64_t v = oldest; v <= current; ++v) want.insert(v);
    EXPECT_EQ(present, want) << meta.body;
  } else {
    EXPECT_TRUE(present.empty()) << meta.body;
  }
  // Nothing readable beyond current_version.
  EXPECT_EQ(
      Call(client, "GET", "secret/data/" + path + "?version=" + std::to_string(current + 1), kRoot)
          .status,
      404);

  // Every acknowledged version still kept has its exact data and deletion state.
  for (uint64_t v : present) {
    const json::object& info = versions.at(std::to_string(v)).as_object();
    const bool deleted = !info.at("deletion_time").as_string().empty();
    const bool acknowledged = s.versions.contains(v);
    if (acknowledged) {
      const bool in_flight_delete = s.in_flight == OpKind::kDelete && v == s.current;
      if (!in_flight_delete) {
        EXPECT_EQ(deleted, s.deleted.contains(v)) << "version " << v;
      }
    }
    Reply read =
        Call(client, "GET", "secret/data/" + path + "?version=" + std::to_string(v), kRoot);
    if (deleted) {
      EXPECT_EQ(read.status, 404) << read.body;
      continue;
    }
    ASSERT_EQ(read.status, 200) << "version " << v << ": " << read.body;
    const json::value read_body = Parse(read.body);
    const json::value& got = read_body.at("data").at("data");
    if (acknowledged) {
      EXPECT_EQ(got, json::value(s.versions.at(v))) << "version " << v;
    } else {
      // The in-flight write, applied whole.
      EXPECT_EQ(got, json::value(s.in_flight_data)) << "in-flight version " << v;
    }
  }

  // custom_metadata: the last acknowledged one, or the in-flight one.
  json::object custom;
  if (const json::value* c = m.if_contains("custom_metadata"); c != nullptr && c->is_object()) {
    custom = c->as_object();
  }
  json::object expected = s.custom.value_or(json::object{});
  if (custom != expected) {
    EXPECT_TRUE(s.in_flight == OpKind::kMetadata && custom == s.in_flight_data)
        << "custom_metadata " << json::serialize(custom) << ", acknowledged "
        << json::serialize(expected);
  }
}

void VerifyRound(WardProcess& server, const RoundModel& round) {
  std::unique_ptr<net::HttpClient> client = server.Client();
  for (const auto& [path, secret] : round.secrets) VerifySecret(*client, path, secret);
  for (const std::string& token : round.tokens) {
    Reply r = Call(*client, "GET", "auth/token/lookup-self", token);
    EXPECT_EQ(r.status, 200) << "acknowledged token unusable: " << r.body;
  }
}

TEST(CrashTest, AcknowledgedWritesSurviveRandomSigkill) {
  const uint64_t seed = static_cast<uint64_t>(EnvInt(
      "WARD_CRASH_SEED",
      static_cast<int>(std::chrono::system_clock::now().time_since_epoch().count() & 0x7fffffff)));
  const int rounds = EnvInt("WARD_CRASH_ROUNDS", 50);
  std::cout << "crash test seed: " << seed << " (replay with WARD_CRASH_SEED=" << seed << ")\n";
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);

  core::TempDir dir;
  const std::string data = dir.Join("data");
  std::vector<RoundModel> history;
  const auto started = std::chrono::steady_clock::now();
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round) + ", seed " + std::to_string(seed));
    auto server = WardProcess::StartDev(data, {std::string("--dev-root-token-id=") + kRoot});
    ASSERT_TRUE(server.ok()) << server.status();
    // What the previous run acknowledged before it was killed.
    if (!history.empty()) VerifyRound(**server, history.back());
    if (::testing::Test::HasFailure()) return;

    RoundModel model;
    std::vector<std::map<std::string, SecretModel>> secrets(kWorkers);
    std::vector<std::vector<std::string>> tokens(kWorkers);
    std::atomic<int> acks{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      std::string prefix = "crash/r" + std::to_string(round) + "w" + std::to_string(w);
      uint64_t worker_seed = rng();
      workers.emplace_back([&, w, prefix, worker_seed] {
        RunWorker(**server, prefix, worker_seed, secrets[w], tokens[w], acks);
      });
    }
    const int delay_ms = 20 + static_cast<int>(rng() % 381);  // 20..400 ms
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    (*server)->Kill();
    for (std::thread& t : workers) t.join();
    for (int w = 0; w < kWorkers; ++w) {
      model.secrets.merge(secrets[w]);
      model.tokens.insert(model.tokens.end(), tokens[w].begin(), tokens[w].end());
    }
    model.acks = acks;
    history.push_back(std::move(model));
  }

  // A last restart: everything of every round is still there.
  auto server = WardProcess::StartDev(data, {std::string("--dev-root-token-id=") + kRoot});
  ASSERT_TRUE(server.ok()) << server.status();
  int total_acks = 0;
  for (const RoundModel& round : history) {
    VerifyRound(**server, round);
    total_acks += round.acks;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "crash test: " << rounds << " rounds, " << total_acks << " acknowledged operations, "
            << seconds << " s\n";
  // The kills must land on a live load, not on an idle server.
  EXPECT_GE(total_acks, rounds * 5);
}

}  // namespace
}  // namespace ward::testing
