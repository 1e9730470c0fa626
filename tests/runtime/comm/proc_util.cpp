// Test helpers (see proc_util.h).
#include "proc_util.h"

#include "socket_util.h"

#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace moe::rt::comm::test {

using Clock = std::chrono::steady_clock;

int free_port() { return free_loopback_port(); }

namespace {

// Reads everything available from the fds into the strings until all are closed or the deadline.
void drain(std::vector<int>& fds, std::vector<std::string*>& outs, Clock::time_point deadline) {
  for (;;) {
    std::vector<pollfd> p;
    std::vector<size_t> idx;
    for (size_t i = 0; i < fds.size(); ++i)
      if (fds[i] >= 0) {
        p.push_back({fds[i], POLLIN, 0});
        idx.push_back(i);
      }
    if (p.empty()) return;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return;
    if (::poll(p.data(), p.size(), static_cast<int>(left)) <= 0) continue;
    for (size_t k = 0; k < p.size(); ++k) {
      if (!p[k].revents) continue;
      char buf[8192];
      const ssize_t n = ::read(p[k].fd, buf, sizeof(buf));
      if (n <= 0) {
        ::close(fds[idx[k]]);
        fds[idx[k]] = -1;
      } else {
        outs[idx[k]]->append(buf, static_cast<size_t>(n));
      }
    }
  }
}

int wait_until(pid_t pid, Clock::time_point deadline, bool& timed_out) {
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (Clock::now() >= deadline) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace

ForkResult fork_ranks(int n, const std::function<void(int rank)>& body, double timeout_s) {
  ForkResult result;
  result.status.resize(static_cast<size_t>(n));
  result.err.resize(static_cast<size_t>(n));
  std::vector<pid_t> pids;
  std::vector<int> fds;
  for (int r = 0; r < n; ++r) {
    int err[2];
    if (::pipe(err) != 0) throw std::runtime_error("pipe failed");
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(err[0]);
      ::dup2(err[1], 2);
      int code = 0;
      try {
        body(r);
      } catch (const std::exception& e) {
        const std::string msg = std::string(e.what()) + "\n";
        if (::write(2, msg.data(), msg.size()) < 0) { /* nothing else to do */ }
        code = 1;
      }
      ::_exit(code);  // no atexit handlers, no gtest teardown in the child
    }
    ::close(err[1]);
    pids.push_back(pid);
    fds.push_back(err[0]);
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  std::vector<std::string*> outs;
  for (auto& e : result.err) outs.push_back(&e);
  drain(fds, outs, deadline);
  for (int r = 0; r < n; ++r) result.status[static_cast<size_t>(r)] = wait_until(pids[static_cast<size_t>(r)], deadline, result.timed_out);
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  return result;
}

std::string failures(const ForkResult& r) {
  std::string s;
  if (r.timed_out) s += "timed out; ";
  for (size_t i = 0; i < r.status.size(); ++i) {
    const int st = r.status[i];
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) continue;
    s += "rank " + std::to_string(i) + (WIFSIGNALED(st) ? " signal " + std::to_string(WTERMSIG(st)) : " exit " + std::to_string(WEXITSTATUS(st))) +
         ": " + r.err[i] + "; ";
  }
  return s;
}

RunResult run_program(const std::vector<std::string>& argv, const std::vector<std::string>& env, double timeout_s,
                      const std::function<void(int pid)>& on_started) {
  int out[2], err[2];
  if (::pipe(out) != 0 || ::pipe(err) != 0) throw std::runtime_error("pipe failed");
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_copy = env;
  const auto t0 = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::close(out[0]);
    ::close(err[0]);
    for (auto& e : env_copy) ::putenv(e.data());
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  RunResult result;
  result.pid = pid;
  const auto deadline = t0 + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  std::thread reader;
  std::vector<int> fds{out[0], err[0]};
  std::vector<std::string*> outs{&result.out, &result.err};
  reader = std::thread([&] { drain(fds, outs, deadline); });
  if (on_started) on_started(pid);
  bool timed_out = false;
  result.status = wait_until(pid, deadline, timed_out);
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  reader.join();
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  return result;
}

}  // namespace moe::rt::comm::test
