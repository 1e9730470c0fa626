// RunSession: the run logic of `moe run` (local, --hosts, --attach) and the studio (see run_session.h).
#include "run_session.h"

#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "error.h"
#include "ingestor.h"
#include "run_reader.h"
#include "run_store.h"
#include "run_writers.h"
#include "shell_quote.h"
#include "spec_validation.h"

namespace moe::remote {

namespace fs = std::filesystem;

void check_hosts_against_spec(const std::vector<HostEntry>& hosts, const JobSpec& spec, const std::string& hostfile) {
  if (hosts.empty()) throw Error(hostfile + ": no hosts");
  const HostEntry& first = hosts.front();
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

JobSpec spec_for_hosts(JobSpec spec, const std::vector<HostEntry>& hosts) {
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
  return spec;
}

std::string new_job_id(int64_t run) {
  std::random_device rd;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%08x%08x", rd(), rd());
  return "run-" + std::to_string(run) + "-" + hex;
}

CommandBuilder runtime_command() {
  return [](const NodeContext& c) {
    return std::vector<std::string>{c.bundle_dir + "/moe-runtime", "train", c.job_dir + "/spec.json",
                                    "--nnodes", std::to_string(c.nnodes), "--node-rank", std::to_string(c.node_rank),
                                    "--master", c.master_addr + ":" + std::to_string(c.master_port),
                                    "--nproc-per-node", std::to_string(c.host.slots), "--metrics", "-",
                                    "--job-id", c.job_id};
  };
}

JobSpec spec_for_slurm(JobSpec spec) {
  const int64_t world = spec.parallel.world_size();
  const int64_t per_node = std::max<int64_t>(1, spec.parallel.gpus_per_node);
  const int64_t nodes = (world + per_node - 1) / per_node;
  if (world % nodes != 0)
    throw Error("--slurm: " + std::to_string(world) + " ranks do not split evenly over " + std::to_string(nodes) +
                " nodes of parallel.gpus_per_node " + std::to_string(per_node));
  spec.cluster.nodes.clear();
  for (int64_t i = 0; i < nodes; ++i) spec.cluster.nodes.push_back(NodeSpec{"slurm-node-" + std::to_string(i), 22, "", world / nodes});
  return spec;
}

CommandBuilder slurm_command(const JobSpec& spec, const std::string& slurm_bin) {
  const int64_t nodes = int64_t(spec.cluster.nodes.size()), per_node = spec.cluster.nodes.front().slots;
  const SlurmSpec sl = spec.cluster.slurm;
  const bool gpus = spec.runtime.backend == "cuda";
  return [=](const NodeContext& c) {
    std::vector<std::string> argv = {c.bundle_dir + "/resources/slurm/moe-slurm-job", "--job-dir", c.job_dir,
                                     "--nodes", std::to_string(nodes), "--nproc-per-node", std::to_string(per_node),
                                     "--master-port", std::to_string(c.master_port), "--job-name", "moe-" + spec.name};
    if (gpus) argv.insert(argv.end(), {"--gpus-per-node", std::to_string(per_node)});
    if (!sl.time_limit.empty()) argv.insert(argv.end(), {"--time", sl.time_limit});
    if (!sl.partition.empty()) argv.insert(argv.end(), {"--partition", sl.partition});
    if (!sl.account.empty()) argv.insert(argv.end(), {"--account", sl.account});
    if (!slurm_bin.empty()) argv.insert(argv.end(), {"--slurm-bin", slurm_bin});
    argv.insert(argv.end(), {"--", c.bundle_dir + "/moe-runtime", "train", c.job_dir + "/spec.json", "--metrics", "-"});
    return argv;
  };
}

ConnectOptions default_run_connect_options() {
  ConnectOptions o;
  // A lost node must fail the run within ~15 s: a round trip every 3 s, 4 s to answer.
  o.keepalive_interval_s = 3;
  o.keepalive_timeout_s = 4;
  return o;
}

std::string default_bundle_script() {
  if (const char* env = std::getenv("MOE_BUNDLE_SCRIPT"); env && *env) return env;
  return MOE_BUNDLE_SCRIPT;
}

fs::path find_runtime() {
  if (const char* env = std::getenv("MOE_RUNTIME"); env && *env) {
    if (::access(env, X_OK) != 0) throw Error(std::string("MOE_RUNTIME: ") + env + " is not an executable");
    return fs::absolute(env);
  }
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  const fs::path self = n > 0 ? fs::path(std::string(buf, static_cast<size_t>(n))) : fs::path("moe");
  for (const fs::path& p : {self.parent_path() / "../runtime/app/moe-runtime", self.parent_path() / "moe-runtime"})
    if (::access(p.c_str(), X_OK) == 0) return fs::weakly_canonical(p);
  throw Error("moe-runtime: not found beside " + self.string() + " (looked in ../runtime/app and .); set MOE_RUNTIME to its path");
}

namespace {

bool is_dir_bundle(const fs::path& d) { return ::access((d / "moe-runtime").c_str(), X_OK) == 0; }

// A TCP port on 127.0.0.1 that is free now, for a local run's ranks (the kernel picks it; another
// process could take it before rank 0 binds, which the launcher then reports clearly).
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw Error(std::string("no free port on 127.0.0.1: ") + std::strerror(err));
  return ntohs(addr.sin_port);
}

// "<pid> <start ticks>": who the watchdog of a local job waits on (remote_job.h).
std::string recorder_line() {
  const store::ProcessId me = store::this_process();
  return std::to_string(me.pid) + " " + std::to_string(me.start) + "\n";
}

// Writes `content` to dir/name through a temporary file and a rename (the watchdog reads it).
void put_file(const fs::path& dir, const std::string& name, const std::string& content) {
  const fs::path tmp = dir / (name + ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << content;
    if (!out.flush()) throw Error(tmp.string() + ": cannot be written");
  }
  fs::rename(tmp, dir / name);
}

// What a local job's exit says, for a run that ended without run_end: "exit code 3", "signal 9 (SIGKILL)".
std::string describe_exit(const NodeJobStatus& st, const std::string& fallback) {
  if (st.state == NodeJobState::exited) {
    if (st.exit_code > 128 && st.exit_code < 128 + 65) {
      const int sig = st.exit_code - 128;
      const char* name = sigabbrev_np(sig);
      return "signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : std::string());
    }
    return "exit code " + std::to_string(st.exit_code);
  }
  if (st.state == NodeJobState::gone) return "killed without an exit status";
  return fallback;
}

// Runs argv to completion (stdout to our stderr); returns its exit status.
int run_program(const std::vector<std::string>& argv) {
  const int st = std::system((shell_join(argv) + " 1>&2").c_str());
  return st == -1 ? 127 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

}  // namespace

fs::path locate_bundle(const std::string& given, const fs::path& runtime, const std::string& bundle_script,
                       const std::function<void(const std::string&)>& note) {
  if (!given.empty()) {
    if (!is_dir_bundle(given)) throw Error("bundle: " + given + " holds no executable moe-runtime");
    return given;
  }
  if (::access(runtime.c_str(), X_OK) != 0) {
    throw Error("moe-runtime: " + runtime.string() + " not found; give a bundle directory (scripts/bundle-runtime output)");
  }
  if (runtime.parent_path().filename() != "app" || runtime.parent_path().parent_path().filename() != "runtime") {
    throw Error("moe-runtime: " + runtime.string() +
                " is not in a build tree; give a bundle directory (scripts/bundle-runtime output)");
  }
  const fs::path build = runtime.parent_path().parent_path().parent_path();
  const fs::path out = build / "runtime-bundle";
  std::error_code ec;
  if (is_dir_bundle(out) && fs::last_write_time(out / "moe-runtime", ec) >= fs::last_write_time(runtime, ec) && !ec) {
    return out;
  }
  if (note) note("bundling " + runtime.string() + " into " + out.string());
  const int rc = run_program({bundle_script, build.string(), out.string()});
  if (rc != 0) throw Error(bundle_script + ": failed with exit status " + std::to_string(rc));
  return out;
}

std::unique_ptr<RunSession> RunSession::create(const RunRequest& r, RunCallbacks callbacks) {
  const bool here = r.hosts.empty();  // this machine: one node, every rank on it
  JobSpec spec = r.spec;
  if (here) {
    throw_if_invalid(validate_spec(spec));
  } else if (r.slurm) {
    if (r.hosts.size() != 1)
      throw Error(r.hostfile_name + ": --slurm takes one host, the login node (" + std::to_string(r.hosts.size()) + " listed)");
    spec = spec_for_slurm(spec);
    throw_if_invalid(validate_spec(spec));
  } else {
    check_hosts_against_spec(r.hosts, spec, r.hostfile_name);
    spec = spec_for_hosts(spec, r.hosts);
  }
  const int64_t world = spec.parallel.world_size();
  const fs::path store_path = fs::absolute(r.db);
  const auto beside_store = [&](const std::string& suffix) {
    return store_path.parent_path() / (store_path.stem().string() + suffix);
  };
  store::RemoteRunRow row;
  row.hostfile = r.hostfile_text;
  // A local run's ranks meet on a free loopback port (the runtime's launcher starts them all here).
  row.master_port = !here ? r.master_port : world > 1 ? free_loopback_port() : 0;
  if (here) row.local_root = beside_store("-jobs").string();
  {
    store::RunStore st(r.db);
    row.run_id = st.create_run(r.name.empty() ? spec.name : r.name, spec_to_json(spec).dump());
    for (const auto& t : r.tags) st.add_tag(row.run_id, t);
    row.job_id = new_job_id(row.run_id);
    nlohmann::json labels = nlohmann::json::array();
    for (const auto& h : r.hosts) labels.push_back(h.label());
    store::add_remote_run(st, row, here ? "" : labels.dump());
    if (here) store::record_writer(st, row.run_id, store::this_process(), r.recorder);  // a later reader can tell if we die
  }
  JobPlan plan;
  plan.job_id = row.job_id;
  plan.master_port = row.master_port;
  plan.connect = r.connect;
  if (!here) {
    plan.hosts = r.hosts;
    plan.bundle = r.bundle;
    plan.files = {JobFile{"spec.json", spec_to_json(spec).dump(2) + "\n", 0600}};
    plan.command = r.slurm ? slurm_command(spec, r.slurm_bin) : runtime_command();
    return std::unique_ptr<RunSession>(new RunSession(r.db, row, std::move(plan), true, std::move(callbacks), r.recorder));
  }
  HostEntry localhost;
  localhost.host = "localhost";
  localhost.slots = static_cast<int>(world);
  plan.hosts = {localhost};
  plan.local_root = row.local_root;
  plan.cancel_signal = "INT";  // as Ctrl-C: the runtime records run_end `cancelled`
  // The job runs in its directory: paths the caller gave relative to its own are made absolute.
  if (!spec.train.data.path.empty()) spec.train.data.path = fs::absolute(spec.train.data.path).string();
  plan.files = {JobFile{"spec.json", spec_to_json(spec).dump(2) + "\n", 0600}, JobFile{"recorder", recorder_line(), 0600}};
  // Checkpoints: where asked, else beside the store when the spec wants them (the runtime would
  // otherwise warn and write none): <store>-checkpoints/run-<id>.
  std::string ck = r.checkpoint_dir.empty() ? "" : fs::absolute(r.checkpoint_dir).string();
  if (ck.empty() && spec.runtime.checkpoint_every > 0) ck = (beside_store("-checkpoints") / ("run-" + std::to_string(row.run_id))).string();
  const std::string runtime = fs::absolute(r.runtime).string();
  const std::string resume = r.resume.empty() ? "" : fs::absolute(r.resume).string();
  plan.command = [runtime, ck, resume, world](const NodeContext& c) {
    std::vector<std::string> argv = {runtime, "train", c.job_dir + "/spec.json"};
    if (!ck.empty()) argv.insert(argv.end(), {"--checkpoint-dir", ck});
    if (!resume.empty()) argv.insert(argv.end(), {"--resume", resume});
    if (world > 1)
      argv.insert(argv.end(), {"--nproc-per-node", std::to_string(world), "--master", "127.0.0.1:" + std::to_string(c.master_port)});
    return argv;
  };
  return std::unique_ptr<RunSession>(new RunSession(r.db, row, std::move(plan), true, std::move(callbacks), r.recorder));
}

std::unique_ptr<RunSession> RunSession::reattach(const std::string& db, int64_t run, std::vector<HostEntry> hosts,
                                                 const ConnectOptions& connect, RunCallbacks callbacks,
                                                 const std::string& recorder) {
  std::optional<store::RemoteRunRow> row;
  {
    store::RunStore st(db);
    if (!st.run_exists(run)) throw Error(db + ": no run with id " + std::to_string(run));
    row = store::find_remote_run(st, run);
    if (row && !row->local_root.empty()) {
      if (const auto w = store::live_writer(st, run); w && w->pid != ::getpid())
        throw Error(db + ": run " + std::to_string(run) + " is being recorded by process " + std::to_string(w->pid) +
                    "; stop or detach it there first");
    }
  }
  if (!row) throw Error(db + ": run " + std::to_string(run) + " has no job to reattach to (recorded before schema 6, or imported)");
  JobPlan plan;
  plan.job_id = row->job_id;
  plan.master_port = row->master_port;
  plan.command = runtime_command();  // not used: an attach starts nothing
  if (!row->local_root.empty()) {
    HostEntry here;
    here.host = "localhost";
    plan.hosts = {here};
    plan.local_root = row->local_root;
    plan.cancel_signal = "INT";
  } else {
    if (hosts.empty()) hosts = parse_hostfile(row->hostfile, "run " + std::to_string(run) + "'s hostfile");
    plan.hosts = std::move(hosts);
    plan.connect = connect;
  }
  return std::unique_ptr<RunSession>(new RunSession(db, *row, std::move(plan), false, std::move(callbacks), recorder));
}

std::string RunSession::local_job_dir() const {
  return local() ? job_dir(row_.local_root, row_.job_id, 0) : std::string();
}

RunSession::RunSession(std::string db, store::RemoteRunRow row, JobPlan plan, bool launch, RunCallbacks callbacks,
                       std::string recorder)
    : db_(std::move(db)), row_(std::move(row)), launch_(launch), cb_(std::move(callbacks)), recorder_(std::move(recorder)) {
  for (const auto& h : plan.hosts) labels_.push_back(h.label());
  ingestor_ = std::make_unique<store::Ingestor>(db_, row_.run_id);
  JobEvents ev;
  ev.on_metrics_line = [this](std::string_view line, uint64_t end_offset) {
    if (ingest_failed_) return;
    try {
      ingestor_->feed_line(line, end_offset);
    } catch (const Error& e) {
      std::lock_guard lk(mu_);
      ingest_error_ = e.what();
      ingest_failed_ = true;  // cannot record: poll() cancels rather than train blind
    }
  };
  ev.on_log_line = [this](int node, const std::string& line) {
    {
      std::lock_guard lk(mu_);
      const std::string prefix = (local() ? "" : "[" + labels_[static_cast<size_t>(node)] + "] ") + "launcher: ";
      if (line.rfind(prefix, 0) == 0 && launcher_lines_.size() < 4) launcher_lines_.push_back(line);
    }
    if (cb_.on_log_line) cb_.on_log_line(node, line);
  };
  ev.on_node_event = [this](int node, const std::string& what) {
    if (cb_.on_node_event) cb_.on_node_event(node, what);
  };
  if (local()) {
    ev.on_started = [this](int, int pid) {  // the wrapper leads the job's process group: the reaper's target
      if (const auto p = store::process_of(pid)) {
        store::RunStore st(db_);
        store::record_runtime(st, row_.run_id, *p);
      }
    };
  }
  job_ = std::make_unique<JobController>(std::move(plan), std::move(ev));
}

RunSession::~RunSession() {
  try {
    if (started_) {
      detach();
    } else if (!finished_) {  // never started: nothing runs
      job_.reset();
      ingestor_->finish("interrupted");
    }
  } catch (const std::exception&) {  // a destructor reports nothing; the store keeps what it has
  }
}

void RunSession::start() {
  started_ = true;
  last_save_ = std::chrono::steady_clock::now();
  if (launch_) return job_->launch();
  if (local()) {
    // This process records the job now: its watchdog waits on us (recorder first, then the
    // marker removed: at no moment may it see neither), and so does the reaper.
    const fs::path dir = local_job_dir();
    if (fs::is_directory(dir)) {
      put_file(dir, "recorder", recorder_line());
      fs::remove(dir / "detached");
    }
    store::RunStore st(db_);
    store::record_writer(st, row_.run_id, store::this_process(), recorder_);
  }
  job_->attach(row_.metrics_offset, row_.log_offsets);
}

void RunSession::cancel() {
  std::lock_guard lk(mu_);
  if (cancel_sent_ || !job_) return;
  cancel_sent_ = true;
  job_->cancel();
}

void RunSession::detach() {
  if (finished_ || !job_) return;
  // A local job's marker first, while this process still lives (its watchdog must let the job go
  // on), and again once the workers are done (a job launched meanwhile).
  auto mark = [this] {
    if (local() && fs::is_directory(local_job_dir())) std::ofstream(fs::path(local_job_dir()) / "detached");
  };
  mark();
  job_->detach();
  job_->wait_for(std::chrono::seconds(10));
  const std::vector<uint64_t> logs = job_->log_offsets();
  job_.reset();  // joins the workers: no line arrives after this
  mark();
  finished_ = true;
  (void)ingestor_->finish("running");  // stores the rest with its offset; no run_end: still running
  if (ingest_failed_) {
    std::lock_guard lk(mu_);
    throw Error(ingest_error_);
  }
  store::RunStore st(db_);
  store::set_remote_log_offsets(st, row_.run_id, logs);
  if (local()) store::set_writer_detached(st, row_.run_id, true);
}

bool RunSession::poll(std::chrono::milliseconds wait) {
  const bool done = job_->wait_for(wait);
  if (!done && ingest_failed_) cancel();
  if (!done && std::chrono::steady_clock::now() - last_save_ > std::chrono::seconds(2)) {
    store::RunStore st(db_);
    store::set_remote_log_offsets(st, row_.run_id, job_->log_offsets());
    last_save_ = std::chrono::steady_clock::now();
  }
  return done;
}

RunOutcome RunSession::finish() {
  const JobState state = job_->state();
  const std::string reason = job_->reason();
  const bool cancelled = state == JobState::cancelled && !ingest_failed_;
  finished_ = true;
  store::IngestResult result;
  try {
    result = ingestor_->finish(cancelled ? "cancelled" : state == JobState::failed ? "failed" : "interrupted");
  } catch (const Error& e) {  // the store refused a write (e.g. a full disk)
    if (!ingest_failed_) ingest_error_ = e.what();
    ingest_failed_ = true;
  }
  if (ingest_failed_) {
    std::lock_guard lk(mu_);
    try {  // say why in the run's record if the store still takes a small write (a full disk may not)
      store::RunStore st(db_);
      st.set_status(row_.run_id, "failed", "recording stopped: " + ingest_error_);
    } catch (const Error&) {  // the next reader marks it failed (its recorder is gone by then)
    }
    throw Error(ingest_error_);
  }
  record_end(result, state, reason);
  const store::RunInfo info = store::RunReader(db_).run(row_.run_id);
  RunOutcome out;
  out.run_id = row_.run_id;
  out.status = info.status;
  out.reason = local() ? (info.status == "completed" ? "" : info.end_reason) : reason;
  out.steps = info.n_steps;
  out.last_loss = info.last_loss;
  out.malformed_lines = info.malformed_lines;
  return out;
}

void RunSession::record_end(const store::IngestResult& result, JobState state, const std::string& reason) {
  store::RunStore st(db_);
  store::set_remote_log_offsets(st, row_.run_id, job_->log_offsets());
  const bool cancelled = state == JobState::cancelled;
  if (cancelled) {
    st.set_status(row_.run_id, "cancelled", "cancelled by the user");
  } else if (local()) {
    // The launcher's run_end names the rank that failed; without one, say how the runtime ended.
    if (!result.saw_run_end)
      st.set_status(row_.run_id, result.status,
                    "moe-runtime ended without run_end: " + describe_exit(job_->node_status(0), reason));
  } else if (state == JobState::failed) {
    // The controller's reason names the node that failed first; the launcher's run_end (if it
    // wrote one) names the rank and why: keep both.
    std::string why = reason;
    const std::string end_reason = store::RunReader(db_).run(row_.run_id).end_reason;
    if (!end_reason.empty() && why.find(end_reason) == std::string::npos) why += " [rank 0's launcher: " + end_reason + "]";
    // Every node's launcher says which of its ranks failed first: the root cause is among them.
    std::lock_guard lk(mu_);
    for (const auto& l : launcher_lines_) why += "; " + l;
    st.set_status(row_.run_id, "failed", why);
  } else if (!result.saw_run_end) {
    st.set_status(row_.run_id, result.status,
                  "the job ended without run_end (" + std::string(to_string(state)) + (reason.empty() ? "" : ": " + reason) + ")");
  }
}

}  // namespace moe::remote
