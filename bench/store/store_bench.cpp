// Run store benchmark (issue 5's targets), printing a table:
//  1. ingest of a 64-layer × 256-expert stream through the real path (JSON text → Ingestor →
//     SQLite), in metric values per second (each expert count is a value; drops not counted);
//  2. database size per step of that stream, extrapolated to 100,000 steps;
//  3. heatmap: one layer, 256 experts × 100,000 steps into 1,000 buckets;
//  4. aligned, downsampled loss series of 10 runs × 100,000 steps into 1,000 buckets.
// The query databases are filled with RunStore::write_batch (the ingestor's own write call) to skip
// generating gigabytes of JSON. usage: store_bench [--ingest-steps N] [--dir DIR]
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ingestor.h"
#include "run_reader.h"
#include "run_store.h"
#include "synthetic_stream.h"

namespace {

using namespace moe::store;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

uint64_t file_bytes(const std::string& db) {
  uint64_t total = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    auto n = fs::file_size(db + suffix, ec);
    if (!ec) total += n;
  }
  return total;
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double median_ms(const std::vector<double>& v) {
  std::vector<double> s = v;
  std::sort(s.begin(), s.end());
  return s[s.size() / 2] * 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t ingest_steps = 300;
  bool keep = false;
  std::string dir = (fs::temp_directory_path() / ("moe-store-bench-" + std::to_string(::getpid()))).string();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--ingest-steps") ingest_steps = std::atoll(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--keep") keep = std::string(argv[i + 1]) == "1";
  }
  fs::create_directories(dir);
  const int64_t kLayers = 64, kExperts = 256, kSteps = 100000, kBuckets = 1000, kRuns = 10;
  std::printf("run store benchmark (dir %s)\n\n", dir.c_str());
  std::printf("%-58s %14s %12s\n", "measure", "value", "target");

  // 1 + 2: ingest through the real path.
  {
    const std::string db = dir + "/ingest.sqlite";
    fs::remove(db);
    SyntheticShape shape{.steps = ingest_steps, .layers = kLayers, .experts = kExperts, .ranks = 8, .tokens = 8192};
    std::vector<std::string> pieces;  // the stream as it would arrive: one step at a time
    pieces.push_back(synthetic_run_start(shape));
    size_t bytes = pieces[0].size();
    for (int64_t s = 1; s <= shape.steps; ++s) {
      pieces.push_back(synthetic_step(shape, s));
      bytes += pieces.back().size();
    }
    pieces.push_back(synthetic_run_end(shape));
    int64_t run;
    {
      RunStore store(db);
      run = store.create_run("");
    }
    auto t0 = Clock::now();
    Ingestor ing(db, run);
    for (const auto& p : pieces) ing.feed(p);
    IngestResult r = ing.finish();
    double secs = seconds_since(t0);
    double values = static_cast<double>(ingest_steps * kLayers * kExperts);
    std::printf("%-58s %14.0f %12s\n", "ingest: expert-count values/s (64 layers x 256 experts)", values / secs,
                ">= 500000");
    std::printf("%-58s %14.1f %12s\n", "ingest: stream MB/s (JSON incl. a2a for 8 ranks)", bytes / secs / 1e6, "");
    std::printf("%-58s %14.0f %12s\n", "ingest: steps/s", ingest_steps / secs, "");
    if (r.malformed != 0 || r.status != "completed") std::printf("!! ingest problem: status %s\n", r.status.c_str());
    {
      RunStore store(db);  // checkpoint the WAL so the main file holds everything
      store.db().exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing");
    }
    double per_step = static_cast<double>(file_bytes(db)) / ingest_steps;
    try {  // bytes per table, when SQLite was built with the dbstat table (Debian's is)
      Db d(db, Db::Mode::read_only);
      Stmt st(d, "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 4");
      while (st.step()) {
        std::string label = "db size: bytes per step in table " + st.col_text(0);
        std::printf("%-58s %14.0f %12s\n", label.c_str(), st.col_double(1) / ingest_steps, "");
      }
    } catch (const std::exception&) {
    }
    std::printf("%-58s %14.0f %12s\n", "db size: bytes per step (64 x 256 loads, 8-rank a2a)", per_step, "");
    std::printf("%-58s %14.2f %12s\n", "db size: GB for 100,000 steps (extrapolated)", per_step * kSteps / 1e9, "");
    std::printf("%-58s %14.1f %12s\n", "db size: bytes per expert count (loads+drops+a2a+steps)",
                per_step / (kLayers * kExperts), "");
  }

  // 3: heatmap over one layer of 100,000 steps.
  {
    const std::string db = dir + "/heatmap.sqlite";
    fs::remove(db);
    SyntheticShape shape{.steps = kSteps, .layers = 1, .experts = kExperts, .ranks = 0, .tokens = 8192};
    int64_t run;
    auto t0 = Clock::now();
    {
      RunStore store(db);
      run = store.create_run("heatmap");
      RunWriteState state;
      state.has_run_start = true;
      std::vector<Record> batch;
      for (int64_t s = 1; s <= kSteps; ++s) {
        std::string text = synthetic_step(shape, s);
        ParsedLine p = parse_line(std::string_view(text).substr(0, text.find('\n')));
        batch.push_back(std::get<Record>(p));
        if (batch.size() == 4096 || s == kSteps) {
          store.write_batch(run, batch, state);
          batch.clear();
        }
      }
    }
    double fill = seconds_since(t0);
    RunReader reader(db);
    std::vector<double> times, cpu;
    Heatmap h;
    for (int i = 0; i < 7; ++i) {
      auto q0 = Clock::now();
      double c0 = thread_cpu_s();
      h = reader.expert_heatmap(run, 0, 1, -1, kBuckets);
      cpu.push_back(thread_cpu_s() - c0);
      times.push_back(seconds_since(q0));
    }
    std::printf("%-58s %14.1f %12s\n", "heatmap 256 experts x 100,000 steps -> 1,000 buckets (ms)", median_ms(times),
                "<= 50");
    std::printf("%-58s %14.1f %12s\n", "  CPU time of the query thread (ms, median)", median_ms(cpu), "");
    std::printf("%-58s %14.1f %12s\n", "  first (cold) query (ms)", times[0] * 1000.0, "");
    std::printf("%-58s %14.1f %12s\n", "  (fill: 100,000 rows written in s)", fill, "");
    if (h.n_experts != kExperts || h.n_buckets != kBuckets) std::printf("!! heatmap shape wrong\n");
  }

  // 4: aligned series over 10 runs.
  {
    const std::string db = dir + "/series.sqlite";
    fs::remove(db);
    std::vector<int64_t> runs;
    {
      RunStore store(db);
      for (int64_t k = 0; k < kRuns; ++k) {
        int64_t run = store.create_run("run " + std::to_string(k));
        runs.push_back(run);
        RunWriteState state;
        state.has_run_start = true;
        std::vector<Record> batch;
        for (int64_t s = 1; s <= kSteps; ++s) {
          StepRecord r;
          r.step = s;
          r.loss = 5.0 / (1.0 + s * 1e-3) + 0.01 * ((s * 7919 + k) % 101);
          r.aux_loss = 1.0;
          r.z_loss = 0.25;
          r.lr = 3e-3;
          r.tokens = 8192;
          r.step_ms = 100;
          r.tokens_per_s = 81920;
          batch.push_back(r);
          if (batch.size() == 8192 || s == kSteps) {
            store.write_batch(run, batch, state);
            batch.clear();
          }
        }
      }
    }
    RunReader reader(db);
    std::vector<double> times, cpu;
    AlignedSeries a;
    for (int i = 0; i < 7; ++i) {
      auto q0 = Clock::now();
      double c0 = thread_cpu_s();
      a = reader.aligned_series(runs, Metric::loss, 1, -1, kBuckets);
      cpu.push_back(thread_cpu_s() - c0);
      times.push_back(seconds_since(q0));
    }
    std::printf("%-58s %14.1f %12s\n", "aligned loss series 10 runs x 100,000 steps -> 1,000 (ms)", median_ms(times),
                "<= 200");
    std::printf("%-58s %14.1f %12s\n", "  CPU time of the query thread (ms, median)", median_ms(cpu), "");
    std::printf("%-58s %14.1f %12s\n", "  first query (ms)", times[0] * 1000.0, "");
    std::vector<double> list_times;
    for (int i = 0; i < 5; ++i) {
      auto q0 = Clock::now();
      reader.list_runs();
      list_times.push_back(seconds_since(q0));
    }
    std::printf("%-58s %14.2f %12s\n", "list runs with summaries (ms)", median_ms(list_times), "");
    if (a.last.size() != static_cast<size_t>(kRuns) || a.bucket_first_step.size() != static_cast<size_t>(kBuckets)) {
      std::printf("!! aligned series shape wrong\n");
    }
  }
  if (!keep) fs::remove_all(dir);
  return 0;
}
