// The per-node launcher (see launcher.h). One poll() loop over the children's pipes and a
// signalfd (SIGCHLD, SIGINT, SIGTERM), so output, exits and signals are handled in one place.
#include "launcher.h"

#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <algorithm>
#include <random>
#include <fstream>
#include <optional>
#include <poll.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "record_codec.h"

#include "error.h"
#include "rendezvous.h"
#include "socket_util.h"

namespace moe::rt::comm {

using Clock = std::chrono::steady_clock;

// ---- flags ---------------------------------------------------------------------------------

namespace {

int parse_int_flag(const std::string& flag, const std::string& value, int min_value) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < min_value || v > 1 << 20)
    throw Error(flag + ": expected an integer ≥ " + std::to_string(min_value) + ", got '" + value + "'");
  return static_cast<int>(v);
}

// Printable, no spaces, bounded: it travels in the environment and appears in error messages.
std::string job_id_flag(const std::string& value) {
  const bool ok = !value.empty() && value.size() <= 128 &&
                  std::all_of(value.begin(), value.end(), [](char c) { return c > ' ' && c < 127; });
  if (!ok) throw Error("--job-id: expected 1–128 printable characters without spaces, got '" + value + "'");
  return value;
}

double parse_seconds_flag(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !(v > 0)) throw Error(flag + ": expected seconds > 0, got '" + value + "'");
  return v;
}

}  // namespace

void take_launcher_flags(std::vector<std::string>& args, LauncherOptions& o) {
  static const char* kFlags[] = {"--nproc-per-node", "--nnodes", "--node-rank", "--master", "--grace", "--comm-timeout",
                                 "--job-id"};
  std::vector<std::string> rest;
  bool saw_node_rank = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    bool matched = false;
    for (const char* f : kFlags) {
      const std::string name = f;
      if (flag == name) {
        if (i + 1 >= args.size()) throw Error(name + ": missing value");
        value = args[++i];
        matched = true;
      } else if (flag.rfind(name + "=", 0) == 0) {
        value = flag.substr(name.size() + 1);
        flag = name;
        matched = true;
      }
      if (matched) break;
    }
    if (!matched) {
      rest.push_back(args[i]);
      continue;
    }
    if (flag == "--nproc-per-node") o.nproc_per_node = parse_int_flag(flag, value, 1);
    else if (flag == "--nnodes") o.nnodes = parse_int_flag(flag, value, 1);
    else if (flag == "--node-rank") o.node_rank = parse_int_flag(flag, value, 0), saw_node_rank = true;
    else if (flag == "--master") parse_host_port(value, o.master_host, o.master_port, "--master");
    else if (flag == "--grace") o.grace_s = parse_seconds_flag(flag, value);
    else if (flag == "--comm-timeout") o.comm_timeout_s = parse_seconds_flag(flag, value);
    else if (flag == "--job-id") o.job_id = job_id_flag(value);
  }
  if (o.node_rank >= o.nnodes)
    throw Error("--node-rank " + std::to_string(o.node_rank) + " must be below --nnodes " + std::to_string(o.nnodes));
  if (o.nnodes > 1 && !saw_node_rank) throw Error("--nnodes " + std::to_string(o.nnodes) + " needs --node-rank");
  args = std::move(rest);
}

void check_launch_world(const LauncherOptions& o, int64_t spec_world_size) {
  if (o.world_size() != spec_world_size)
    throw Error("--nproc-per-node " + std::to_string(o.nproc_per_node) + " × --nnodes " + std::to_string(o.nnodes) +
                " = " + std::to_string(o.world_size()) + " processes, but the spec needs dp·tp·pp·ep = " +
                std::to_string(spec_world_size));
}

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) throw Error("cannot read /proc/self/exe: " + errno_text(errno));
  return std::string(buf, static_cast<size_t>(n));
}

// ---- supervision ---------------------------------------------------------------------------

namespace {

// The record a line holds, if it is one of type R.
template <typename R>
const R* record_of(const metrics::ParsedLine& parsed) {
  const auto* record = std::get_if<metrics::Record>(&parsed);
  return record ? std::get_if<R>(record) : nullptr;
}

// Set when a write to stdout (the metrics stream) finds no reader: the supervisor then stops the
// ranks, since nothing they report would be recorded.
bool g_stdout_lost = false;

void write_fd(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (fd == 1 && errno == EPIPE) g_stdout_lost = true;
      return;  // stderr gone: keep supervising the ranks anyway
    }
    p += k;
    n -= static_cast<size_t>(k);
  }
}

void write_line(int fd, const std::string& line) {
  const std::string s = line + "\n";
  write_fd(fd, s.data(), s.size());
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

struct Stream {
  int fd = -1;
  std::string pending;  // bytes after the last newline
};

struct Rank {
  int global = 0;
  pid_t pid = -1;
  Stream out, err;
  bool exited = false;
  int status = 0;
  std::string last_err_line;
};

// One node: a fresh random id, so another launch on the same master port is refused. Several nodes
// must agree without talking: the master address (an orchestrator's --job-id is better; moe run and
// the Slurm script pass one).
std::string default_job_id(const LauncherOptions& o) {
  if (o.nnodes > 1) return "master-" + o.master_host + "-" + std::to_string(o.master_port);
  std::random_device rd;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%08x%08x", rd(), rd());
  return std::string("local-") + hex;
}

class Supervisor {
 public:
  Supervisor(const LauncherOptions& o, const std::vector<std::string>& argv)
      : o_(o), argv_(argv), job_id_(o.job_id.empty() ? default_job_id(o) : o.job_id) {}
  int run();

 private:
  void spawn(Rank& r, int local_rank);
  void on_line(Rank& r, bool is_stdout, const std::string& line);
  void pump(Rank& r, Stream& s);
  void flush_partial(Rank& r, Stream& s);
  void reap();
  void begin_shutdown(int sig);
  void on_failure(Rank& r);
  void on_stdout_lost();
  void finish_metrics();
  std::string describe_exit(const Rank& r) const;

  LauncherOptions o_;
  std::vector<std::string> argv_;
  std::string job_id_;
  std::vector<Rank> ranks_;
  pid_t pgid_ = 0;
  int sigfd_ = -1;
  std::optional<Clock::time_point> kill_at_;
  int cancel_signal_ = 0;    // SIGINT/SIGTERM received by the launcher (or SIGPIPE: stdout's reader gone)
  int failed_index_ = -1;    // first rank seen failing
  bool killed_ = false;
  std::optional<std::string> rank0_run_end_;  // held back
  int64_t last_step_ = 0;
};

void Supervisor::spawn(Rank& r, int local_rank) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw Error("launcher: pipe failed: " + errno_text(errno));
  RankEnv env;
  env.rank = r.global;
  env.world_size = o_.world_size();
  env.local_rank = local_rank;
  env.local_world_size = o_.nproc_per_node;
  env.node_rank = o_.node_rank;
  env.nnodes = o_.nnodes;
  env.master_host = o_.master_host;
  env.master_port = o_.master_port;
  env.timeout = std::chrono::milliseconds(static_cast<int64_t>(o_.comm_timeout_s * 1000));
  env.job_id = job_id_;
  // Build everything the child needs before fork: only async-signal-safe calls after it.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env.to_env()) env_strings.push_back(k + "=" + v);
  if (!o_.metrics_path.empty()) env_strings.push_back("MOE_METRICS=" + o_.metrics_path);
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    bool overridden = false;
    for (const auto& s : env_strings)
      if (entry.compare(0, s.find('=') + 1, s, 0, s.find('=') + 1) == 0) overridden = true;
    if (!overridden) envp.push_back(*e);
  }
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (auto& a : argv_) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) throw Error("launcher: fork failed for rank " + std::to_string(r.global) + ": " + errno_text(errno));
  if (pid == 0) {
    ::setpgid(0, pgid_);  // pgid_ 0 for the first rank: it leads the group
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a launcher killed with -9 takes its ranks with it
    if (::getppid() != parent) ::_exit(127);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "launcher: exec failed\n";
    write_fd(2, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  if (pgid_ == 0) pgid_ = pid;
  ::setpgid(pid, pgid_);  // also from the parent, so the group exists before any kill(-pgid)
  ::close(out[1]);
  ::close(err[1]);
  r.pid = pid;
  r.out.fd = out[0];
  r.err.fd = err[0];
}

void Supervisor::on_line(Rank& r, bool is_stdout, const std::string& line) {
  if (r.global == 0 && is_stdout) {
    // The metrics stream: untouched, except run_end is held until every rank is done.
    const metrics::ParsedLine parsed = metrics::parse_line(line);
    if (record_of<metrics::RunEndRecord>(parsed)) {
      rank0_run_end_ = line;
      return;
    }
    if (const auto* s = record_of<metrics::StepRecord>(parsed)) last_step_ = s->step;
    write_line(1, line);
    return;
  }
  if (!is_stdout && !line.empty()) r.last_err_line = line;
  if (r.global == 0) write_line(2, line);
  else write_line(2, "[rank " + std::to_string(r.global) + "] " + line);
}

void Supervisor::pump(Rank& r, Stream& s) {
  char buf[65536];
  const ssize_t k = ::read(s.fd, buf, sizeof(buf));
  if (k < 0 && errno == EINTR) return;
  if (k <= 0) {
    flush_partial(r, s);
    ::close(s.fd);
    s.fd = -1;
    return;
  }
  s.pending.append(buf, static_cast<size_t>(k));
  size_t start = 0;
  for (size_t nl; (nl = s.pending.find('\n', start)) != std::string::npos; start = nl + 1)
    on_line(r, &s == &r.out, s.pending.substr(start, nl - start));
  s.pending.erase(0, start);
}

void Supervisor::flush_partial(Rank& r, Stream& s) {
  if (!s.pending.empty()) on_line(r, &s == &r.out, s.pending);
  s.pending.clear();
}

std::string Supervisor::describe_exit(const Rank& r) const {
  if (WIFSIGNALED(r.status)) {
    const int sig = WTERMSIG(r.status);
    return "was killed by signal " + std::to_string(sig) + " (" + signal_name(sig) + ")";
  }
  return "exited with status " + std::to_string(WEXITSTATUS(r.status));
}

void Supervisor::begin_shutdown(int sig) {
  if (pgid_ > 0) ::kill(-pgid_, sig);
  if (!kill_at_) kill_at_ = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o_.grace_s * 1000));
}

void Supervisor::on_failure(Rank& r) {
  if (failed_index_ >= 0 || cancel_signal_) return;
  failed_index_ = static_cast<int>(&r - ranks_.data());
  write_line(2, "launcher: rank " + std::to_string(r.global) + " " + describe_exit(r) + "; stopping the other ranks");
  begin_shutdown(SIGTERM);
}

// The metrics stream's reader (moe run, the studio) is gone — killed, or its pipe closed — and this
// launcher's stdout is a pipe: stop the job like a cancellation, so no rank trains on unrecorded.
void Supervisor::on_stdout_lost() {
  if (cancel_signal_ || failed_index_ >= 0) return;
  cancel_signal_ = SIGPIPE;
  write_line(2, "launcher: the reader of the metrics stream (stdout) is gone; stopping the ranks");
  begin_shutdown(SIGTERM);
}

void Supervisor::reap() {
  // Collect every exit first, then pick the failure to blame: a rank that died by a signal we
  // did not send beats one that exited with an error because its peer vanished.
  std::vector<Rank*> failed_now;
  for (auto& r : ranks_) {
    if (r.exited) continue;
    int status = 0;
    const pid_t p = ::waitpid(r.pid, &status, WNOHANG);
    if (p != r.pid) continue;
    r.exited = true;
    r.status = status;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) failed_now.push_back(&r);
  }
  if (failed_now.empty()) return;
  Rank* blame = failed_now.front();
  for (Rank* r : failed_now)
    if (WIFSIGNALED(r->status) && !WIFSIGNALED(blame->status)) blame = r;
  on_failure(*blame);
}

void Supervisor::finish_metrics() {
  if (!o_.hosts_rank0()) return;
  const bool to_file = !o_.metrics_path.empty() && o_.metrics_path != "-";
  std::vector<std::string> lines;
  if (to_file) {  // rank 0 wrote the stream to the file, not to us: its last step is in there
    std::ifstream in(o_.metrics_path);
    for (std::string line; std::getline(in, line);) {
      const metrics::ParsedLine parsed = metrics::parse_line(line);
      if (const auto* s = record_of<metrics::StepRecord>(parsed)) last_step_ = std::max(last_step_, s->step);
    }
  }
  std::optional<std::string> record;
  if (failed_index_ >= 0) {
    const Rank& r = ranks_[static_cast<size_t>(failed_index_)];
    metrics::RunEndRecord end;
    end.status = "failed";
    end.steps = last_step_;
    end.reason = "rank " + std::to_string(r.global) + " " + describe_exit(r) +
                 (r.last_err_line.empty() ? "" : ": " + r.last_err_line);
    end.failed_rank = r.global;
    if (WIFSIGNALED(r.status)) end.signal = WTERMSIG(r.status);
    else end.exit_status = WEXITSTATUS(r.status);
    record = metrics::to_line(end);
  } else if (rank0_run_end_) {
    record = *rank0_run_end_;
  } else if (cancel_signal_) {
    metrics::RunEndRecord end;
    end.status = "cancelled";
    end.steps = last_step_;
    end.reason = "launcher received " + signal_name(cancel_signal_);
    record = metrics::to_line(end);
  }
  if (!record) return;
  if (!to_file) {
    write_line(1, *record);
    return;
  }
  // Metrics in a file written by rank 0: replace a run_end it wrote after the failure.
  {
    std::ifstream in(o_.metrics_path);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  while (!lines.empty() && record_of<metrics::RunEndRecord>(metrics::parse_line(lines.back()))) lines.pop_back();
  lines.push_back(*record);
  std::ofstream out(o_.metrics_path, std::ios::trunc);
  for (const auto& line : lines) out << line << '\n';
}

int Supervisor::run() {
  sigset_t mask, old_mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (::sigprocmask(SIG_BLOCK, &mask, &old_mask) != 0) throw Error("launcher: sigprocmask failed");
  sigfd_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd_ < 0) throw Error("launcher: signalfd failed: " + errno_text(errno));
  ::signal(SIGPIPE, SIG_IGN);

  ranks_.resize(static_cast<size_t>(o_.nproc_per_node));
  for (int i = 0; i < o_.nproc_per_node; ++i) {
    ranks_[static_cast<size_t>(i)].global = o_.node_rank * o_.nproc_per_node + i;
    spawn(ranks_[static_cast<size_t>(i)], i);
  }
  // A pipe's write end polls POLLERR once its reader has closed it: watch stdout when it is a pipe
  // that carries the stream (with --metrics FILE the stream goes to the file instead).
  struct stat out_stat {};
  const bool watch_stdout = o_.hosts_rank0() && (o_.metrics_path.empty() || o_.metrics_path == "-") &&
                            ::fstat(1, &out_stat) == 0 && S_ISFIFO(out_stat.st_mode);

  for (;;) {
    bool all_exited = true;
    if (g_stdout_lost) on_stdout_lost();
    std::vector<pollfd> fds{{sigfd_, POLLIN, 0}};
    std::vector<std::pair<Rank*, Stream*>> owners{{nullptr, nullptr}};
    const bool stdout_polled = watch_stdout && !cancel_signal_ && failed_index_ < 0;
    if (stdout_polled) {
      fds.push_back({1, 0, 0});  // no events asked: POLLERR/POLLHUP are always reported
      owners.emplace_back(nullptr, nullptr);
    }
    for (auto& r : ranks_) {
      all_exited = all_exited && r.exited;
      for (Stream* s : {&r.out, &r.err})
        if (s->fd >= 0) {
          fds.push_back({s->fd, POLLIN, 0});
          owners.emplace_back(&r, s);
        }
    }
    if (all_exited && fds.size() == (stdout_polled ? 2u : 1u)) break;
    int timeout_ms = all_exited ? 500 : -1;  // after the last exit, give grandchildren's pipes a moment
    if (kill_at_ && !killed_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*kill_at_ - Clock::now()).count();
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left));
    }
    const int rc = ::poll(fds.data(), fds.size(), timeout_ms);
    if (rc < 0 && errno != EINTR) break;
    if (rc == 0 && all_exited) break;  // pipes held open by something else: stop reading
    if (kill_at_ && !killed_ && Clock::now() >= *kill_at_) {
      killed_ = true;
      write_line(2, "launcher: ranks still running after the grace period: sending SIGKILL");
      ::kill(-pgid_, SIGKILL);
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      while (::read(sigfd_, &info, sizeof(info)) == sizeof(info)) {
        const int sig = static_cast<int>(info.ssi_signo);
        if (sig == SIGINT || sig == SIGTERM) {
          if (cancel_signal_ || failed_index_ >= 0) {
            killed_ = true;
            ::kill(-pgid_, SIGKILL);  // second signal: no more grace
          } else {
            cancel_signal_ = sig;
            write_line(2, "launcher: received " + signal_name(sig) + "; forwarding to the ranks");
            begin_shutdown(sig);
          }
        }
      }
      reap();  // SIGCHLD (signals coalesce: always check every child)
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      if (owners[i].first == nullptr)
        on_stdout_lost();
      else
        pump(*owners[i].first, *owners[i].second);
    }
    reap();
  }
  for (auto& r : ranks_) {
    for (Stream* s : {&r.out, &r.err})
      if (s->fd >= 0) {
        flush_partial(r, *s);
        ::close(s->fd);
        s->fd = -1;
      }
  }
  finish_metrics();
  ::close(sigfd_);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  if (failed_index_ >= 0) return 1;
  if (cancel_signal_) return 128 + cancel_signal_;
  return 0;
}

}  // namespace

int run_launcher(const LauncherOptions& options, const std::vector<std::string>& rank_argv) {
  if (rank_argv.empty()) throw Error("launcher: no command for the ranks");
  if (options.nproc_per_node < 1) throw Error("--nproc-per-node must be at least 1");
  Supervisor supervisor(options, rank_argv);
  return supervisor.run();
}

}  // namespace moe::rt::comm
