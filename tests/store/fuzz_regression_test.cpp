// Regression tests for the findings of the libFuzzer targets metrics_fuzzer and ingest_fuzzer
// (docs/fuzzing.md). Every saved stream under data/fuzz/ goes through ingest_fuzzer's path —
// Ingestor into a real SQLite file, the dashboard's queries, export_jsonl — and every exported line
// must parse back as a record (docs/architecture.md 3.3: the export is a stream again).
#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "run_reader.h"
#include "store_export.h"
#include "store_test_util.h"
#include "store_records.h"

namespace moe::store {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

const fs::path kData = MOE_STORE_FUZZ_DATA;

// Ingests `stream` as ingest_fuzzer does and returns the JSONL export, checking every line of it.
std::string ingest_and_export(const std::string& db, const std::string& stream) {
  IngestOptions opt;
  opt.batch_rows = 64;
  opt.max_line_bytes = 4096;
  const int64_t run = test::ingest_string(db, stream, 1 + stream.size() % 251, nullptr, opt);
  RunReader reader(db);
  (void)reader.series(run, Metric::loss, 0, -1, 50);
  const auto layers = reader.layer_balance(run);
  const int64_t layer = layers.empty() ? 0 : layers.front().layer;
  (void)reader.expert_heatmap(run, layer, 0, -1, 50);
  (void)reader.layer_expert_matrix(run, 0, -1);
  for (const char* phase : {"dispatch", "combine"})
    for (const char* pass : {"fwd", "bwd"}) (void)reader.a2a_rank_stats(run, phase, pass, -1, 0, -1);
  std::ostringstream out;
  export_jsonl(reader, run, out);
  std::istringstream lines(out.str());
  for (std::string line; std::getline(lines, line);) {
    ParsedLine p = parse_line(line);
    const auto* bad = std::get_if<Malformed>(&p);
    EXPECT_TRUE(std::holds_alternative<Record>(p)) << (bad ? bad->reason : "ignored") << ": " << line;
  }
  return out.str();
}

TEST(FuzzRegression, SavedStreamsIngestAndExportAsAValidStream) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kData))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  TempDir dir;
  for (const fs::path& f : files) {
    SCOPED_TRACE(f.string());
    ingest_and_export(dir.file("runs.sqlite"), test::read_file(f.string()));
  }
}

// Found by ingest_fuzzer (the empty input): a run that never got a run_start exported one anyway,
// made of the runs row's defaults ("world_size": 0), which breaks the contract and is malformed when
// the export is ingested again. Now there is no run_start line.
TEST(FuzzRegression, RunWithoutRunStartExportsNoRunStart) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  EXPECT_EQ(ingest_and_export(db, test::read_file((kData / "empty-stream.jsonl").string())), "");
  const std::string step =
      "{\"type\":\"step\",\"step\":1,\"loss\":2,\"aux_loss\":0,\"z_loss\":0,\"lr\":0.1,\"tokens\":8,"
      "\"step_ms\":1,\"tokens_per_s\":8}\n";
  const std::string out = ingest_and_export(db, step);
  EXPECT_EQ(out.find("run_start"), std::string::npos) << out;
  EXPECT_NE(out.find("\"type\":\"step\""), std::string::npos) << out;
}

// Found by ingest_fuzzer (a timeout): an expert_load record of layer 11099511627776 was stored, the
// run summary's n_layers became 11099511627776 + 1, and layer_expert_matrix (the live view's
// "latest" matrix, polled by the studio) queried every layer number below it, one by one. Now
// layers above 2^20 are malformed (core/metrics/record_codec.cpp) and the matrix visits only the layers that
// have rows (run_reader.cpp), so even layer 2^20 costs two queries, not a million.
TEST(FuzzRegression, HugeLayerNumberDoesNotHangTheLayerMatrix) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  ingest_and_export(db, test::read_file((kData / "hang-expert-load-layer-huge.jsonl").string()));
  RunReader reader(db);
  int64_t run = reader.list_runs().front().id;
  const auto events = reader.events(run);
  EXPECT_TRUE(std::any_of(events.begin(), events.end(), [](const EventRow& e) {
    return e.kind == "malformed" && e.message.find("expert_load: 'layer' is out of range") != std::string::npos;
  }));
  EXPECT_EQ(reader.layer_expert_matrix(run, 0, -1).layers, (std::vector<int64_t>{0, 1, 2, 3}));
  ingest_and_export(db, "{\"type\":\"expert_load\",\"step\":1,\"layer\":0,\"counts\":[3,1],\"dropped\":[0,0]}\n"
                        "{\"type\":\"expert_load\",\"step\":1,\"layer\":1048576,\"counts\":[1,3],\"dropped\":[0,0]}\n");
  run = reader.list_runs().front().id;
  const LayerExpertMatrix m = reader.layer_expert_matrix(run, 0, -1);
  EXPECT_EQ(m.layers, (std::vector<int64_t>{0, 1048576}));
  EXPECT_EQ(m.values, (std::vector<double>{3, 1, 1, 3}));
}

// Found by review while writing ingest_fuzzer, confirmed with its binary: contract-valid but
// absurd integers broke the store's int64 arithmetic — "step": 2^63 - 1 overflowed the plots' step
// span (run_reader.cpp Buckets), two steps of "tokens": 2^63 - 1 overflowed the batch's token sum
// (run_store.cpp), "layer": 2^63 - 1 overflowed n_layers = layer + 1. The parser now bounds step and
// steps (2^53), layer (2^20) and tokens (2^40, like expert counts): beyond is a malformed line.
TEST(FuzzRegression, AbsurdIntegersAreMalformedAndTheBoundsAreStored) {
  auto reason = [](const std::string& line) {
    ParsedLine p = parse_line(line);
    return std::holds_alternative<Malformed>(p) ? std::get<Malformed>(p).reason : std::string("accepted");
  };
  EXPECT_EQ(reason(R"({"type":"step","step":9007199254740993,"loss":1,"aux_loss":0,"z_loss":0,"lr":0,"tokens":1,"step_ms":1,"tokens_per_s":1})"),
            "step: 'step' is out of range (above 9007199254740992)");
  EXPECT_EQ(reason(R"({"type":"step","step":1,"loss":1,"aux_loss":0,"z_loss":0,"lr":0,"tokens":1099511627777,"step_ms":1,"tokens_per_s":1})"),
            "step: 'tokens' is out of range (above 1099511627776)");
  EXPECT_EQ(reason(R"({"type":"expert_load","step":1,"layer":1048577,"counts":[1],"dropped":[0]})"),
            "expert_load: 'layer' is out of range (above 1048576)");
  EXPECT_EQ(reason(R"({"type":"a2a","step":1,"layer":1048577,"phase":"dispatch","pass":"fwd","rank_us":[1],"rank_bytes":[1]})"),
            "a2a: 'layer' is out of range (above 1048576)");
  EXPECT_EQ(reason(R"({"type":"checkpoint","step":9223372036854775807,"path":"x"})"),
            "checkpoint: 'step' is out of range (above 9007199254740992)");
  EXPECT_EQ(reason(R"({"type":"run_end","status":"completed","steps":9007199254740993})"),
            "run_end: 'steps' is out of range (above 9007199254740992)");
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  ingest_and_export(db, test::read_file((kData / "int64-max-everywhere.jsonl").string()));
  RunReader reader(db);
  EXPECT_EQ(reader.run(reader.list_runs().front().id).malformed_lines, 8);  // all but run_start
  // At the bounds everything is stored, summed and plotted.
  const std::string bounds = test::read_file((kData / "at-the-bounds.jsonl").string());
  IngestResult r;
  const int64_t run = test::ingest_string(db, bounds, 4096, &r);
  EXPECT_EQ(r.malformed, 0);
  EXPECT_EQ(r.records, 10);
  EXPECT_EQ(reader.run(run).total_tokens, 2 * 1099511627776);
  const Series s = reader.series(run, Metric::tokens, 0, -1, 50);
  ASSERT_FALSE(s.step.empty());
  EXPECT_EQ(s.step.back(), 9007199254740992.0);
}

// Found while writing metrics_fuzzer, confirmed with its binary on a built input (the fuzzer's
// 16 KiB inputs are too short to reach it): a step line whose extra field nests 200 000 arrays
// (400 KB, far below the 16 MiB line limit) overflowed the stack — parse_line copies and dumps the
// extra fields, both recursive. Such a line is now malformed, like any other bad line.
TEST(FuzzRegression, DeeplyNestedLineIsMalformedNotAStackOverflow) {
  const int n = 200000;
  const std::string step =
      "{\"type\":\"step\",\"step\":1,\"loss\":2,\"aux_loss\":0,\"z_loss\":0,\"lr\":0.1,\"tokens\":8,"
      "\"step_ms\":1,\"tokens_per_s\":8,\"x\":" + std::string(n, '[') + std::string(n, ']') + "}";
  ParsedLine p = parse_line(step);
  ASSERT_TRUE(std::holds_alternative<Malformed>(p));
  EXPECT_EQ(std::get<Malformed>(p).reason, "nested deeper than 512 levels");
  const std::string start = "{\"type\":\"run_start\",\"schema\":1,\"spec\":{\"a\":" + std::string(n, '{') + "}";
  EXPECT_TRUE(std::holds_alternative<Malformed>(parse_line(start)));
  // At the limit, brackets inside strings do not count.
  const std::string ok = "{\"type\":\"log\",\"message\":\"[[[[\\\"{{{\",\"x\":" + std::string(510, '[') +
                         std::string(510, ']') + "}";
  EXPECT_TRUE(std::holds_alternative<Record>(parse_line(ok))) << ok.substr(0, 60);
  TempDir dir;
  IngestResult r;
  test::ingest_string(dir.file("runs.sqlite"), step + "\n", 4096, &r);
  EXPECT_EQ(r.malformed, 1);
}

}  // namespace
}  // namespace moe::store
