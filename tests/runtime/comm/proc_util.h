#pragma once
// Test helpers: run a function as N forked rank processes and collect their exit statuses; pick a
// free TCP port; run a program and capture its stdout/stderr. Rank bodies report failures on
// stderr and through their exit code, which the parent asserts on.
#include <functional>
#include <string>
#include <vector>

namespace moe::rt::comm::test {

// A free port on 127.0.0.1 (bound then released; the tiny race is acceptable in tests).
int free_port();

struct ForkResult {
  std::vector<int> status;        // waitpid status per rank
  std::vector<std::string> err;   // captured stderr per rank
  bool timed_out = false;
};

// Forks one process per rank; each runs body(rank) and exits 0 if it returns normally, 1 with the
// message on stderr if it throws. Processes still alive after `timeout_s` are killed.
ForkResult fork_ranks(int n, const std::function<void(int rank)>& body, double timeout_s = 30);

// True when every rank exited 0; otherwise a description for the assertion message.
std::string failures(const ForkResult& r);

struct RunResult {
  int status = 0;     // waitpid status
  std::string out;    // stdout
  std::string err;    // stderr
  double seconds = 0;
  int pid = 0;
};

// Runs argv with extra environment entries, capturing output. `on_started(pid)` runs in the parent
// after the fork (e.g. to kill a rank later); the call returns when the program exits or after
// `timeout_s` (then it is killed and status reflects that).
RunResult run_program(const std::vector<std::string>& argv, const std::vector<std::string>& env, double timeout_s,
                      const std::function<void(int pid)>& on_started = {});

}  // namespace moe::rt::comm::test
