// `moe run SPEC --db FILE [--set k=v]…`: validates the spec, records a run, starts the local runtime
// (`moe-runtime train SPEC --set …`) as a child process and ingests its stdout (the metrics stream)
// into the store as it arrives. Ctrl-C is forwarded to the runtime as SIGINT; the run is then
// recorded as `cancelled`. The runtime is $MOE_RUNTIME, else found beside this binary.
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "cli_args.h"
#include "cli_format.h"
#include "commands.h"
#include "error.h"
#include "ingestor.h"
#include "job_spec.h"
#include "remote_run.h"
#include "run_reader.h"
#include "run_store.h"
#include "run_writers.h"
#include "runtime_path.h"
#include "spec_validation.h"

namespace moe::cli {

namespace {

// A TCP port on 127.0.0.1 that is free now, for the local ranks' rendezvous (the kernel picks it;
// another process could take it before rank 0 binds, which the launcher then reports clearly).
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(std::string("moe run: socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw Error(std::string("moe run: no free port on 127.0.0.1: ") + std::strerror(err));
  return ntohs(addr.sin_port);
}

namespace fs = std::filesystem;

volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_cancelled = 0;

void forward_signal(int) {
  g_cancelled = 1;
  if (g_child > 0) ::kill(static_cast<pid_t>(g_child), SIGINT);
}

const char* kUsage =
    "usage: moe run SPEC --db FILE [--set path.key=value]… [--name NAME] [--tag TAG]…\n"
    "               [--checkpoint-dir DIR] [--resume DIR]\n\n"
    "Validates SPEC, records a new run in the run store FILE, starts `moe-runtime train SPEC --set …`\n"
    "locally and records its metrics stream live (watch it with the studio or `moe runs show`).\n"
    "Ctrl-C stops the runtime and records the run as cancelled. The runtime is $MOE_RUNTIME, else\n"
    "moe-runtime beside this program. Checkpoints go to --checkpoint-dir DIR, else (when the spec's\n"
    "runtime.checkpoint_every > 0) to STORE-checkpoints/run-ID beside the store; --resume DIR continues\n"
    "from one (a checkpoint directory or a root with `latest`). A spec with dp·tp·pp·ep > 1 ranks\n"
    "runs them all here, one process each (the runtime's launcher, on a free 127.0.0.1 port).\n"
    "Exit status: 0 completed, 1 failed or invalid input, 2 usage, 130 cancelled.\n\n"
    "Remote (docs/remote.md): moe run SPEC --db FILE --hosts HOSTFILE [--accept-new-host-keys]\n"
    "  [--known-hosts FILE] [--ssh-config FILE] [--bundle DIR] [--master-port N] deploys the runtime\n"
    "  bundle to every node over SSH, starts one launcher per node and records rank 0's metrics.\n"
    "  moe run --attach RUN --db FILE [--hosts HOSTFILE] reattaches to a remote run whose client died,\n"
    "  resuming from the last recorded byte.\n";

}  // namespace

int cmd_run(const std::vector<std::string>& argv) {
  std::vector<std::string> options = {"--db", "--set", "--name", "--tag", "--hosts", "--checkpoint-dir", "--resume"};
  options.insert(options.end(), std::begin(kRemoteRunOptions), std::end(kRemoteRunOptions));
  Args args("run", argv, {std::begin(kRemoteRunFlags), std::end(kRemoteRunFlags)}, options);
  if (args.help()) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (is_remote_run(args)) {
    if (!args.value("--checkpoint-dir").empty() || !args.value("--resume").empty())
      throw UsageError{"--checkpoint-dir and --resume are for local runs (remote nodes keep no checkpoints yet)"};
    return run_remote(args);  // remote_run.cpp
  }
  args.expect_positionals(1, "SPEC (a job spec JSON file)");
  const std::string db = args.value("--db");
  if (db.empty()) throw UsageError{"--db FILE is required"};
  const std::string spec_file = args.positionals()[0];
  const std::vector<std::string> sets = args.values("--set");
  const JobSpec spec = load_spec(spec_file, sets);
  throw_if_invalid(validate_spec(spec));
  const std::string runtime = find_runtime().string();

  int64_t id;
  {
    store::RunStore st(db);
    id = st.create_run(args.value("--name", spec.name), spec_to_json(spec).dump());
    for (const auto& t : args.values("--tag")) st.add_tag(id, t);
    store::record_writer(st, id, store::this_process());  // a later reader can tell if we die
  }
  // Checkpoints: where asked, else beside the store when the spec wants them (the runtime would
  // otherwise warn and write none): <store>-checkpoints/run-<id>.
  std::string checkpoint_dir = args.value("--checkpoint-dir");
  if (checkpoint_dir.empty() && spec.runtime.checkpoint_every > 0) {
    const fs::path store(db);
    checkpoint_dir = (store.parent_path() / (store.stem().string() + "-checkpoints") / ("run-" + std::to_string(id))).string();
  }
  std::fprintf(stderr, "moe run: run %lld, recording into %s (%s)%s%s\n", static_cast<long long>(id),
               display_text(db).c_str(), display_text(runtime).c_str(), checkpoint_dir.empty() ? "" : ", checkpoints in ",
               checkpoint_dir.empty() ? "" : display_text(checkpoint_dir).c_str());

  std::vector<std::string> child_args = {runtime, "train", spec_file};
  for (const auto& s : sets) {
    child_args.push_back("--set");
    child_args.push_back(s);
  }
  for (const auto& [flag, value] : {std::pair{"--checkpoint-dir", checkpoint_dir}, std::pair{"--resume", args.value("--resume")}})
    if (!value.empty()) child_args.insert(child_args.end(), {flag, value});
  // dp·tp·pp·ep ranks: the runtime's launcher starts them all on this machine (one process each),
  // meeting on a free loopback port so two local runs never share a rendezvous.
  const int64_t world = spec.parallel.world_size();
  if (world > 1) {
    if (spec.cluster.nodes.size() > 1)
      std::fprintf(stderr, "moe run: the spec lists %zu nodes; all %lld ranks run on this machine (use --hosts to spread them)\n",
                   spec.cluster.nodes.size(), static_cast<long long>(world));
    for (const std::string& a : {std::string("--nproc-per-node"), std::to_string(world), std::string("--master"),
                                 "127.0.0.1:" + std::to_string(free_loopback_port())})
      child_args.push_back(a);
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw Error(std::string("moe run: pipe: ") + std::strerror(errno));

  // Forward Ctrl-C and termination to the runtime; it writes run_end "cancelled" and exits.
  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);  // no SA_RESTART: a blocked read returns EINTR and is retried
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);

  pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("moe run: fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Own process group: a terminal's Ctrl-C reaches moe only, which forwards it once.
    ::setpgid(0, 0);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::dup2(out[1], 1);
    std::vector<char*> cargs;
    for (auto& a : child_args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    ::execv(runtime.c_str(), cargs.data());
    std::fprintf(stderr, "moe run: cannot start %s: %s\n", runtime.c_str(), std::strerror(errno));
    _exit(127);
  }
  g_child = pid;
  if (g_cancelled) ::kill(pid, SIGINT);  // Ctrl-C between fork and here
  ::close(out[1]);
  if (const auto runtime_process = store::process_of(pid)) {
    store::RunStore st(db);
    store::record_runtime(st, id, *runtime_process);
  }

  store::IngestResult result;
  std::string ingest_error;
  int wstatus = 0;
  {
    store::Ingestor ing(db, id);
    try {
      store::feed_from_fd(ing, out[0], "the runtime's stdout");
    } catch (const Error& e) {
      ingest_error = e.what();
      ::kill(pid, SIGINT);  // cannot record: stop the run rather than train blind
    }
    ::close(out[0]);
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    g_child = 0;
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    const bool clean_exit = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
    const std::string status_without_end = g_cancelled ? "cancelled" : clean_exit ? "interrupted" : "failed";
    try {
      result = ing.finish(status_without_end);
    } catch (const Error& e) {  // the store refused a write (e.g. a full disk): reported below
      if (ingest_error.empty()) ingest_error = e.what();
    }
  }
  if (!ingest_error.empty()) {
    try {  // say why in the run's record if the store still takes a small write (a full disk may not)
      store::RunStore st(db);
      st.set_status(id, "failed", "recording stopped: " + ingest_error);
    } catch (const Error& e) {  // the next `moe runs` marks it failed (its recorder is gone by then)
      std::fprintf(stderr, "moe run: run %lld: could not record the failure: %s\n", static_cast<long long>(id), e.what());
    }
    throw Error(ingest_error);
  }

  store::RunStore st(db);
  const char* signame = WIFSIGNALED(wstatus) ? sigabbrev_np(WTERMSIG(wstatus)) : nullptr;
  std::string how = WIFEXITED(wstatus) ? "exit code " + std::to_string(WEXITSTATUS(wstatus))
                                       : "signal " + std::to_string(WTERMSIG(wstatus)) +
                                             (signame ? std::string(" (SIG") + signame + ")" : std::string());
  if (!result.saw_run_end) {
    // The stream stopped without run_end: say why in the run's record.
    st.set_status(id, result.status,
                  (g_cancelled ? "cancelled by the user" : "moe-runtime ended without run_end") + std::string(": ") + how);
  }

  store::RunReader reader(db);
  store::RunInfo info = reader.run(id);
  std::fprintf(stderr, "moe run: run %lld %s: %lld steps, final loss %s, %lld malformed line(s)\n",
               static_cast<long long>(id), info.status.c_str(), static_cast<long long>(info.n_steps),
               std::isnan(info.last_loss) ? "-" : fmt_fixed(info.last_loss, 4).c_str(),
               static_cast<long long>(info.malformed_lines));
  std::printf("%lld\n", static_cast<long long>(id));
  if (info.status == "completed") return 0;
  if (info.status == "cancelled") return 130;
  return 1;
}

}  // namespace moe::cli
