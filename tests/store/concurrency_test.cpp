// One writer, many readers: a reader thread queries while the ingestor commits many small batches.
// Every snapshot it sees must be a prefix of the stream (no step without its expert loads, no
// holes), and what it sees never shrinks.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "run_reader.h"
#include "store_test_util.h"
#include "synthetic_stream.h"

namespace moe::store {
namespace {

TEST(Concurrency, ReadersSeeConsistentPrefixesWhileIngestRuns) {
  test::TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 600, .layers = 4, .experts = 32, .ranks = 2};
  int64_t run;
  {
    RunStore store(db);
    run = store.create_run("");
  }
  std::atomic<bool> done{false};
  std::atomic<int64_t> snapshots{0}, max_seen{0};
  std::string failure;

  std::thread reader_thread([&] {
    try {
      RunReader reader(db);
      int64_t prev = 0;
      while (!done.load()) {
        ReadTxn txn(reader.db());
        Stmt q(reader.db(), "SELECT count(*), coalesce(max(step), 0), (SELECT count(*) FROM expert_load WHERE run_id = ?1),"
                            " (SELECT coalesce(sum(records), 0) FROM a2a_steps WHERE run_id = ?1) FROM steps WHERE run_id = ?1");
        q.bind(1, run);
        q.step();
        int64_t n = q.col_int(0), mx = q.col_int(1), loads = q.col_int(2), a2a = q.col_int(3);
        if (n != mx) failure = "hole in steps: " + std::to_string(n) + " rows, max " + std::to_string(mx);
        // In stream order a step's loads and a2a records come before its step record.
        if (loads < n * shape.layers || loads > (n + 1) * shape.layers) failure = "expert_load rows out of step";
        // Every step's a2a records are summed (a2a_steps) as they arrive, in the same commits.
        if (a2a < n * shape.layers * 4 || a2a > (n + 1) * shape.layers * 4) failure = "a2a sums out of step";
        if (n < prev) failure = "steps went backwards";
        prev = n;
        // Decoded rows of the snapshot are whole: each step routed tokens × top_k.
        for (const ExpertLoadRow& r : reader.expert_load_after(run, 3, std::max<int64_t>(0, n - 3))) {
          int64_t total = 0;
          for (int64_t c : r.counts) total += c;
          if (total != shape.tokens * shape.top_k) failure = "a torn expert_load row";
        }
        if (!failure.empty()) return;
        ++snapshots;
        max_seen = n;
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });

  IngestOptions opt;
  opt.flush_interval = std::chrono::milliseconds(2);
  opt.batch_rows = 50;
  Ingestor ing(db, run, opt);
  ing.feed(synthetic_run_start(shape));
  for (int64_t s = 1; s <= shape.steps; ++s) {
    ing.feed(synthetic_step(shape, s));
    if (s % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ing.feed(synthetic_run_end(shape));
  IngestResult r = ing.finish();
  done = true;
  reader_thread.join();
  EXPECT_EQ(failure, "");
  EXPECT_EQ(r.status, "completed");
  EXPECT_GT(snapshots.load(), 10) << "the reader must have run during ingest";
  RunReader reader(db);
  EXPECT_EQ(reader.run(run).n_steps, shape.steps);
}

}  // namespace
}  // namespace moe::store
