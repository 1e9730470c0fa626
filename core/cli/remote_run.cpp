// `moe run SPEC --db FILE --hosts HOSTFILE` and `moe run --attach RUN --db FILE [--hosts HOSTFILE]`:
// the spec is checked against the hostfile's slots, the runtime bundle (scripts/bundle-runtime) is
// deployed to every node (skipped where its content hash is present), one launcher per node is
// started over SSH (remote/job_controller.h) with the resolved spec in its job directory, and rank
// 0's metrics stream is ingested live. Each committed batch also stores the metrics file's byte
// offset (store/remote_runs.h), so `--attach` after a killed client resumes exactly there.
// Ctrl-C cancels every node; a failing node cancels the rest and fails the run naming the node.
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
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_format.h"
#include "error.h"
#include "hostfile.h"
#include "ingestor.h"
#include "job_controller.h"
#include "job_spec.h"
#include "remote_runs.h"
#include "run_reader.h"
#include "run_store.h"
#include "spec_validation.h"

namespace moe::cli {

namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_cancel{false};
void on_signal(int) { g_cancel = true; }

fs::path self_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return fs::current_path();
  buf[n] = '\0';
  return fs::path(buf).parent_path();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs argv to completion with our stdout/stderr; returns its exit status.
int run_program(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    std::fprintf(stderr, "moe run: cannot start %s: %s\n", a[0], std::strerror(errno));
    _exit(127);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

bool is_dir_bundle(const fs::path& d) { return ::access((d / "moe-runtime").c_str(), X_OK) == 0; }

// The directory to deploy: --bundle, $MOE_BUNDLE, else build-dir/runtime-bundle made by
// scripts/bundle-runtime from the moe-runtime of this build tree (remade when the runtime is newer).
fs::path locate_bundle(const Args& args) {
  std::string given = args.value("--bundle");
  if (given.empty()) {
    if (const char* env = std::getenv("MOE_BUNDLE"); env && *env) given = env;
  }
  if (!given.empty()) {
    if (!is_dir_bundle(given)) throw Error("--bundle: " + given + " holds no executable moe-runtime");
    return given;
  }
  fs::path runtime;
  if (const char* env = std::getenv("MOE_RUNTIME"); env && *env) runtime = env;
  else runtime = fs::weakly_canonical(self_dir() / "../../runtime/app/moe-runtime");
  if (::access(runtime.c_str(), X_OK) != 0) {
    throw Error("moe-runtime: " + runtime.string() + " not found; give --bundle DIR (scripts/bundle-runtime output)");
  }
  if (runtime.parent_path().filename() != "app" || runtime.parent_path().parent_path().filename() != "runtime") {
    throw Error("moe-runtime: " + runtime.string() +
                " is not in a build tree; give --bundle DIR (scripts/bundle-runtime output)");
  }
  const fs::path build = runtime.parent_path().parent_path().parent_path();
  const fs::path out = build / "runtime-bundle";
  std::error_code ec;
  if (is_dir_bundle(out) && fs::last_write_time(out / "moe-runtime", ec) >= fs::last_write_time(runtime, ec) && !ec) {
    return out;
  }
  std::string script = MOE_BUNDLE_SCRIPT;
  if (const char* env = std::getenv("MOE_BUNDLE_SCRIPT"); env && *env) script = env;
  std::fprintf(stderr, "moe run: bundling %s into %s\n", runtime.c_str(), out.c_str());
  const int rc = run_program({script, build.string(), out.string()});
  if (rc != 0) throw Error(script + ": failed with exit status " + std::to_string(rc) + " (see above)");
  return out;
}

// The launcher starts the same number of ranks on every node: slots must agree, and fill the world.
void check_hosts_against_spec(const std::vector<remote::HostEntry>& hosts, const JobSpec& spec,
                              const std::string& hostfile) {
  const remote::HostEntry& first = hosts.front();
  for (const auto& h : hosts) {
    if (h.slots != first.slots) {
      throw Error(hostfile + ":" + std::to_string(h.line) + ": " + h.label() + " has slots=" +
                  std::to_string(h.slots) + " but " + first.label() + " (line " + std::to_string(first.line) +
                  ") has slots=" + std::to_string(first.slots) + "; every node runs the same number of ranks");
    }
  }
  const int64_t procs = static_cast<int64_t>(hosts.size()) * first.slots;
  if (procs != spec.parallel.world_size()) {
    throw Error(hostfile + ": " + std::to_string(hosts.size()) + " node(s) × " + std::to_string(first.slots) +
                " slots = " + std::to_string(procs) + " processes, but the spec needs dp·tp·pp·ep = " +
                std::to_string(spec.parallel.world_size()));
  }
}

std::string new_job_id(int64_t run) {
  std::random_device rd;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%08x%08x", rd(), rd());
  return "run-" + std::to_string(run) + "-" + hex;
}

remote::ConnectOptions connect_options(const Args& args) {
  remote::ConnectOptions o;
  o.unknown_host = args.flag("--accept-new-host-keys") ? remote::UnknownHostPolicy::accept_new
                                                        : remote::UnknownHostPolicy::reject;
  o.known_hosts_file = args.value("--known-hosts");
  o.ssh_config_file = args.value("--ssh-config");
  // A lost node must fail the run within ~15 s: a round trip every 3 s, 4 s to answer.
  o.keepalive_interval_s = 3;
  o.keepalive_timeout_s = 4;
  return o;
}

remote::CommandBuilder runtime_command() {
  return [](const remote::NodeContext& c) {
    return std::vector<std::string>{c.bundle_dir + "/moe-runtime", "train", c.job_dir + "/spec.json",
                                    "--nnodes", std::to_string(c.nnodes), "--node-rank", std::to_string(c.node_rank),
                                    "--master", c.master_addr + ":" + std::to_string(c.master_port),
                                    "--nproc-per-node", std::to_string(c.host.slots), "--metrics", "-"};
  };
}

// Watches a launched or reattached job until it ends, ingesting node 0's metrics; records the final
// status. Returns the exit status of `moe run`.
int watch(const std::string& db, int64_t run, remote::JobPlan plan, bool launch, const store::RemoteRunRow& row) {
  std::vector<std::string> host_labels;  // `plan` moves into the controller: keep the names
  for (const auto& h : plan.hosts) host_labels.push_back(h.label());
  std::mutex console;
  std::atomic<bool> ingest_failed{false};
  std::string ingest_error;
  store::Ingestor ing(db, run);

  remote::JobEvents ev;
  ev.on_metrics_line = [&](std::string_view line, uint64_t end_offset) {
    if (ingest_failed) return;
    try {
      ing.feed_line(line, end_offset);
    } catch (const Error& e) {
      std::lock_guard lk(console);
      ingest_error = e.what();
      ingest_failed = true;  // cannot record: the main loop cancels rather than train blind
    }
  };
  std::vector<std::string> launcher_lines;  // "[host] launcher: rank 3 was killed by …", for the reason
  ev.on_log_line = [&](int node, const std::string& line) {
    std::lock_guard lk(console);
    std::fprintf(stderr, "%s\n", line.c_str());
    const std::string prefix = "[" + host_labels[static_cast<size_t>(node)] + "] launcher: ";
    if (line.rfind(prefix, 0) == 0 && launcher_lines.size() < 4) launcher_lines.push_back(line);
  };
  ev.on_node_event = [&](int, const std::string& what) {
    std::lock_guard lk(console);
    std::fprintf(stderr, "moe run: %s\n", what.c_str());  // `what` names the host
  };

  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);

  remote::JobController job(std::move(plan), ev);
  if (launch) job.launch();
  else job.attach(row.metrics_offset, row.log_offsets);

  bool cancel_sent = false;
  auto last_save = std::chrono::steady_clock::now();
  while (!job.wait_for(std::chrono::milliseconds(200))) {
    if ((g_cancel || ingest_failed) && !cancel_sent) {
      std::fprintf(stderr, "moe run: cancelling the job on every node\n");
      job.cancel();
      cancel_sent = true;
    }
    if (std::chrono::steady_clock::now() - last_save > std::chrono::seconds(2)) {
      store::RunStore st(db);
      store::set_remote_log_offsets(st, run, job.log_offsets());
      last_save = std::chrono::steady_clock::now();
    }
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);

  const remote::JobState state = job.state();
  const std::string reason = job.reason();
  const bool cancelled = state == remote::JobState::cancelled && !ingest_failed;
  store::IngestResult result =
      ing.finish(cancelled ? "cancelled" : state == remote::JobState::failed ? "failed" : "interrupted");
  if (ingest_failed) throw Error(ingest_error);

  store::RunStore st(db);
  store::set_remote_log_offsets(st, run, job.log_offsets());
  if (state == remote::JobState::failed) {
    // The controller's reason names the node that failed first; the launcher's run_end (if it
    // wrote one) names the rank and why: keep both.
    std::string why = reason;
    const std::string end_reason = store::RunReader(db).run(run).end_reason;
    if (!end_reason.empty() && why.find(end_reason) == std::string::npos) why += " [rank 0's launcher: " + end_reason + "]";
    // Every node's launcher says which of its ranks failed first: the root cause is among them.
    for (const auto& l : launcher_lines) why += "; " + l;
    st.set_status(run, "failed", why);
  } else if (cancelled) {
    st.set_status(run, "cancelled", "cancelled by the user");
  } else if (!result.saw_run_end) {
    st.set_status(run, result.status, "the job ended without run_end (" + std::string(remote::to_string(state)) +
                                          (reason.empty() ? "" : ": " + reason) + ")");
  }
  store::RunReader reader(db);
  store::RunInfo info = reader.run(run);
  std::fprintf(stderr, "moe run: run %lld %s on %zu node(s): %lld steps, final loss %s%s%s\n",
               static_cast<long long>(run), info.status.c_str(), host_labels.size(),
               static_cast<long long>(info.n_steps), std::isnan(info.last_loss) ? "-" : fmt_fixed(info.last_loss, 4).c_str(),
               reason.empty() ? "" : "; ", reason.c_str());
  std::printf("%lld\n", static_cast<long long>(run));
  if (info.status == "completed") return 0;
  if (info.status == "cancelled") return 130;
  return 1;
}

int launch_remote(const Args& args) {
  args.expect_positionals(1, "SPEC (a job spec JSON file)");
  const std::string db = args.value("--db");
  const std::string hostfile = args.value("--hosts");
  const std::string hostfile_text = read_text(hostfile);
  const std::vector<remote::HostEntry> hosts = remote::parse_hostfile(hostfile_text, hostfile);

  JobSpec spec = load_spec(args.positionals()[0], args.values("--set"));
  check_hosts_against_spec(hosts, spec, hostfile);
  // The hostfile is the cluster: the uploaded spec says so (and passes the slots rule).
  spec.cluster.nodes.clear();
  for (const auto& h : hosts) {
    NodeSpec n;
    n.host = h.host;
    n.port = h.port == 0 ? 22 : h.port;
    n.user = h.user;
    n.slots = h.slots;
    spec.cluster.nodes.push_back(n);
  }
  throw_if_invalid(validate_spec(spec));
  const std::string spec_json = spec_to_json(spec).dump(2) + "\n";
  const fs::path bundle = locate_bundle(args);

  int master_port = 29500;
  if (const std::string p = args.value("--master-port"); !p.empty()) {
    char* end = nullptr;
    const long v = std::strtol(p.c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > 65535) throw UsageError{"--master-port: expected a port (1-65535), got '" + p + "'"};
    master_port = static_cast<int>(v);
  }

  store::RemoteRunRow row;
  {
    store::RunStore st(db);
    row.run_id = st.create_run(args.value("--name", spec.name), spec_to_json(spec).dump());
    for (const auto& t : args.values("--tag")) st.add_tag(row.run_id, t);
    row.job_id = new_job_id(row.run_id);
    row.hostfile = hostfile_text;
    row.master_port = master_port;
    nlohmann::json labels = nlohmann::json::array();
    for (const auto& h : hosts) labels.push_back(h.label());
    store::add_remote_run(st, row, labels.dump());
  }
  std::fprintf(stderr, "moe run: run %lld, job %s on %zu node(s), recording into %s (bundle %s)\n",
               static_cast<long long>(row.run_id), row.job_id.c_str(), hosts.size(), db.c_str(), bundle.c_str());

  remote::JobPlan plan;
  plan.job_id = row.job_id;
  plan.hosts = hosts;
  plan.master_port = master_port;
  plan.bundle = bundle;
  plan.files = {remote::JobFile{"spec.json", spec_json, 0600}};
  plan.connect = connect_options(args);
  plan.command = runtime_command();
  return watch(db, row.run_id, std::move(plan), true, row);
}

int attach_remote(const Args& args) {
  args.expect_positionals(0, "no SPEC with --attach");
  const std::string db = args.value("--db");
  const std::string run_text = args.value("--attach");
  char* end = nullptr;
  const long long run = std::strtoll(run_text.c_str(), &end, 10);
  if (*end != '\0' || run <= 0) throw UsageError{"--attach: expected a run id, got '" + run_text + "'"};

  std::optional<store::RemoteRunRow> row;
  {
    store::RunStore st(db);
    if (!st.run_exists(run)) throw Error(db + ": no run with id " + run_text);
    row = store::find_remote_run(st, run);
  }
  if (!row) throw Error(db + ": run " + run_text + " was not launched on remote hosts (no --hosts)");
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
  const std::vector<remote::HostEntry> hosts =
      hostfile.empty() ? remote::parse_hostfile(row->hostfile, "run " + run_text + "'s hostfile")
                       : remote::load_hostfile(hostfile);
  std::fprintf(stderr, "moe run: reattaching to run %s (job %s) from byte %llu of its metrics\n", run_text.c_str(),
               row->job_id.c_str(), static_cast<unsigned long long>(row->metrics_offset));

  remote::JobPlan plan;
  plan.job_id = row->job_id;
  plan.hosts = hosts;
  plan.master_port = row->master_port;
  plan.connect = connect_options(args);
  plan.command = runtime_command();
  return watch(db, run, std::move(plan), false, *row);
}

}  // namespace

bool is_remote_run(const Args& args) { return !args.value("--hosts").empty() || !args.value("--attach").empty(); }

int run_remote(const Args& args) {
  if (args.value("--db").empty()) throw UsageError{"--db FILE is required"};
  g_cancel = false;
  return args.value("--attach").empty() ? launch_remote(args) : attach_remote(args);
}

}  // namespace moe::cli
