// RunSession: the shared remote-run logic of `moe run --hosts` and the studio (see run_session.h).
#include "run_session.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include <nlohmann/json.hpp>

#include "error.h"
#include "ingestor.h"
#include "run_reader.h"
#include "run_store.h"
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
                                    "--nproc-per-node", std::to_string(c.host.slots), "--metrics", "-"};
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

namespace {

bool is_dir_bundle(const fs::path& d) { return ::access((d / "moe-runtime").c_str(), X_OK) == 0; }

// Runs argv to completion (stdout to our stderr); returns its exit status.
int run_program(const std::vector<std::string>& argv) {
  std::string cmd;
  for (const auto& a : argv) {
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += (cmd.empty() ? "" : " ") + q + "'";
  }
  cmd += " 1>&2";
  const int st = std::system(cmd.c_str());
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
  check_hosts_against_spec(r.hosts, r.spec, r.hostfile_name);
  const JobSpec spec = spec_for_hosts(r.spec, r.hosts);
  store::RemoteRunRow row;
  {
    store::RunStore st(r.db);
    row.run_id = st.create_run(r.name.empty() ? spec.name : r.name, spec_to_json(spec).dump());
    for (const auto& t : r.tags) st.add_tag(row.run_id, t);
    row.job_id = new_job_id(row.run_id);
    row.hostfile = r.hostfile_text;
    row.master_port = r.master_port;
    nlohmann::json labels = nlohmann::json::array();
    for (const auto& h : r.hosts) labels.push_back(h.label());
    store::add_remote_run(st, row, labels.dump());
  }
  JobPlan plan;
  plan.job_id = row.job_id;
  plan.hosts = r.hosts;
  plan.master_port = r.master_port;
  plan.bundle = r.bundle;
  plan.files = {JobFile{"spec.json", spec_to_json(spec).dump(2) + "\n", 0600}};
  plan.connect = r.connect;
  plan.command = runtime_command();
  return std::unique_ptr<RunSession>(new RunSession(r.db, row, std::move(plan), true, std::move(callbacks)));
}

std::unique_ptr<RunSession> RunSession::reattach(const std::string& db, int64_t run, std::vector<HostEntry> hosts,
                                                 const ConnectOptions& connect, RunCallbacks callbacks) {
  std::optional<store::RemoteRunRow> row;
  {
    store::RunStore st(db);
    if (!st.run_exists(run)) throw Error(db + ": no run with id " + std::to_string(run));
    row = store::find_remote_run(st, run);
  }
  if (!row) throw Error(db + ": run " + std::to_string(run) + " was not launched on remote hosts");
  if (hosts.empty()) hosts = parse_hostfile(row->hostfile, "run " + std::to_string(run) + "'s hostfile");
  JobPlan plan;
  plan.job_id = row->job_id;
  plan.hosts = std::move(hosts);
  plan.master_port = row->master_port;
  plan.connect = connect;
  plan.command = runtime_command();
  return std::unique_ptr<RunSession>(new RunSession(db, *row, std::move(plan), false, std::move(callbacks)));
}

RunSession::RunSession(std::string db, store::RemoteRunRow row, JobPlan plan, bool launch, RunCallbacks callbacks)
    : db_(std::move(db)), row_(std::move(row)), launch_(launch), cb_(std::move(callbacks)) {
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
      const std::string prefix = "[" + labels_[static_cast<size_t>(node)] + "] launcher: ";
      if (line.rfind(prefix, 0) == 0 && launcher_lines_.size() < 4) launcher_lines_.push_back(line);
    }
    if (cb_.on_log_line) cb_.on_log_line(node, line);
  };
  ev.on_node_event = [this](int node, const std::string& what) {
    if (cb_.on_node_event) cb_.on_node_event(node, what);
  };
  job_ = std::make_unique<JobController>(std::move(plan), std::move(ev));
}

RunSession::~RunSession() {
  job_.reset();  // detaches and joins the workers before the ingestor goes
  if (ingestor_ && !finished_) {
    try {
      ingestor_->finish("interrupted");
    } catch (const std::exception&) {  // a destructor reports nothing; the store keeps what it has
    }
  }
}

void RunSession::start() {
  last_save_ = std::chrono::steady_clock::now();
  if (launch_) job_->launch();
  else job_->attach(row_.metrics_offset, row_.log_offsets);
}

void RunSession::cancel() {
  std::lock_guard lk(mu_);
  if (cancel_sent_ || !job_) return;
  cancel_sent_ = true;
  job_->cancel();
}

void RunSession::detach() {
  if (finished_ || !job_) return;
  job_->detach();
  job_->wait_for(std::chrono::seconds(10));
  const std::vector<uint64_t> logs = job_->log_offsets();
  job_.reset();  // joins the workers: no line arrives after this
  finished_ = true;
  (void)ingestor_->finish("running");  // stores the rest with its offset; no run_end: still running
  if (ingest_failed_) {
    std::lock_guard lk(mu_);
    throw Error(ingest_error_);
  }
  store::RunStore st(db_);
  store::set_remote_log_offsets(st, row_.run_id, logs);
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
  store::IngestResult result =
      ingestor_->finish(cancelled ? "cancelled" : state == JobState::failed ? "failed" : "interrupted");
  if (ingest_failed_) {
    std::lock_guard lk(mu_);
    throw Error(ingest_error_);
  }
  store::RunStore st(db_);
  store::set_remote_log_offsets(st, row_.run_id, job_->log_offsets());
  if (state == JobState::failed) {
    // The controller's reason names the node that failed first; the launcher's run_end (if it
    // wrote one) names the rank and why: keep both.
    std::string why = reason;
    const std::string end_reason = store::RunReader(db_).run(row_.run_id).end_reason;
    if (!end_reason.empty() && why.find(end_reason) == std::string::npos) why += " [rank 0's launcher: " + end_reason + "]";
    // Every node's launcher says which of its ranks failed first: the root cause is among them.
    std::lock_guard lk(mu_);
    for (const auto& l : launcher_lines_) why += "; " + l;
    st.set_status(row_.run_id, "failed", why);
  } else if (cancelled) {
    st.set_status(row_.run_id, "cancelled", "cancelled by the user");
  } else if (!result.saw_run_end) {
    st.set_status(row_.run_id, result.status,
                  "the job ended without run_end (" + std::string(to_string(state)) + (reason.empty() ? "" : ": " + reason) + ")");
  }
  const store::RunInfo info = store::RunReader(db_).run(row_.run_id);
  RunOutcome out;
  out.run_id = row_.run_id;
  out.status = info.status;
  out.reason = reason;
  out.steps = info.n_steps;
  out.last_loss = info.last_loss;
  return out;
}

}  // namespace moe::remote
