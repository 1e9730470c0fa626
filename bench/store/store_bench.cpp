// Run store benchmark (issues 5 and 16), printing a table with the load average beside each figure:
//  1. ingest of a 64-layer × 256-expert stream through the real path (JSON text → Ingestor →
//     SQLite), in metric values per second (each expert count is a value; drops not counted);
//  2. database size of a long run of that stream (--size-steps, default 20,000, generated step by
//     step as it is fed), per table and extrapolated to 100,000 steps;
//  3. heatmap: one layer, 256 experts × 100,000 steps into 1,000 buckets, and 1% windows of it;
//  4. aligned, downsampled loss series of 10 runs × 100,000 steps into 1,000 buckets, and 1% windows.
// The query databases are filled with RunStore::write_batch (the ingestor's own write call) to skip
// generating gigabytes of JSON.
// usage: store_bench [--ingest-steps N] [--size-steps N] [--dir DIR] [--keep 1]
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

std::string load_average() {
  double l[3] = {0, 0, 0};
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3) l[0] = -1;
    std::fclose(f);
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", l[0]);
  return buf;
}

// One line of the table: measure, value, target, and the 1-minute load average when it was taken.
void row(const char* label, double value, const char* target, int decimals = 1) {
  std::printf("%-60s %14.*f %10s %6s\n", label, decimals, value, target, load_average().c_str());
}

double median_ms(const std::vector<double>& v) {
  std::vector<double> s = v;
  std::sort(s.begin(), s.end());
  return s[s.size() / 2] * 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t ingest_steps = 300, size_steps = 20000;
  bool keep = false;
  std::string dir = (fs::temp_directory_path() / ("moe-store-bench-" + std::to_string(::getpid()))).string();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--ingest-steps") ingest_steps = std::atoll(argv[i + 1]);
    else if (a == "--size-steps") size_steps = std::atoll(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--keep") keep = std::string(argv[i + 1]) == "1";
    else {
      std::fprintf(stderr, "usage: store_bench [--ingest-steps N] [--size-steps N] [--dir DIR] [--keep 1]\n");
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "usage: store_bench [--ingest-steps N] [--size-steps N] [--dir DIR] [--keep 1]\n");
    return 2;
  }
  fs::create_directories(dir);
  const int64_t kLayers = 64, kExperts = 256, kSteps = 100000, kBuckets = 1000, kRuns = 10;
  std::printf("run store benchmark (dir %s)\n\n", dir.c_str());
  std::printf("%-60s %14s %10s %6s\n", "measure", "value", "target", "load");

  // 1: ingest through the real path, the stream generated beforehand.
  const SyntheticShape big{.steps = ingest_steps, .layers = kLayers, .experts = kExperts, .ranks = 8, .tokens = 8192};
  {
    const std::string db = dir + "/ingest.sqlite";
    fs::remove(db);
    SyntheticShape shape = big;
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
    row("ingest: expert-count values/s (64 layers x 256 experts)", values / secs, ">= 1000000", 0);
    row("ingest: stream MB/s (JSON incl. a2a for 8 ranks)", bytes / secs / 1e6, "");
    row("ingest: steps/s", ingest_steps / secs, "", 0);
    if (r.malformed != 0 || r.status != "completed") std::printf("!! ingest problem: status %s\n", r.status.c_str());
  }

  // 2: size of a long run, fed step by step as it is generated (a 20,000-step stream is ~3 GB of
  // text); the rate here includes generating it.
  if (size_steps > 0) {
    const std::string db = dir + "/size.sqlite";
    fs::remove(db);
    SyntheticShape shape = big;
    shape.steps = size_steps;
    int64_t run;
    {
      RunStore store(db);
      run = store.create_run("");
    }
    auto t0 = Clock::now();
    IngestResult r;
    {
      Ingestor ing(db, run);
      ing.feed(synthetic_run_start(shape));
      for (int64_t s = 1; s <= shape.steps; ++s) ing.feed(synthetic_step(shape, s));
      ing.feed(synthetic_run_end(shape));
      r = ing.finish();
    }
    const double secs = seconds_since(t0);
    if (r.malformed != 0 || r.status != "completed") std::printf("!! ingest problem: status %s\n", r.status.c_str());
    {
      RunStore store(db);  // checkpoint the WAL so the main file holds everything
      store.db().exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing");
    }
    const double per_step = static_cast<double>(file_bytes(db)) / size_steps;
    std::string label = "size run: " + std::to_string(size_steps) + " steps ingested, values/s incl. generating";
    row(label.c_str(), static_cast<double>(size_steps * kLayers * kExperts) / secs, "", 0);
    try {  // bytes per table, when SQLite was built with the dbstat table (Debian's is)
      Db d(db, Db::Mode::read_only);
      Stmt st(d, "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 6");
      while (st.step()) {
        std::string l = "db size: bytes per step in " + st.col_text(0);
        row(l.c_str(), st.col_double(1) / size_steps, "", 0);
      }
    } catch (const std::exception&) {
    }
    row("db size: bytes per step, whole file (64 x 256 loads, 8-rank a2a)", per_step, "", 0);
    row("db size: bytes per expert count (everything)", per_step / (kLayers * kExperts), "", 2);
    label = "db size: whole file after " + std::to_string(size_steps) + " steps (GB)";
    row(label.c_str(), static_cast<double>(file_bytes(db)) / 1e9, "", 3);
    row("db size: GB for 100,000 steps (that file's bytes/step x 100,000)", per_step * kSteps / 1e9, "<= 1.0", 3);
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
    row("heatmap 256 experts x 100,000 steps -> 1,000 buckets (ms)", median_ms(times), "<= 20");
    row("  CPU time of the query thread (ms, median)", median_ms(cpu), "");
    row("  first (cold) query (ms)", times[0] * 1000.0, "");
    row("  (fill: 100,000 rows written in s)", fill, "");
    if (h.n_experts != kExperts || h.n_buckets != kBuckets) std::printf("!! heatmap shape wrong\n");
    // Zoom: 1% windows (1,000 steps into 1,000 buckets) at 15 places, the slowest and the median.
    std::vector<double> zoom;
    for (int i = 0; i < 15; ++i) {
      const int64_t first = 1 + (i * 6571) % (kSteps - 1000);
      auto q0 = Clock::now();
      h = reader.expert_heatmap(run, 0, first, first + 999, kBuckets);
      zoom.push_back(seconds_since(q0));
    }
    row("heatmap zoom: any 1% window -> 1,000 buckets, median (ms)", median_ms(zoom), "<= 20");
    row("heatmap zoom: slowest of 15 windows (ms)", *std::max_element(zoom.begin(), zoom.end()) * 1000.0, "<= 20");
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
    row("aligned loss series 10 runs x 100,000 steps -> 1,000 (ms)", median_ms(times), "<= 50");
    row("  CPU time of the query thread (ms, median)", median_ms(cpu), "");
    row("  first query (ms)", times[0] * 1000.0, "");
    std::vector<double> zoom;
    for (int i = 0; i < 15; ++i) {
      const int64_t first = 1 + (i * 6571) % (kSteps - 1000);
      auto q0 = Clock::now();
      (void)reader.aligned_series(runs, Metric::loss, first, first + 999, kBuckets);
      zoom.push_back(seconds_since(q0));
    }
    row("aligned loss zoom: any 1% window of 10 runs, median (ms)", median_ms(zoom), "<= 20");
    row("aligned loss zoom: slowest of 15 windows (ms)", *std::max_element(zoom.begin(), zoom.end()) * 1000.0, "<= 20");
    std::vector<double> list_times;
    for (int i = 0; i < 5; ++i) {
      auto q0 = Clock::now();
      reader.list_runs();
      list_times.push_back(seconds_since(q0));
    }
    row("list runs with summaries (ms)", median_ms(list_times), "", 2);
    if (a.last.size() != static_cast<size_t>(kRuns) || a.bucket_first_step.size() != static_cast<size_t>(kBuckets)) {
      std::printf("!! aligned series shape wrong\n");
    }
  }
  if (!keep) fs::remove_all(dir);
  return 0;
}
