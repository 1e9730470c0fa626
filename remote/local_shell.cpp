// LocalShell: a job's node that is this machine (see local_shell.h).
#include "local_shell.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "error.h"

namespace moe::remote {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int e) { return std::strerror(e); }

// `/bin/sh -c command` with stdout and stderr on pipes; returns the pid (leader of its own group).
pid_t spawn_shell(const std::string& command, int& out_fd, int& err_fd) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw Error("pipe: " + errno_text(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]), ::close(out[1]);
    throw Error("pipe: " + errno_text(errno));
  }
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::setpgid(0, 0);  // a terminal's Ctrl-C reaches the caller only; stop() kills the whole group
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a caller killed with -9 leaves no watcher behind
    if (::getppid() != parent) ::_exit(127);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::close_range(3, ~0U, 0);  // the store's files, a studio's sockets: nothing leaks into a job
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGQUIT, SIGPIPE, SIGCHLD}) ::signal(sig, SIG_DFL);
    ::execve("/bin/sh", const_cast<char* const*>(argv), environ);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(out[0]), ::close(err[0]);
    throw Error("fork: " + errno_text(fork_errno));
  }
  ::setpgid(pid, pid);  // also from here, so the group exists before any kill(-pid)
  out_fd = out[0];
  err_fd = err[0];
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

LocalShell::LocalShell(std::string jobs_root, std::string name) : root_(std::move(jobs_root)), name_(std::move(name)) {
  if (root_.empty() || root_[0] != '/') throw Error("local jobs directory '" + root_ + "': must be an absolute path");
}

StreamResult LocalShell::stream(const std::string& command, const StreamHandlers& h) {
  int fds[2];
  const pid_t pid = spawn_shell(command, fds[0], fds[1]);
  StreamResult result;
  char buf[65536];
  while (fds[0] >= 0 || fds[1] >= 0) {
    if (h.stop && h.stop()) {
      ::kill(-pid, SIGKILL);
      result.stopped = true;
      break;
    }
    pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    const int rc = ::poll(p, 2, 100);
    if (rc < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && rc > 0; ++i) {
      if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t k = ::read(fds[i], buf, sizeof buf);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        ::close(fds[i]);
        fds[i] = -1;
        continue;
      }
      const auto& sink = i == 0 ? h.on_stdout : h.on_stderr;
      if (sink) sink(std::string_view(buf, static_cast<size_t>(k)));
    }
  }
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  result.exit_status = wait_status(pid);
  return result;
}

ExecResult LocalShell::run(const std::string& command) {
  ExecResult r;
  StreamHandlers h;
  h.on_stdout = [&](std::string_view s) { r.out += s; };
  h.on_stderr = [&](std::string_view s) { r.err += s; };
  r.exit_status = stream(command, h).exit_status;
  return r;
}

void LocalShell::write_files(const std::string& dir, const std::vector<JobFile>& files) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::permissions(dir, fs::perms::owner_all, ec);  // a spec may be private
  if (ec) throw Error(dir + ": cannot create directory: " + ec.message());
  for (const JobFile& f : files) {
    const fs::path path = fs::path(dir) / f.name;
    std::ofstream(path, std::ios::trunc | std::ios::binary) << f.content;
    fs::permissions(path, static_cast<fs::perms>(f.mode), ec);
    if (ec || fs::file_size(path, ec) != f.content.size()) throw Error(path.string() + ": cannot be written");
  }
}

}  // namespace moe::remote
