#pragma once
// The real `moe` CLI as a child process for the end-to-end remote tests: its stdout and stderr go
// to out.txt and err.txt in a test directory. MOE_CLI names the binary (tests/remote/CMakeLists.txt).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "remote_fixture.h"

namespace moe::remote::test {

struct MoeResult {
  int code = -1;
  std::string out, err;
};

inline pid_t spawn_moe(const std::vector<std::string>& args, const fs::path& dir) {
  const fs::path o = dir / "out.txt", e = dir / "err.txt";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fo = ::open(o.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fe = ::open(e.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fo, 1);
    ::dup2(fe, 2);
    std::vector<char*> argv = {const_cast<char*>(MOE_CLI)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(MOE_CLI, argv.data());
    _exit(127);
  }
  return pid;
}

inline MoeResult wait_moe(pid_t pid, const fs::path& dir) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_file(dir / "out.txt"),
          read_file(dir / "err.txt")};
}

inline MoeResult run_moe(const std::vector<std::string>& args, const fs::path& dir) {
  return wait_moe(spawn_moe(args, dir), dir);
}

}  // namespace moe::remote::test
