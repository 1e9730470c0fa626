// Stream → store: the round trip through export, statuses, the summary, and bad input (truncated
// lines, binary garbage, a 100 MB line, invalid UTF-8, numbers out of range, run_end without
// run_start), each counted, kept as an event and never fatal.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "run_reader.h"
#include "store_export.h"
#include "store_test_util.h"
#include "synthetic_stream.h"

namespace moe::store {
namespace {

using json = nlohmann::json;
using test::TempDir;

std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

// A sort key that orders records the same way whatever order they were written in.
std::string key_of(const json& r) {
  std::string k = r["type"].get<std::string>();
  for (const char* f : {"step", "layer", "phase", "pass", "path"}) {
    if (r.contains(f)) {
      k += '|';
      k += r[f].dump();
    }
  }
  return k;
}

void expect_same_records(std::vector<json> a, std::vector<json> b) {
  auto by_key = [](const json& x, const json& y) { return key_of(x) < key_of(y); };
  std::sort(a.begin(), a.end(), by_key);
  std::sort(b.begin(), b.end(), by_key);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    // json equality compares numbers by value: 100 == 100.0.
    EXPECT_EQ(a[i], b[i]) << "record " << key_of(a[i]) << "\nin:  " << a[i].dump() << "\nout: " << b[i].dump();
  }
}

std::vector<EventRow> events_of(const std::string& db, int64_t run) {
  RunReader reader(db);
  return reader.events(run, 0, 100000);
}

bool has_event(const std::vector<EventRow>& ev, const std::string& kind, const std::string& text) {
  return std::any_of(ev.begin(), ev.end(), [&](const EventRow& e) {
    return e.kind == kind && e.message.find(text) != std::string::npos;
  });
}

TEST(Ingest, RoundTripThroughJsonlExportGivesTheSameRecords) {
  TempDir dir;
  SyntheticShape shape{.steps = 30, .layers = 3, .experts = 16, .ranks = 4};
  std::string stream = synthetic_stream(shape);
  // Extra fields, a checkpoint and an end reason must survive too.
  stream.insert(stream.find('\n') + 1,
                "{\"type\":\"checkpoint\",\"step\":0,\"path\":\"ckpt/0\",\"bytes\":12}\n"
                "{\"type\":\"placement\",\"step\":0,\"layer\":1,\"slots_per_rank\":3,\"phy_to_log\":[0,1,2,3,4,5],"
                "\"migrated_bytes\":4096,\"migrate_ms\":1.5}\n"
                "{\"type\":\"coselection\",\"step\":0,\"layer\":1,\"experts\":6,\"pairs\":[0,1,7,2,5,3]}\n"
                "{\"type\":\"a2a\",\"step\":0,\"layer\":1,\"phase\":\"combine\",\"pass\":\"bwd\",\"rank_us\":[1.5,2.25],"
                "\"rank_bytes\":[10,20],\"intra_bytes\":30,\"inter_bytes\":0,\"note\":\"x\"}\n"
                "{\"type\":\"step\",\"step\":0,\"loss\":9.75,\"aux_loss\":1e-3,\"z_loss\":0,\"lr\":0,\"tokens\":1,"
                "\"step_ms\":0.5,\"tokens_per_s\":2,\"grad_norm\":{\"max\":3.5}}\n");
  stream.replace(stream.rfind("{\"type\":\"run_end\""), std::string::npos,
                 "{\"type\":\"run_end\",\"status\":\"failed\",\"steps\":30,\"reason\":\"rank 1: \\\"NaN\\\" loss\"}\n");
  const std::string db = dir.file("runs.sqlite");
  IngestResult res;
  int64_t run = test::ingest_string(db, stream, 777, &res);
  EXPECT_EQ(res.malformed, 0);
  EXPECT_EQ(res.status, "failed");

  RunReader reader(db);
  std::ostringstream out;
  int64_t written = export_jsonl(reader, run, out);
  auto in_records = parse_lines(stream);
  EXPECT_EQ(written, static_cast<int64_t>(in_records.size()));
  expect_same_records(in_records, parse_lines(out.str()));

  // The export is itself a stream: ingesting it again exports byte for byte the same text.
  int64_t run2 = test::ingest_string(db, out.str(), 1 << 16);
  std::ostringstream out2;
  export_jsonl(reader, run2, out2);
  EXPECT_EQ(out.str(), out2.str());
}

TEST(Ingest, StatusFollowsRunStartAndRunEnd) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 5, .layers = 2, .experts = 4, .ranks = 0};
  IngestResult r;
  int64_t done = test::ingest_string(db, synthetic_stream(shape), 100, &r);
  EXPECT_EQ(r.status, "completed");
  EXPECT_TRUE(r.saw_run_end);
  shape.run_end = false;
  int64_t cut = test::ingest_string(db, synthetic_stream(shape), 100, &r);
  EXPECT_EQ(r.status, "interrupted");
  EXPECT_FALSE(r.saw_run_end);

  RunReader reader(db);
  RunInfo a = reader.run(done), b = reader.run(cut);
  EXPECT_EQ(a.status, "completed");
  EXPECT_EQ(a.name, "synthetic");  // taken from the spec of run_start
  EXPECT_EQ(a.backend, "cpu");
  EXPECT_FALSE(a.ended_at.empty());
  EXPECT_EQ(b.status, "interrupted");
  EXPECT_EQ(b.n_steps, 5);
}

TEST(Ingest, SummaryHoldsTheLatestValues) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 40, .layers = 3, .experts = 8, .ranks = 2};
  const std::string stream = synthetic_stream(shape);
  int64_t run = test::ingest_string(db, stream, 1000);
  // Expected figures straight from the stream text.
  int64_t routed = 0, dropped = 0, tokens = 0;
  double last_loss = 0, last_tps = 0;
  for (const json& r : parse_lines(stream)) {
    if (r["type"] == "expert_load") {
      for (auto& c : r["counts"]) routed += c.get<int64_t>();
      for (auto& d : r["dropped"]) dropped += d.get<int64_t>();
    } else if (r["type"] == "step") {
      tokens += r["tokens"].get<int64_t>();
      last_loss = r["loss"].get<double>();
      last_tps = r["tokens_per_s"].get<double>();
    }
  }
  ASSERT_GT(dropped, 0);
  RunReader reader(db);
  RunInfo info = reader.run(run);
  EXPECT_EQ(info.n_steps, 40);
  EXPECT_EQ(info.last_step, 40);
  EXPECT_DOUBLE_EQ(info.last_loss, last_loss);
  EXPECT_DOUBLE_EQ(info.last_tokens_per_s, last_tps);
  EXPECT_EQ(info.total_tokens, tokens);
  EXPECT_EQ(info.routed_total, routed);
  EXPECT_EQ(info.dropped_total, dropped);
  EXPECT_DOUBLE_EQ(info.drop_rate, static_cast<double>(dropped) / routed);
  EXPECT_EQ(info.n_layers, 3);
  EXPECT_EQ(info.n_experts, 8);
  EXPECT_GT(info.last_imbalance, 1.0);
  ASSERT_EQ(reader.list_runs().size(), 1u);
}

TEST(Ingest, ARepeatedStepIsCountedOnce) {
  // A reattaching client may deliver records twice: rows are replaced, the summary counts once.
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 30, .layers = 2, .experts = 8, .ranks = 2};
  const std::string stream = synthetic_stream(shape);
  std::string repeats;
  for (const json& r : parse_lines(stream)) {
    const std::string type = r["type"];
    if ((type == "step" || type == "expert_load") && r["step"] >= 10 && r["step"] <= 20) repeats += r.dump() + "\n";
  }
  ASSERT_FALSE(repeats.empty());
  std::string twice = stream;
  twice.insert(twice.rfind("{\"type\":\"run_end\""), repeats);
  const int64_t run_once = test::ingest_string(db, stream, 1000);
  const int64_t run_again = test::ingest_string(db, twice, 1000);
  RunReader reader(db);
  const RunInfo once = reader.run(run_once), again = reader.run(run_again);
  EXPECT_EQ(again.n_steps, 30);
  EXPECT_EQ(again.n_steps, once.n_steps);
  EXPECT_EQ(again.total_tokens, once.total_tokens);
  EXPECT_EQ(again.routed_total, once.routed_total);
  EXPECT_EQ(again.dropped_total, once.dropped_total);
  EXPECT_EQ(again.last_step, once.last_step);
}

TEST(Ingest, BadLinesAreCountedKeptAsEventsAndSkipped) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 4, .layers = 2, .experts = 4, .ranks = 0};
  std::string good = synthetic_stream(shape);
  std::string stream = synthetic_run_start(shape);
  stream += synthetic_step(shape, 1);
  std::string step2 = synthetic_step(shape, 2);
  stream += step2.substr(0, 40) + "\n";                        // 1: a truncated line
  stream += std::string("\x00\x01\xff\x7f binary\x00garbage", 18) + "\n";  // 2: binary garbage
  stream += "{\"type\":\"log\",\"message\":\"caf\xe9\"}\n";    // 3: invalid UTF-8 (latin-1 é)
  stream += "{\"type\":\"step\",\"step\":2,\"loss\":1e400,\"aux_loss\":0,\"z_loss\":0,\"lr\":0,\"tokens\":1,"
            "\"step_ms\":1,\"tokens_per_s\":1}\n";              // 4: a number beyond double
  stream += "{\"type\":\"checkpoint\",\"step\":9223372036854775808,\"path\":\"x\"}\n";  // 5: beyond int64
  stream += "{\"type\":\"expert_load\",\"step\":2,\"layer\":0,\"counts\":[1,2,3,-4],\"dropped\":[0,0,0,0]}\n";  // 6
  stream += "{\"type\":\"brand_new_type\",\"x\":1}\n";       // ignored, not malformed
  stream += synthetic_step(shape, 3);
  stream += synthetic_step(shape, 4);
  stream += "{\"type\":\"log\",\"level\":\"warning\",\"message\":\"rank 1 is slow\"}\n";
  stream += synthetic_run_end(shape);
  stream += "{\"type\":\"step\",\"step\":5,\"loss\":";           // 7: truncated last line, no newline
  IngestResult r;
  int64_t run = test::ingest_string(db, stream, 13, &r);
  EXPECT_EQ(r.malformed, 7);
  EXPECT_EQ(r.ignored, 1);
  EXPECT_EQ(r.status, "completed");
  RunReader reader(db);
  RunInfo info = reader.run(run);
  EXPECT_EQ(info.malformed_lines, 7);
  EXPECT_EQ(info.n_steps, 3);  // steps 1, 3, 4
  auto steps = reader.steps_after(run, 0);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[1].step, 3);
  auto ev = events_of(db, run);
  EXPECT_TRUE(has_event(ev, "malformed", "not JSON"));
  EXPECT_TRUE(has_event(ev, "malformed", "out of range"));
  EXPECT_TRUE(has_event(ev, "malformed", "negative"));
  EXPECT_TRUE(has_event(ev, "warning", "rank 1 is slow"));
  int malformed_events = 0;
  for (auto& e : ev) {
    malformed_events += e.kind == "malformed";
    // Every stored message is valid UTF-8 (the invalid byte was replaced), so exports and the GUI can show it.
    EXPECT_NO_THROW((void)json(e.message).dump()) << e.message;
  }
  EXPECT_EQ(malformed_events, 7);
}

TEST(Ingest, AHundredMegabyteLineIsSkippedWithBoundedMemory) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 2, .layers = 1, .experts = 4, .ranks = 0};
  int64_t run;
  {
    RunStore store(db);
    run = store.create_run("");
  }
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  Ingestor ing(db, run);
  ing.feed(synthetic_run_start(shape) + synthetic_step(shape, 1));
  const std::string chunk(1 << 20, '7');
  ing.feed("{\"type\":\"log\",\"message\":\"");
  for (int i = 0; i < 100; ++i) ing.feed(chunk);
  ing.feed("\"}\n");
  ing.feed(synthetic_step(shape, 2));
  ing.feed(synthetic_run_end(shape));
  IngestResult r = ing.finish();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  EXPECT_EQ(r.malformed, 1);
  EXPECT_EQ(r.status, "completed");
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "KiB: the line must not be buffered whole";
  RunReader reader(db);
  EXPECT_EQ(reader.run(run).n_steps, 2);
  EXPECT_TRUE(has_event(events_of(db, run), "malformed", "longer than the limit"));
}

TEST(Ingest, RunEndWithoutRunStartIsRecordedNotApplied) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 3, .layers = 1, .experts = 4, .ranks = 0, .run_start = false};
  IngestResult r;
  int64_t run = test::ingest_string(db, synthetic_stream(shape), 64, &r);
  EXPECT_EQ(r.status, "interrupted");
  RunReader reader(db);
  EXPECT_EQ(reader.run(run).n_steps, 3);  // the data is kept
  EXPECT_EQ(reader.run(run).malformed_lines, 1);
  auto ev = events_of(db, run);
  EXPECT_TRUE(has_event(ev, "malformed", "run_end without run_start"));
  EXPECT_TRUE(has_event(ev, "warning", "records before run_start"));
}

TEST(Ingest, EndlessGarbageKeepsAThousandEventsButCountsAll) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  std::string garbage;
  for (int i = 0; i < 3000; ++i) {
    garbage += "not json ";
    garbage += std::to_string(i);
    garbage += '\n';
  }
  IngestResult r;
  int64_t run = test::ingest_string(db, garbage, 4096, &r);
  EXPECT_EQ(r.malformed, 3000);
  RunReader reader(db);
  EXPECT_EQ(reader.run(run).malformed_lines, 3000);
  EXPECT_EQ(reader.events(run, 0, 100000).size(), 1000u);
}

}  // namespace
}  // namespace moe::store
