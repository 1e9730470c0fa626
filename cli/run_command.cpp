// `moe run SPEC --db FILE [--set k=v]…` (this machine), `moe run SPEC --db FILE --hosts HOSTFILE`
// (cluster nodes over SSH, remote_run.cpp) and `moe run --attach RUN --db FILE` (either): records a
// run and follows its job to the end through remote::RunSession, the code the studio runs too. A
// local run is a job directory beside the store (<store>-jobs/<job id>/node-0: run.sh, metrics.jsonl,
// log, exit_code) whose metrics are ingested from their byte offset, so it can be detached
// (--detach) and reattached (--attach) like a remote one; without a detach, the job stops when this
// process dies (its watchdog) and the next reader marks the run failed (core/store/run_writers.h).
// Ctrl-C cancels the job (SIGINT to it, as before) and records the run as `cancelled`.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "cli_args.h"
#include "cli_format.h"
#include "commands.h"
#include "error.h"
#include "job_spec.h"
#include "remote_run.h"
#include "run_reader.h"
#include "run_session.h"
#include "run_store.h"
#include "run_writers.h"
#include "spec_validation.h"

namespace moe::cli {

namespace {

std::atomic<bool> g_cancel{false};
void on_signal(int) { g_cancel = true; }

const char* kUsage =
    "usage: moe run SPEC --db FILE [--set path.key=value]… [--name NAME] [--tag TAG]…\n"
    "               [--checkpoint-dir DIR] [--resume DIR] [--detach]\n"
    "       moe run --attach RUN --db FILE [--hosts HOSTFILE]\n\n"
    "Validates SPEC, records a new run in the run store FILE, starts `moe-runtime train` on this machine\n"
    "and records its metrics stream live (watch it with the studio or `moe runs show`). The job runs in\n"
    "FILE-jobs/<job id>/ beside the store; it stops when `moe run` dies unless it was detached.\n"
    "Ctrl-C stops the runtime and records the run as cancelled. The runtime is $MOE_RUNTIME, else\n"
    "moe-runtime beside this program. Checkpoints go to --checkpoint-dir DIR, else (when the spec's\n"
    "runtime.checkpoint_every > 0) to STORE-checkpoints/run-ID beside the store; --resume DIR continues\n"
    "from one (a checkpoint directory or a root with `latest`). A spec with dp·tp·pp·ep > 1 ranks\n"
    "runs them all here, one process each (the runtime's launcher, on a free 127.0.0.1 port).\n"
    "--detach leaves the job running once it has started (prints the run id, exit 0); --attach RUN\n"
    "follows a detached run (or one whose `moe run --hosts` died) again, from the last recorded byte.\n"
    "Exit status: 0 completed, 1 failed or invalid input, 2 usage, 130 cancelled.\n\n"
    "Remote (docs/remote.md): moe run SPEC --db FILE --hosts HOSTFILE [--accept-new-host-keys]\n"
    "  [--known-hosts FILE] [--ssh-config FILE] [--bundle DIR] [--master-port N] deploys the runtime\n"
    "  bundle to every node over SSH, starts one launcher per node and records rank 0's metrics.\n"
    "Slurm: moe run SPEC --db FILE --slurm LOGINFILE (a hostfile naming the login node; or --hosts FILE\n"
    "  whose one host has role=slurm-login) deploys the bundle there and submits with sbatch\n"
    "  (cluster.slurm: partition, account, time_limit; one node per parallel.gpus_per_node ranks, one\n"
    "  launcher per node through srun); Slurm's states appear on the console, Ctrl-C scancels,\n"
    "  --attach follows it again. The nodes must share the login node's home.\n";

// Console output of a session: the job's stderr lines and progress events on stderr.
remote::RunCallbacks console_callbacks(std::mutex& console) {
  remote::RunCallbacks cb;
  cb.on_log_line = [&console](int, const std::string& line) {
    std::lock_guard lk(console);
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  cb.on_node_event = [&console](int, const std::string& what) {
    std::lock_guard lk(console);
    std::fprintf(stderr, "moe run: %s\n", what.c_str());  // `what` names the host
  };
  return cb;
}

// Starts the session and follows it until it ends (Ctrl-C cancels), or detaches once it started;
// records and prints the outcome. Returns the exit status of `moe run`.
int watch(remote::RunSession& session, bool detach, const std::string& db) {
  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);

  session.start();
  if (detach) {
    session.detach();
    std::fprintf(stderr, "moe run: run %lld detached: job %s keeps running%s; follow it with moe run --attach %lld --db %s\n",
                 static_cast<long long>(session.run_id()), session.job_id().c_str(),
                 session.local() ? " here" : " on the nodes", static_cast<long long>(session.run_id()),
                 display_text(db).c_str());
    std::printf("%lld\n", static_cast<long long>(session.run_id()));
    return 0;
  }
  bool cancel_sent = false;
  while (!session.poll(std::chrono::milliseconds(200))) {
    if (g_cancel && !cancel_sent) {
      std::fprintf(stderr, "moe run: cancelling the job%s\n", session.local() ? "" : " on every node");
      session.cancel();
      cancel_sent = true;
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);

  const remote::RunOutcome out = session.finish();
  const std::string where =
      session.local() ? "" : " on " + std::to_string(session.host_labels().size()) + " node(s)";
  std::fprintf(stderr, "moe run: run %lld %s%s: %lld steps, final loss %s, %lld malformed line(s)%s%s\n",
               static_cast<long long>(out.run_id), out.status.c_str(), where.c_str(), static_cast<long long>(out.steps),
               std::isnan(out.last_loss) ? "-" : fmt_fixed(out.last_loss, 4).c_str(),
               static_cast<long long>(out.malformed_lines), out.reason.empty() ? "" : "; ", out.reason.c_str());
  std::printf("%lld\n", static_cast<long long>(out.run_id));
  if (out.status == "completed") return 0;
  if (out.status == "cancelled") return 130;
  return 1;
}

int attach(const Args& args, const std::string& db) {
  args.expect_positionals(0, "no SPEC with --attach");
  const std::string run_text = args.value("--attach");
  char* end = nullptr;
  const long long run = std::strtoll(run_text.c_str(), &end, 10);
  if (*end != '\0' || run <= 0) throw UsageError{"--attach: expected a run id, got '" + run_text + "'"};
  {
    store::RunStore st(db);
    if (!st.run_exists(run)) throw Error(db + ": no run with id " + run_text);
    // A local run whose recorder died without detaching was stopped by its watchdog: it is
    // marked failed (naming the recorder), not resumed.
    store::reap_abandoned_runs(st);
  }
  const store::RunInfo info = store::RunReader(db).run(run);
  if (store::is_final_status(info.status)) {
    std::fprintf(stderr, "moe run: run %s already ended: %s\n", run_text.c_str(), info.status.c_str());
    std::printf("%s\n", run_text.c_str());
    return info.status == "completed" ? 0 : info.status == "cancelled" ? 130 : 1;
  }
  // A remote run: the hostfile given now (keys or users may have moved), else the one launched with.
  std::vector<remote::HostEntry> hosts;
  if (const std::string hostfile = args.value("--hosts"); !hostfile.empty()) hosts = remote::load_hostfile(hostfile);
  std::mutex console;
  auto session = remote::RunSession::reattach(db, run, hosts, connect_options(args), console_callbacks(console));
  std::fprintf(stderr, "moe run: reattaching to run %s (job %s) from byte %llu of its metrics\n", run_text.c_str(),
               session->job_id().c_str(), static_cast<unsigned long long>(session->row().metrics_offset));
  return watch(*session, args.flag("--detach"), db);
}

}  // namespace

int cmd_run(const std::vector<std::string>& argv) {
  std::vector<std::string> options = {"--db", "--set", "--name", "--tag", "--hosts", "--checkpoint-dir", "--resume", "--attach"};
  options.insert(options.end(), std::begin(kRemoteRunOptions), std::end(kRemoteRunOptions));
  std::vector<std::string> flags = {"--detach"};
  flags.insert(flags.end(), std::begin(kRemoteRunFlags), std::end(kRemoteRunFlags));
  Args args("run", argv, flags, options);
  if (args.help()) {
    std::printf("%s", kUsage);
    return 0;
  }
  const std::string db = args.value("--db");
  if (db.empty()) throw UsageError{"--db FILE is required"};
  g_cancel = false;
  if (!args.value("--attach").empty()) return attach(args, db);
  if (!args.value("--hosts").empty() && !args.value("--slurm").empty())
    throw UsageError{"--hosts and --slurm exclude each other (--slurm names the login node; Slurm picks the nodes)"};
  if (!args.value("--hosts").empty() || !args.value("--slurm").empty()) {
    if (!args.value("--checkpoint-dir").empty() || !args.value("--resume").empty())
      throw UsageError{"--checkpoint-dir and --resume are for local runs (remote nodes keep no checkpoints yet)"};
    std::mutex console;
    const remote::RunRequest r = remote_request(args);  // remote_run.cpp
    auto session = remote::RunSession::create(r, console_callbacks(console));
    std::fprintf(stderr, "moe run: run %lld, job %s on %zu %s, recording into %s (bundle %s)\n",
                 static_cast<long long>(session->run_id()), session->job_id().c_str(), r.hosts.size(),
                 r.slurm ? "Slurm login node" : "node(s)",
                 display_text(r.db).c_str(), display_text(r.bundle.string()).c_str());
    return watch(*session, args.flag("--detach"), db);
  }

  args.expect_positionals(1, "SPEC (a job spec JSON file)");
  remote::RunRequest r;
  r.db = db;
  r.spec = load_spec(args.positionals()[0], args.values("--set"));
  throw_if_invalid(validate_spec(r.spec));
  r.name = args.value("--name", r.spec.name);
  r.tags = args.values("--tag");
  r.runtime = remote::find_runtime();
  r.checkpoint_dir = args.value("--checkpoint-dir");
  r.resume = args.value("--resume");
  const int64_t world = r.spec.parallel.world_size();
  if (world > 1 && r.spec.cluster.nodes.size() > 1)
    std::fprintf(stderr, "moe run: the spec lists %zu nodes; all %lld ranks run on this machine (use --hosts to spread them)\n",
                 r.spec.cluster.nodes.size(), static_cast<long long>(world));
  std::mutex console;
  auto session = remote::RunSession::create(r, console_callbacks(console));
  std::fprintf(stderr, "moe run: run %lld, recording into %s (%s), job in %s\n", static_cast<long long>(session->run_id()),
               display_text(db).c_str(), display_text(r.runtime.string()).c_str(),
               display_text(session->local_job_dir()).c_str());
  return watch(*session, args.flag("--detach"), db);
}

}  // namespace moe::cli
