// The resume point of a remote run (Ingestor::feed_line + remote_runs.metrics_offset): after every
// commit, the stored offset covers exactly the records stored, so a reattach that reads from it
// neither loses nor repeats a record, whatever moment the client is killed at.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ingestor.h"
#include "remote_runs.h"
#include "run_store.h"
#include "sqlite_db.h"
#include "synthetic_stream.h"

namespace moe::store {
namespace {

namespace fs = std::filesystem;

int64_t step_lines(const std::string& stream, size_t upto) {
  int64_t n = 0;
  for (size_t p = stream.find("\"type\":\"step\""); p != std::string::npos && p < upto;
       p = stream.find("\"type\":\"step\"", p + 1)) {
    ++n;
  }
  return n;
}

TEST(ResumePoint, StoredOffsetCoversExactlyTheCommittedRecords) {
  std::random_device rd;
  const fs::path dir = fs::temp_directory_path() / ("moe-resume-" + std::to_string(rd()));
  fs::create_directories(dir);
  const std::string db = (dir / "runs.sqlite").string();

  SyntheticShape shape;
  shape.steps = 60;
  shape.layers = 2;
  // A record type this build does not know, last: ignored (re-reading it stores nothing, so the
  // offset may or may not move past it).
  const std::string stream = synthetic_stream(shape) + "{\"type\":\"from_the_future\"}\n";
  const size_t end_of_run_end = stream.rfind("{\"type\":\"from_the_future\"}");

  int64_t run;
  {
    RunStore st(db);
    run = st.create_run("resume", "{}");
    RemoteRunRow row;
    row.run_id = run;
    row.job_id = "job";
    row.hostfile = "node-a\n";
    row.master_port = 29500;
    add_remote_run(st, row, "[\"node-a\"]");
  }
  auto stored = [&](int64_t& offset, int64_t& steps) {
    Db d(db, Db::Mode::read_only);
    Stmt q(d, "SELECT metrics_offset, (SELECT count(*) FROM steps WHERE run_id = ?1) FROM remote_runs WHERE run_id = ?1");
    q.bind(1, run);
    ASSERT_TRUE(q.step());
    offset = q.col_int(0);
    steps = q.col_int(1);
  };

  IngestOptions opt;
  opt.batch_rows = 7;  // commits fall between the records of one step, not only between steps
  opt.flush_interval = std::chrono::milliseconds(1);
  std::atomic<int> commits = 0, mismatches = 0;
  std::atomic<int64_t> committed_records = 0;
  opt.on_commit = [&](const BatchResult&, int64_t committed) {
    int64_t offset = 0, steps = 0;
    stored(offset, steps);
    ++commits;
    if (step_lines(stream, static_cast<size_t>(offset)) != steps) ++mismatches;
    committed_records = committed;
  };
  {
    Ingestor ing(db, run, opt);
    size_t pos = 0;
    int64_t fed = 0;
    while (pos < stream.size()) {
      const size_t nl = stream.find('\n', pos);
      ing.feed_line(std::string_view(stream).substr(pos, nl - pos), nl + 1);
      pos = nl + 1;
      if (pos <= end_of_run_end) ++fed;  // every line before the unknown one is a record
      // Every 5 lines (a step is 11), wait until the writer has committed them: commits fall
      // between the records of one step at varying places, however slow the machine.
      if (fed % 5 == 0 && pos <= end_of_run_end) {
        for (int i = 0; i < 20000 && committed_records.load() < fed; ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    EXPECT_TRUE(ing.finish().saw_run_end);
  }
  EXPECT_GT(commits.load(), static_cast<int>(step_lines(stream, stream.size())));
  EXPECT_EQ(mismatches, 0);
  int64_t offset = 0, steps = 0;
  stored(offset, steps);
  EXPECT_EQ(steps, shape.steps);
  EXPECT_GE(static_cast<size_t>(offset), end_of_run_end);
  EXPECT_LE(static_cast<size_t>(offset), stream.size());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moe::store
