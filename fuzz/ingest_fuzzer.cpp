// libFuzzer target: a whole metrics stream through the real ingest path into a real SQLite file
// (on tmpfs): Ingestor (splitter, parser, writer thread, write_batch with its rollups) → RunReader
// queries the dashboard and `moe runs` use → export_jsonl. The stream must be stored or counted as
// malformed, never crash the store; every exported line must parse back as a record. One database
// per fuzzer process, one run per input (deleted afterwards). See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "error.h"
#include "fuzz_util.h"
#include "ingestor.h"
#include "run_reader.h"
#include "run_store.h"
#include "store_export.h"
#include "store_records.h"

namespace {

using namespace moe::store;

const std::string& db_path() {
  static const std::string path = (moe::fuzz::scratch_dir() / "runs.sqlite").string();
  return path;
}

void query_everything(RunReader& reader, int64_t run) {
  (void)reader.list_runs();
  (void)reader.run(run);
  (void)reader.spec_json(run);
  (void)reader.steps_after(run, -1);
  (void)reader.a2a_after(run, -1);
  (void)reader.events(run);
  for (Metric m : {Metric::loss, Metric::tokens, Metric::tokens_per_s}) (void)reader.series(run, m, 0, -1, 50);
  (void)reader.aligned_series({run}, Metric::loss, 0, -1, 50);
  const auto layers = reader.layer_balance(run);
  (void)reader.layer_expert_matrix(run, 0, -1);
  int64_t layer = layers.empty() ? 0 : layers.front().layer;
  (void)reader.expert_load_after(run, layer, -1);
  (void)reader.expert_heatmap(run, layer, 0, -1, 50, false);
  (void)reader.expert_heatmap(run, layer, 0, -1, 50, true);
  (void)reader.load_balance(run, layer, 0, -1);
  (void)reader.load_balance_series(run, layer, 0, -1, 50);
  for (const char* phase : {"dispatch", "combine"})
    for (const char* pass : {"fwd", "bwd"}) (void)reader.a2a_rank_stats(run, phase, pass, -1, 0, -1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // One writer and one reader connection for the process (the Ingestor opens its own, as in use).
  static RunStore store(db_path());
  static RunReader reader(db_path());
  const int64_t run = store.create_run("fuzz");
  IngestOptions opt;
  opt.batch_rows = 64;  // several batches (and rollup blocks across them) even for small inputs
  opt.max_line_bytes = 4096;
  try {
    Ingestor ing(db_path(), run, opt);
    const size_t piece = 1 + size % 251;
    for (size_t i = 0; i < size; i += piece) ing.feed(text.substr(i, piece));
    (void)ing.finish();
  } catch (const moe::Error& e) {
    moe::fuzz::fail(std::string("ingest failed on a stream (it must never fail on content): ") + e.what());
  }
  std::ostringstream exported;
  query_everything(reader, run);
  (void)export_jsonl(reader, run, exported);
  for (const std::string& table : csv_tables()) {
    std::ostringstream csv;
    (void)export_csv(reader, run, table, csv);
  }
  std::istringstream lines(exported.str());
  for (std::string line; std::getline(lines, line);) {
    ParsedLine p = parse_line(line);
    if (!std::holds_alternative<Record>(p)) {
      const auto* bad = std::get_if<Malformed>(&p);
      moe::fuzz::fail("exported line does not parse back (" + (bad ? bad->reason : std::string("ignored")) + "): " + line);
    }
  }
  store.delete_run(run);
  return 0;
}
