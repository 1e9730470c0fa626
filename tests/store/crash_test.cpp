// kill -9 of the writer mid-ingest: a real child process ingests, the test kills it after a few
// commits, then reopens the file: integrity_check is ok and every batch the child reported as
// committed is there (and what is there is a prefix of the stream).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_reader.h"
#include "store_test_util.h"
#include "synthetic_stream.h"

namespace moe::store {
namespace {

TEST(Crash, KillNineMidIngestLosesNothingCommitted) {
  test::TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  const std::string stream_file = dir.file("stream.jsonl");
  SyntheticShape shape{.steps = 3000, .layers = 4, .experts = 64, .ranks = 0};
  test::write_file(stream_file, synthetic_stream(shape));

  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    ::execl(STORE_INGEST_CHILD, STORE_INGEST_CHILD, db.c_str(), stream_file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(out[1]);
  FILE* f = ::fdopen(out[0], "r");
  ASSERT_NE(f, nullptr);
  int64_t committed = 0;
  int commits = 0;
  char line[256];
  while (commits < 25 && std::fgets(line, sizeof line, f)) {
    long long n = 0;
    if (std::sscanf(line, "committed %lld", &n) == 1) {
      committed = n;
      ++commits;
    }
  }
  ASSERT_EQ(commits, 25) << "the child stopped early";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  // Lines the child printed before it died are commits too.
  while (std::fgets(line, sizeof line, f)) {
    long long n = 0;
    if (std::sscanf(line, "committed %lld", &n) == 1) committed = n;
  }
  std::fclose(f);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child finished before the kill";

  RunStore store(db);  // reopening recovers the WAL
  Stmt ic(store.db(), "PRAGMA integrity_check");
  ASSERT_TRUE(ic.step());
  EXPECT_EQ(ic.col_text(0), "ok");
  Stmt q(store.db(), "SELECT (SELECT count(*) FROM steps), (SELECT coalesce(max(step), 0) FROM steps),"
                     " (SELECT count(*) FROM expert_load), (SELECT has_run_start FROM runs), (SELECT status FROM runs)");
  ASSERT_TRUE(q.step());
  int64_t steps = q.col_int(0), max_step = q.col_int(1), loads = q.col_int(2), start = q.col_int(3);
  EXPECT_GE(steps + loads + start, committed);
  EXPECT_LT(steps, shape.steps) << "the kill came after the end";
  EXPECT_EQ(steps, max_step) << "a hole: not a prefix";
  EXPECT_GE(loads, steps * shape.layers);
  EXPECT_LE(loads, (steps + 1) * shape.layers);
  EXPECT_EQ(q.col_text(4), "running");
  // A later ingest into the same file still works.
  int64_t run2 = store.create_run("after");
  Ingestor ing(db, run2);
  ing.feed(synthetic_stream(SyntheticShape{.steps = 3, .layers = 1, .experts = 4, .ranks = 0}));
  EXPECT_EQ(ing.finish().status, "completed");
}

}  // namespace
}  // namespace moe::store
