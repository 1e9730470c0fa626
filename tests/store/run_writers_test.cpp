// Local runs whose recorder died: a later reader marks them failed and stops their runtime
// (run_writers.h). Real processes stand in for the recorder and the runtime.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_reader.h"
#include "run_writers.h"
#include "store_test_util.h"

namespace moe::store {
namespace {

using test::TempDir;

// A child that sleeps until killed; `own_group`: it leads a process group (as the runtime does).
pid_t sleeper(bool own_group) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (own_group) ::setpgid(0, 0);
    for (;;) ::pause();
  }
  if (own_group) ::setpgid(pid, pid);
  return pid;
}

TEST(RunWriters, AnAbandonedLocalRunIsMarkedFailedAndItsRuntimeStopped) {
  TempDir dir;
  RunStore st(dir.file("runs.sqlite"));
  const int64_t abandoned = st.create_run("abandoned"), live = st.create_run("live"), done = st.create_run("done"),
                remote = st.create_run("remote");
  const pid_t writer = sleeper(false), runtime = sleeper(true), live_writer = sleeper(false);
  record_writer(st, abandoned, *process_of(writer));
  record_runtime(st, abandoned, *process_of(runtime));
  record_writer(st, live, *process_of(live_writer));
  record_writer(st, done, *process_of(writer));
  for (int64_t id : {abandoned, live, done, remote}) st.set_status(id, "running");
  st.set_status(done, "completed");

  // The writer dies (kill -9) but is not waited for yet: a zombie records nothing more either.
  ::kill(writer, SIGKILL);
  for (int i = 0; i < 200 && process_of(writer); ++i) ::usleep(5000);
  EXPECT_EQ(reap_abandoned_runs(st), (std::vector<int64_t>{abandoned}));

  RunReader reader(dir.file("runs.sqlite"));
  EXPECT_EQ(reader.run(abandoned).status, "failed");
  EXPECT_NE(reader.run(abandoned).end_reason.find("recording process (moe run, pid " + std::to_string(writer) + ")"),
            std::string::npos)
      << reader.run(abandoned).end_reason;
  EXPECT_EQ(reader.run(live).status, "running");  // its writer still records
  EXPECT_EQ(reader.run(done).status, "completed");
  EXPECT_EQ(reader.run(remote).status, "running");  // no writer row: a remote client may reattach
  int status = 0;
  ASSERT_EQ(::waitpid(runtime, &status, 0), runtime);  // the runtime's group was killed
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(reap_abandoned_runs(st).empty());  // once only

  ::kill(live_writer, SIGKILL);
  ::waitpid(live_writer, &status, 0);
  ::waitpid(writer, &status, 0);
  EXPECT_EQ(reap_abandoned_runs(st), (std::vector<int64_t>{live}));
}

// A detached run: its recorder left on purpose and its job goes on, so no reader reaps it (nor kills
// its runtime) and nobody records it now; once reattached, its new recorder is the one watched.
TEST(RunWriters, ADetachedRunIsLeftAloneUntilReattached) {
  TempDir dir;
  RunStore st(dir.file("runs.sqlite"));
  const int64_t run = st.create_run("detached");
  st.set_status(run, "running");
  const pid_t writer = sleeper(false), runtime = sleeper(true);
  record_writer(st, run, *process_of(writer), "moe-studio");
  record_runtime(st, run, *process_of(runtime));
  ASSERT_TRUE(live_writer(st, run).has_value());
  EXPECT_EQ(live_writer(st, run)->pid, writer);
  set_writer_detached(st, run, true);
  EXPECT_FALSE(live_writer(st, run).has_value());  // offered for reattach
  int status = 0;
  ::kill(writer, SIGKILL);
  ::waitpid(writer, &status, 0);
  EXPECT_TRUE(reap_abandoned_runs(st).empty());
  EXPECT_EQ(RunReader(dir.file("runs.sqlite")).run(run).status, "running");
  EXPECT_EQ(::waitpid(runtime, &status, WNOHANG), 0) << "the detached job's runtime was killed";

  // Reattached by another recorder (detached again cleared), which then dies: reaped as usual,
  // naming it, and the runtime recorded by the launch is stopped.
  const pid_t second = sleeper(false);
  record_writer(st, run, *process_of(second), "moe-studio");
  EXPECT_EQ(live_writer(st, run)->pid, second);
  ::kill(second, SIGKILL);
  ::waitpid(second, &status, 0);
  EXPECT_FALSE(live_writer(st, run).has_value());
  EXPECT_EQ(reap_abandoned_runs(st), (std::vector<int64_t>{run}));
  EXPECT_NE(RunReader(dir.file("runs.sqlite")).run(run).end_reason.find("(moe-studio, pid " + std::to_string(second) + ")"),
            std::string::npos);
  ASSERT_EQ(::waitpid(runtime, &status, 0), runtime);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// A reused pid (same number, another process) is not the recorder.
TEST(RunWriters, APidReusedByAnotherProcessIsNotTheWriter) {
  TempDir dir;
  RunStore st(dir.file("runs.sqlite"));
  const int64_t run = st.create_run("r");
  ProcessId me = this_process();
  me.start -= 1;  // what a process with our pid but another start time would look like
  record_writer(st, run, me);
  st.set_status(run, "running");
  EXPECT_EQ(reap_abandoned_runs(st), (std::vector<int64_t>{run}));
}

}  // namespace
}  // namespace moe::store
