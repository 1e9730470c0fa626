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
