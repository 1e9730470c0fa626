// `moe run SPEC --db FILE --hosts HOSTFILE` and `moe run --attach RUN --db FILE [--hosts HOSTFILE]`:
// the spec is checked against the hostfile's slots, the runtime bundle (scripts/bundle-runtime) is
// deployed to every node (skipped where its content hash is present), one launcher per node is
// started over SSH (remote/job_controller.h) with the resolved spec in its job directory, and rank
// 0's metrics stream is ingested live. Each committed batch also stores the metrics file's byte
// offset (store/remote_runs.h), so `--attach` after a killed client resumes exactly there.
// Ctrl-C cancels every node; a failing node cancels the rest and fails the run naming the node.
// The logic itself is remote/run_session.h (the studio runs the same); this file is the console.
#include "remote_run.h"

#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_format.h"
#include "error.h"
#include "hostfile.h"
#include "job_spec.h"
#include "remote_runs.h"
#include "run_session.h"
#include "run_reader.h"
#include "run_store.h"
#include "runtime_path.h"

namespace moe::cli {

namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_cancel{false};
void on_signal(int) { g_cancel = true; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The directory to deploy: --bundle, $MOE_BUNDLE, else build-dir/runtime-bundle made by
// scripts/bundle-runtime from the moe-runtime of this build tree (remade when the runtime is newer).
fs::path locate_bundle(const Args& args) {
  std::string given = args.value("--bundle");
  if (given.empty()) {
    if (const char* env = std::getenv("MOE_BUNDLE"); env && *env) given = env;
  }
  std::string script = MOE_BUNDLE_SCRIPT;
  if (const char* env = std::getenv("MOE_BUNDLE_SCRIPT"); env && *env) script = env;
  try {
    return remote::locate_bundle(given, find_runtime(), script,
                                 [](const std::string& what) { std::fprintf(stderr, "moe run: %s\n", what.c_str()); });
  } catch (const Error& e) {
    // The CLI's way to give a bundle is --bundle.
    std::string m = e.what();
    if (m.rfind("bundle: ", 0) == 0) m = "--" + m;
    throw Error(m);
  }
}

remote::ConnectOptions connect_options(const Args& args) {
  remote::ConnectOptions o = remote::default_run_connect_options();
  o.unknown_host = args.flag("--accept-new-host-keys") ? remote::UnknownHostPolicy::accept_new
                                                        : remote::UnknownHostPolicy::reject;
  o.known_hosts_file = args.value("--known-hosts");
  o.ssh_config_file = args.value("--ssh-config");
  return o;
}

// Console output of a session: node stderr lines and progress events on stderr.
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

// Watches a launched or reattached job until it ends (Ctrl-C cancels every node), then records and
// prints the outcome. Returns the exit status of `moe run`.
int watch(remote::RunSession& session) {
  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);

  session.start();
  bool cancel_sent = false;
  while (!session.poll(std::chrono::milliseconds(200))) {
    if (g_cancel && !cancel_sent) {
      std::fprintf(stderr, "moe run: cancelling the job on every node\n");
      session.cancel();
      cancel_sent = true;
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);

  const remote::RunOutcome out = session.finish();
  std::fprintf(stderr, "moe run: run %lld %s on %zu node(s): %lld steps, final loss %s%s%s\n",
               static_cast<long long>(out.run_id), out.status.c_str(), session.host_labels().size(),
               static_cast<long long>(out.steps), std::isnan(out.last_loss) ? "-" : fmt_fixed(out.last_loss, 4).c_str(),
               out.reason.empty() ? "" : "; ", out.reason.c_str());
  std::printf("%lld\n", static_cast<long long>(out.run_id));
  if (out.status == "completed") return 0;
  if (out.status == "cancelled") return 130;
  return 1;
}

int launch_remote(const Args& args) {
  args.expect_positionals(1, "SPEC (a job spec JSON file)");
  remote::RunRequest r;
  r.db = args.value("--db");
  r.hostfile_name = args.value("--hosts");
  r.hostfile_text = read_text(r.hostfile_name);
  r.hosts = remote::parse_hostfile(r.hostfile_text, r.hostfile_name);
  r.spec = load_spec(args.positionals()[0], args.values("--set"));
  remote::check_hosts_against_spec(r.hosts, r.spec, r.hostfile_name);
  remote::spec_for_hosts(r.spec, r.hosts);  // fail on the spec before bundling
  r.bundle = locate_bundle(args);
  r.name = args.value("--name", r.spec.name);
  r.tags = args.values("--tag");
  if (const std::string p = args.value("--master-port"); !p.empty()) {
    char* end = nullptr;
    const long v = std::strtol(p.c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > 65535) throw UsageError{"--master-port: expected a port (1-65535), got '" + p + "'"};
    r.master_port = static_cast<int>(v);
  }
  r.connect = connect_options(args);

  std::mutex console;
  auto session = remote::RunSession::create(r, console_callbacks(console));
  std::fprintf(stderr, "moe run: run %lld, job %s on %zu node(s), recording into %s (bundle %s)\n",
               static_cast<long long>(session->run_id()), session->job_id().c_str(), r.hosts.size(),
               display_text(r.db).c_str(), display_text(r.bundle.string()).c_str());
  return watch(*session);
}

int attach_remote(const Args& args) {
  args.expect_positionals(0, "no SPEC with --attach");
  const std::string db = args.value("--db");
  const std::string run_text = args.value("--attach");
  char* end = nullptr;
  const long long run = std::strtoll(run_text.c_str(), &end, 10);
  if (*end != '\0' || run <= 0) throw UsageError{"--attach: expected a run id, got '" + run_text + "'"};

  {
    store::RunStore st(db);
    if (!st.run_exists(run)) throw Error(db + ": no run with id " + run_text);
    if (!store::find_remote_run(st, run)) throw Error(db + ": run " + run_text + " was not launched on remote hosts (no --hosts)");
  }
  {
    store::RunReader reader(db);
    const store::RunInfo info = reader.run(run);
    if (store::is_final_status(info.status)) {
      std::fprintf(stderr, "moe run: run %s already ended: %s\n", run_text.c_str(), info.status.c_str());
      std::printf("%s\n", run_text.c_str());
      return info.status == "completed" ? 0 : info.status == "cancelled" ? 130 : 1;
    }
  }
  // The hostfile given now (keys or users may have moved), else the one launched with.
  const std::string hostfile = args.value("--hosts");
  std::vector<remote::HostEntry> hosts;
  if (!hostfile.empty()) hosts = remote::load_hostfile(hostfile);
  std::mutex console;
  auto session = remote::RunSession::reattach(db, run, hosts, connect_options(args), console_callbacks(console));
  std::fprintf(stderr, "moe run: reattaching to run %s (job %s) from byte %llu of its metrics\n", run_text.c_str(),
               session->job_id().c_str(), static_cast<unsigned long long>(session->row().metrics_offset));
  return watch(*session);
}

}  // namespace

bool is_remote_run(const Args& args) { return !args.value("--hosts").empty() || !args.value("--attach").empty(); }

int run_remote(const Args& args) {
  if (args.value("--db").empty()) throw UsageError{"--db FILE is required"};
  g_cancel = false;
  return args.value("--attach").empty() ? launch_remote(args) : attach_remote(args);
}

}  // namespace moe::cli
