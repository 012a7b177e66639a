#include "audit/chain.h"

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/file_device.h"
#include "audit/test_util.h"
#include "core/testing/fake_clock.h"
#include "core/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace ward::audit {
namespace {

using testing::Join;
using testing::Lines;

// A closed audit file of 10 records with checkpoints every 3 records:
// lines 1-3 records, 4 cp, 5-7 records, 8 cp, 9-11 records, 12 cp, 13 record, 14 cp (close).
class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FileDeviceOptions options;
    options.checkpoint_every = 3;
    auto dev = FileDevice::Open(dir_.Join("audit.log"), testing::TestHasher(),
                                testing::TestSigner(), clock_, options);
    ASSERT_TRUE(dev.ok()) << dev.status();
    for (int i = 1; i <= 10; ++i) {
      ASSERT_TRUE((*dev)->Append(absl::StrCat("{\"type\":\"request\",\"n\":", i, "}")).ok());
    }
    ASSERT_TRUE((*dev)->Close().ok());
    text_ = testing::ReadAll(dir_.Join("audit.log"));
    lines_ = Lines(text_);
    ASSERT_EQ(lines_.size(), 14u) << text_;
  }

  VerifyReport Verify(const std::string& text, bool with_key = true) {
    VerifyOptions o;
    if (with_key) o.public_key_hex = testing::TestSigner().public_key_hex();
    auto r = VerifyLog(text, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : VerifyReport{};
  }

  core::TempDir dir_;
  core::FakeClock clock_;
  std::string text_;
  std::vector<std::string> lines_;
};

TEST_F(VerifyTest, IntactFileVerifiesWithAndWithoutKey) {
  VerifyReport r = Verify(text_);
  EXPECT_FALSE(r.problem.has_value()) << r.problem->message;
  EXPECT_EQ(r.lines, 14u);
  EXPECT_EQ(r.records, 10u);
  EXPECT_EQ(r.checkpoints, 4u);
  EXPECT_EQ(r.checkpoints_verified, 4u);
  EXPECT_EQ(r.last_checkpoint_line, 14u);
  VerifyReport nokey = Verify(text_, false);
  EXPECT_FALSE(nokey.problem.has_value());
  EXPECT_EQ(nokey.checkpoints_verified, 0u);
}

TEST_F(VerifyTest, LinesCarrySeqAndPrevHash) {
  boost::json::value first = boost::json::parse(lines_[0]);
  EXPECT_EQ(first.at("seq"), 1);
  EXPECT_EQ(first.at("prev_hash").as_string(), kGenesisHash);
  EXPECT_EQ(first.at("n"), 1);
  boost::json::value second = boost::json::parse(lines_[1]);
  EXPECT_EQ(second.at("prev_hash").as_string(), LineHash(lines_[0]));
  boost::json::value cp = boost::json::parse(lines_[3]);
  EXPECT_EQ(cp.at("type"), "checkpoint");
  EXPECT_EQ(cp.at("seq"), 4);
  EXPECT_EQ(cp.at("hash").as_string(), LineHash(lines_[2]));
}

TEST_F(VerifyTest, ModifiedRecordIsReportedByLine) {
  std::vector<std::string> l = lines_;
  l[5].replace(l[5].find("\"n\":5"), 5, "\"n\":50");  // line 6 holds record n=5
  VerifyReport r = Verify(Join(l), false);
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kModified);
  EXPECT_EQ(r.problem->line, 6u) << r.problem->message;
}

TEST_F(VerifyTest, ModifiedLastRecordIsCaughtByTheFinalCheckpoint) {
  std::vector<std::string> l = lines_;
  l[12].replace(l[12].find("\"n\":10"), 6, "\"n\":11");  // line 13, then the close checkpoint
  VerifyReport r = Verify(Join(l), false);
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kModified);
  EXPECT_EQ(r.problem->line, 13u) << r.problem->message;
}

TEST_F(VerifyTest, RemovedRecordIsReported) {
  std::vector<std::string> l = lines_;
  l.erase(l.begin() + 5);  // line 6 (seq 6)
  VerifyReport r = Verify(Join(l), false);
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kRemoved);
  EXPECT_EQ(r.problem->line, 6u) << r.problem->message;
}

TEST_F(VerifyTest, RemovedFirstRecordIsReported) {
  std::vector<std::string> l = lines_;
  l.erase(l.begin());
  VerifyReport r = Verify(Join(l), false);
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kRemoved);
  EXPECT_EQ(r.problem->line, 1u) << r.problem->message;
}

TEST_F(VerifyTest, InsertedRecordIsReported) {
  std::vector<std::string> l = lines_;
  l.insert(l.begin() + 5, l[1]);  // a copy of line 2 becomes line 6
  VerifyReport r = Verify(Join(l), false);
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kInserted);
  EXPECT_EQ(r.problem->line, 6u) << r.problem->message;

  std::vector<std::string> forged = lines_;
  forged.insert(forged.begin() + 5, R"({"type":"request","n":99,"seq":6,"prev_hash":"ab"})");
  r = Verify(Join(forged), false);
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kInserted);
  EXPECT_EQ(r.problem->line, 6u) << r.problem->message;
}

TEST_F(VerifyTest, ReorderedRecordsAreReported) {
  std::vector<std::string> l = lines_;
  std::swap(l[5], l[6]);  // lines 6 and 7
  VerifyReport r = Verify(Join(l), false);
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kReordered);
  EXPECT_EQ(r.problem->line, 6u) << r.problem->message;
}

TEST_F(VerifyTest, TruncatedMidLineIsReported) {
  std::string cut = text_.substr(0, text_.size() - 20);
  VerifyReport r = Verify(cut, false);
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kTruncated);
  EXPECT_EQ(r.problem->line, 14u);
}

TEST_F(VerifyTest, TruncatedTailAfterLastCheckpointIsReported) {
  std::vector<std::string> l = lines_;
  l.pop_back();  // the close checkpoint: record 13 is now unsigned
  VerifyReport r = Verify(Join(l));
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kOpenTail);
  EXPECT_EQ(r.problem->line, 13u) << r.problem->message;
  VerifyOptions live;
  live.allow_open_tail = true;
  auto ok = VerifyLog(Join(l), live);
  ASSERT_TRUE(ok.ok());
  EXPECT_FALSE(ok->problem.has_value());
}

TEST_F(VerifyTest, RewrittenChainIsCaughtOnlyWithTheKey) {
  // An attacker edits record 1 and recomputes every hash after it; without the private key
  // the checkpoint signatures cannot follow.
  std::vector<std::string> l;
  std::string prev(kGenesisHash);
  for (size_t i = 0; i < lines_.size(); ++i) {
    boost::json::object o = boost::json::parse(lines_[i]).as_object();
    if (i == 0) o["n"] = 100;
    o[o.at("type") == "checkpoint" ? "hash" : "prev_hash"] = prev;
    l.push_back(boost::json::serialize(o));
    prev = LineHash(l.back());
  }
  EXPECT_FALSE(Verify(Join(l), false).problem.has_value());
  VerifyReport r = Verify(Join(l));
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kBadSignature);
  EXPECT_EQ(r.problem->line, 4u);
}

TEST_F(VerifyTest, WrongKeyFailsSignatures) {
  VerifyOptions o;
  o.public_key_hex = testing::TestSigner('x').public_key_hex();
  auto r = VerifyLog(text_, o);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->problem.has_value());
  EXPECT_EQ(r->problem->kind, ProblemKind::kBadSignature);
}

TEST_F(VerifyTest, MalformedKeyIsAnError) {
  VerifyOptions o;
  o.public_key_hex = "abc";
  EXPECT_EQ(VerifyLog(text_, o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(VerifyTest, FileCutBackToACheckpointDoesNotPassAsRotated) {
  // Lines 4.. start with an ordinary checkpoint: the chain must start at seq 1.
  std::vector<std::string> l(lines_.begin() + 3, lines_.end());
  VerifyReport r = Verify(Join(l), false);
  ASSERT_TRUE(r.problem.has_value());
  EXPECT_EQ(r.problem->kind, ProblemKind::kRemoved) << r.problem->message;
  EXPECT_EQ(r.problem->line, 1u);
}

TEST_F(VerifyTest, CheckpointRelabelledAsRotationFailsUnderTheKey) {
  std::vector<std::string> l(lines_.begin() + 3, lines_.end());
  size_t at = l[0].find("\"checkpoint\"");
  ASSERT_NE(at, std::string::npos);
  l[0].replace(at, 12, "\"rotation\"");
  // The next line links to the original checkpoint's bytes: relink it so that only the
  // signature can tell.
  auto head = HeadAfter(l[0]);
  ASSERT_TRUE(head.ok());
  boost::json::object rec = boost::json::parse(l[1]).as_object();
  rec.erase("seq");
  rec.erase("prev_hash");
  l[1] = ChainLine(boost::json::serialize(rec), head->seq + 1, head->hash);
  l.resize(2);
  VerifyOptions open_tail;
  open_tail.allow_open_tail = true;
  auto nokey = VerifyLog(Join(l), open_tail);
  ASSERT_TRUE(nokey.ok());
  EXPECT_FALSE(nokey->problem.has_value());  // the hash chain alone cannot tell
  open_tail.public_key_hex = testing::TestSigner().public_key_hex();
  auto keyed = VerifyLog(Join(l), open_tail);
  ASSERT_TRUE(keyed.ok());
  ASSERT_TRUE(keyed->problem.has_value());
  EXPECT_EQ(keyed->problem->kind, ProblemKind::kBadSignature);
  EXPECT_EQ(keyed->problem->line, 1u);
}

TEST_F(VerifyTest, RotatedFileStartsWhereThePreviousEnded) {
  VerifyReport first = Verify(text_);
  ASSERT_FALSE(first.problem.has_value());
  EXPECT_EQ(first.first_seq, 1u);
  EXPECT_EQ(first.first_link, kGenesisHash);
  EXPECT_EQ(first.last_seq, 14u);
  EXPECT_EQ(first.last_hash, LineHash(lines_.back()));
  std::string time = "2026-11-22T12:00:00Z";
  auto sig = testing::TestSigner().Sign(RotationMessage(15, first.last_hash, time));
  ASSERT_TRUE(sig.ok());
  std::string rotation = RotationLine(15, first.last_hash, time, *sig);
  std::string record = ChainLine(R"({"type":"request"})", 16, LineHash(rotation));
  auto cp_sig = testing::TestSigner().Sign(CheckpointMessage(17, LineHash(record), time));
  ASSERT_TRUE(cp_sig.ok());
  std::string cp = CheckpointLine(17, LineHash(record), time, *cp_sig);
  VerifyReport second = Verify(Join({rotation, record, cp}));
  ASSERT_FALSE(second.problem.has_value()) << second.problem->message;
  EXPECT_TRUE(second.starts_with_rotation);
  EXPECT_EQ(second.records, 1u);
  EXPECT_EQ(second.checkpoints_verified, 2u);
  EXPECT_TRUE(FollowsFrom(first, second));
  // A rotation line carrying the signature of an ordinary checkpoint at the same place is
  // refused under the key.
  auto as_checkpoint = testing::TestSigner().Sign(CheckpointMessage(15, first.last_hash, time));
  ASSERT_TRUE(as_checkpoint.ok());
  std::string forged = RotationLine(15, first.last_hash, time, *as_checkpoint);
  VerifyReport bad = Verify(Join({forged}));
  ASSERT_TRUE(bad.problem.has_value());
  EXPECT_EQ(bad.problem->kind, ProblemKind::kBadSignature);
}

TEST(PrehashedRecordTest, AppendsTheChainLineAndReturnsItsHash) {
  std::vector<std::string> records = {"{}", R"({"type":"request"})"};
  // Record lengths on both sides of SHA-256's 64-byte blocks and its 55/56-byte padding
  // boundary, up to realistic audit records (about 1.3 KB).
  for (size_t pad = 0; pad < 140; ++pad) {
    records.push_back(absl::StrCat(R"({"type":"request","pad":")", std::string(pad, 'x'), "\"}"));
  }
  records.push_back(absl::StrCat(R"({"type":"response","pad":")", std::string(1400, 'y'), "\"}"));
  const std::string other_hash = LineHash("some earlier line");
  for (const std::string& record : records) {
    for (uint64_t seq : {uint64_t{1}, uint64_t{9}, uint64_t{10}, uint64_t{1} << 63, ~uint64_t{0}}) {
      for (const std::string& prev : {std::string(kGenesisHash), other_hash}) {
        const std::string line = ChainLine(record, seq, prev);
        PrehashedRecord prepared(record);
        const size_t bound = prepared.LineSizeBound();
        std::string out = "earlier lines\n";
        const std::string hash = std::move(prepared).AppendLine(seq, prev, out);
        EXPECT_EQ(out, "earlier lines\n" + line + "\n") << record << " seq " << seq;
        EXPECT_EQ(hash, LineHash(line)) << record << " seq " << seq;
        EXPECT_GE(bound, line.size() + 1) << record << " seq " << seq;
      }
    }
  }
}

TEST(VerifyFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(VerifyFile("/nonexistent/audit.log", {}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ward::audit
