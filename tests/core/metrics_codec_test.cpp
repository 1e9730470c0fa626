// The metrics stream's one writer and one reader (core/metrics): every record type round-trips
// through a line, extensions become typed fields, unknown fields survive in `extra`, and a store
// that keeps the columns plus stored_extra() writes the same line back.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "record_codec.h"

using namespace moe::metrics;

namespace {

template <typename R>
R parsed(const std::string& line) {
  const ParsedLine p = parse_line(line);
  const auto* record = std::get_if<Record>(&p);
  EXPECT_NE(record, nullptr) << line << (std::holds_alternative<Malformed>(p) ? ": " + std::get<Malformed>(p).reason : "");
  const R* r = record ? std::get_if<R>(record) : nullptr;
  EXPECT_NE(r, nullptr) << line;
  return r ? *r : R{};
}

nlohmann::json fields(const std::string& line) { return nlohmann::json::parse(line); }

}  // namespace

TEST(MetricsCodec, EveryRecordTypeRoundTripsWithItsExtensions) {
  RunStartRecord start;
  start.spec = R"({"name":"t","model":{"d_model":8}})", start.world_size = 4, start.backend = "cpu";
  start.started_at = "2026-12-06T12:00:00Z", start.hosts = R"(["a","b"])";
  start.params = 1234, start.gemm = "ordered GEMM avx512", start.resumed_at = 0;
  const auto s2 = parsed<RunStartRecord>(to_line(start));
  EXPECT_EQ(fields(s2.spec), fields(start.spec));
  EXPECT_EQ(s2.world_size, 4);
  EXPECT_EQ(fields(s2.hosts), fields(start.hosts));
  EXPECT_EQ(s2.params, 1234);
  EXPECT_EQ(s2.gemm, "ordered GEMM avx512");
  EXPECT_EQ(s2.resumed_at, 0);
  EXPECT_FALSE(s2.device.has_value());
  EXPECT_EQ(s2.extra, "");

  StepRecord step;
  step.step = 7, step.loss = 2.5, step.aux_loss = 0.01, step.z_loss = 0.001, step.lr = 3e-3, step.tokens = 1024;
  step.step_ms = 12.25, step.tokens_per_s = 83591.8, step.grad_norm = 0.75, step.val_rank_bytes = {10, 12};
  const auto t2 = parsed<StepRecord>(to_line(step));
  EXPECT_EQ(t2.step, 7);
  EXPECT_EQ(t2.loss, 2.5);
  EXPECT_EQ(t2.tokens_per_s, 83591.8);
  EXPECT_EQ(t2.grad_norm, 0.75);
  EXPECT_FALSE(t2.val_loss.has_value());
  EXPECT_EQ(t2.val_rank_bytes, (std::vector<int64_t>{10, 12}));

  const ExpertLoadRecord load{3, 1, {5, 0, 9}, {1, 0, 2}, {}};
  const auto l2 = parsed<ExpertLoadRecord>(to_line(load));
  EXPECT_EQ(l2.counts, load.counts);
  EXPECT_EQ(l2.dropped, load.dropped);

  A2aRecord a;
  a.step = 3, a.layer = 1, a.phase = "dispatch", a.pass = "fwd", a.rank_us = {1.5, 2.5}, a.rank_bytes = {100, 200};
  a.intra_bytes = 300, a.rank_exposed_us = {1.0, 2.0}, a.rank_counts_us = {0.5, 0.25};
  const auto a2 = parsed<A2aRecord>(to_line(a));
  EXPECT_EQ(a2.rank_us, a.rank_us);
  EXPECT_EQ(a2.intra_bytes, 300);
  EXPECT_FALSE(a2.inter_bytes.has_value());
  EXPECT_EQ(a2.rank_exposed_us, a.rank_exposed_us);
  EXPECT_EQ(a2.rank_counts_us, a.rank_counts_us);
  EXPECT_TRUE(a2.rank_meta_bytes.empty());

  const auto c2 = parsed<CheckpointRecord>(to_line(CheckpointRecord{20, "/ck/step-00000020", {}}));
  EXPECT_EQ(c2.path, "/ck/step-00000020");

  RunEndRecord end;
  end.status = "failed", end.steps = 12, end.reason = "rank 3 was killed by signal 9 (SIGKILL)";
  end.failed_rank = 3, end.signal = 9;
  const auto e2 = parsed<RunEndRecord>(to_line(end));
  EXPECT_EQ(e2.status, "failed");
  EXPECT_EQ(e2.reason, end.reason);
  EXPECT_EQ(e2.failed_rank, 3);
  EXPECT_EQ(e2.signal, 9);
  EXPECT_FALSE(e2.exit_status.has_value());

  PlacementRecord place;
  place.step = 40, place.layer = 2, place.slots_per_rank = 3, place.phy_to_log = {0, 1, 2, 3, 0, 1};
  place.migrated_bytes = 1 << 20, place.migrate_ms = 2.5;
  const auto p2 = parsed<PlacementRecord>(to_line(place));
  EXPECT_EQ(p2.phy_to_log, place.phy_to_log);
  EXPECT_EQ(p2.slots_per_rank, 3);
  EXPECT_EQ(p2.migrated_bytes, 1 << 20);
  EXPECT_EQ(p2.migrate_ms, 2.5);
  EXPECT_EQ(p2.extra, "");
  EXPECT_TRUE(std::holds_alternative<Malformed>(parse_line(R"({"type":"placement","step":0,"layer":0,"slots_per_rank":4,"phy_to_log":[0,1,2]})")));

  const CoselectionRecord cosel{10, 0, 4, {0, 1, 7, 2, 3, 5}, {}};
  const auto k2 = parsed<CoselectionRecord>(to_line(cosel));
  EXPECT_EQ(k2.pairs, cosel.pairs);
  EXPECT_EQ(k2.experts, 4);
  EXPECT_TRUE(std::holds_alternative<Malformed>(parse_line(R"({"type":"coselection","step":0,"layer":0,"experts":4,"pairs":[1,1,3]})")));

  const auto g2 = parsed<EventRecord>(to_line(EventRecord{"warning", 0, "disk almost full"}));
  EXPECT_EQ(g2.kind, "warning");
  EXPECT_EQ(g2.message, "disk almost full");
}

// "type" comes first; optional fields are absent when unset; the contract's required keys are there.
TEST(MetricsCodec, LinesHoldTheContractKeysAndNothingUnset) {
  const std::string line = to_line(CheckpointRecord{1, "p", {}});
  EXPECT_EQ(line.rfind("{\"type\":\"checkpoint\"", 0), 0u) << line;
  RunEndRecord end;
  end.status = "completed", end.steps = 5;
  const auto j = fields(to_line(end));
  EXPECT_FALSE(j.contains("reason"));
  EXPECT_FALSE(j.contains("failed_rank"));
  EXPECT_EQ(j["steps"], 5);
}

// Unknown fields ride in `extra`; an extension of an unexpected type stays there too; a store that
// keeps the columns and stored_extra() writes back the same fields.
TEST(MetricsCodec, UnknownFieldsSurviveAndTheStoredExtraGivesTheSameLineBack) {
  const std::string line =
      R"({"type":"step","step":2,"loss":1.5,"aux_loss":0,"z_loss":0,"lr":0.1,"tokens":8,"step_ms":1,)"
      R"("tokens_per_s":8000,"grad_norm":0.5,"val_loss":"n/a","note":{"why":"test"}})";
  const auto s = parsed<StepRecord>(line);
  EXPECT_EQ(s.grad_norm, 0.5);
  EXPECT_FALSE(s.val_loss.has_value());  // a string: not the extension's type
  EXPECT_EQ(fields(s.extra), fields(R"({"val_loss":"n/a","note":{"why":"test"}})"));
  // What a store keeps: the columns (the struct without extensions) and stored_extra().
  StepRecord columns = s;
  columns.grad_norm.reset();
  columns.extra = stored_extra(s);
  EXPECT_EQ(fields(to_line(columns)), fields(line));
  EXPECT_EQ(stored_extra(CheckpointRecord{1, "p", {}}), "");
}

TEST(MetricsCodec, BrokenLinesAreMalformedWithTheReasonAndOthersIgnored) {
  auto reason = [](const std::string& line) {
    const ParsedLine p = parse_line(line);
    return std::holds_alternative<Malformed>(p) ? std::get<Malformed>(p).reason : std::string("not malformed");
  };
  EXPECT_EQ(reason(R"({"type":"expert_load","step":1,"layer":0,"counts":[1],"dropped":[2]})"),
            "expert_load: expert 0 dropped more tokens than chose it");
  EXPECT_EQ(reason(R"({"type":"step","step":1})"), "step: missing 'loss'");
  EXPECT_EQ(reason("[1,2]"), "not a JSON object");
  EXPECT_EQ(reason(R"({"type":"a2a","step":1,"layer":0,"phase":"both","pass":"fwd","rank_us":[],"rank_bytes":[]})"),
            "a2a: phase must be dispatch or combine");
  EXPECT_TRUE(std::holds_alternative<Ignored>(parse_line(R"({"type":"future_record","x":1})")));
  EXPECT_TRUE(std::holds_alternative<Ignored>(parse_line("   ")));
}
