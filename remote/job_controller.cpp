// Multi-node job controller: one thread per node; first failure cancels the rest.
#include "job_controller.h"

#include "bundle.h"
#include "deploy.h"
#include "error.h"
#include "local_shell.h"
#include "shell_quote.h"
#include "ssh_session.h"

namespace moe::remote {

const char* to_string(JobState s) {
  switch (s) {
    case JobState::idle: return "idle";
    case JobState::running: return "running";
    case JobState::completed: return "completed";
    case JobState::failed: return "failed";
    case JobState::cancelled: return "cancelled";
    case JobState::detached: return "detached";
  }
  return "?";
}

JobController::JobController(JobPlan plan, JobEvents events) : plan_(std::move(plan)), events_(std::move(events)) {
  check_job_id(plan_.job_id);
  if (plan_.hosts.empty()) throw moe::Error("job " + plan_.job_id + ": no hosts");
  if (!plan_.command) throw moe::Error("job " + plan_.job_id + ": no command builder");
  if (!plan_.local_root.empty() && (plan_.hosts.size() != 1 || plan_.bundle))
    throw moe::Error("job " + plan_.job_id + ": a local job runs on one node, without a bundle");
  log_offsets_.assign(plan_.hosts.size(), 0);
  log_partial_.assign(plan_.hosts.size(), "");
  node_status_.assign(plan_.hosts.size(), NodeJobStatus{});
}

JobController::~JobController() {
  detach();
  for (std::thread& t : workers_)
    if (t.joinable()) t.join();
}

void JobController::launch() { start(true); }

void JobController::attach(uint64_t metrics_offset, std::vector<uint64_t> log_offsets) {
  {
    std::lock_guard lock(mu_);
    metrics_offset_ = metrics_offset;
    for (size_t i = 0; i < log_offsets.size() && i < log_offsets_.size(); ++i) log_offsets_[i] = log_offsets[i];
  }
  start(false);
}

void JobController::start(bool launch) {
  {
    std::lock_guard lock(mu_);
    if (state_ != JobState::idle) throw moe::Error("job " + plan_.job_id + ": already started");
    state_ = JobState::running;
    remaining_ = static_cast<int>(plan_.hosts.size());
  }
  for (size_t i = 0; i < plan_.hosts.size(); ++i)
    workers_.emplace_back([this, i, launch] { run_node(static_cast<int>(i), launch); });
}

void JobController::cancel() {
  {
    std::lock_guard lock(mu_);
    if (!failed_) user_cancel_ = true;
  }
  cancel_requested_ = true;
}

void JobController::detach() { detach_requested_ = true; }

JobState JobController::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

std::string JobController::reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

bool JobController::wait_for(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return done_cv_.wait_for(lock, timeout, [&] { return finished_; });
}

uint64_t JobController::metrics_offset() const {
  std::lock_guard lock(mu_);
  return metrics_offset_;
}

std::vector<uint64_t> JobController::log_offsets() const {
  std::lock_guard lock(mu_);
  return log_offsets_;
}

NodeJobStatus JobController::node_status(int node) const {
  std::lock_guard lock(mu_);
  return node_status_.at(static_cast<size_t>(node));
}

void JobController::event(int node, const std::string& what) {
  if (events_.on_node_event) events_.on_node_event(node, plan_.hosts[static_cast<size_t>(node)].label() + ": " + what);
}

void JobController::fail(int node, const std::string& reason) {
  const std::string text = "node " + std::to_string(node) + " (" + plan_.hosts[static_cast<size_t>(node)].label() +
                           "): " + reason;
  {
    std::lock_guard lock(mu_);
    if (!failed_ && !user_cancel_) {
      failed_ = true;
      reason_ = text;
    } else if (user_cancel_) {
      reason_ += (reason_.empty() ? "" : "; ") + text;
    }
  }
  cancel_requested_ = true;  // stop every other node
  event(node, "failed: " + reason);
}

void JobController::node_done() {
  JobState final_state;
  std::string reason;
  {
    std::lock_guard lock(mu_);
    if (--remaining_ > 0) return;
    if (failed_) final_state = JobState::failed;
    else if (user_cancel_) final_state = JobState::cancelled;
    else if (detach_requested_ && !cancel_requested_) final_state = JobState::detached;
    else final_state = JobState::completed;
    state_ = final_state;
    reason = reason_;
  }
  if (events_.on_finished) events_.on_finished(final_state, reason);
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  done_cv_.notify_all();
}

void JobController::watch_node(NodeShell& session, int node, const std::string& dir, bool final_drain) {
  const size_t n = static_cast<size_t>(node);
  uint64_t m_off, l_off;
  {
    std::lock_guard lock(mu_);
    // Only node 0's metrics are wanted: other nodes start past any size, so nothing is copied.
    m_off = node == 0 ? metrics_offset_ : uint64_t{1} << 62;
    l_off = log_offsets_[n];
  }
  // Only node 0's metrics are read; other nodes' metrics files are empty by design (rank 0 writes).
  StreamHandlers h;
  h.on_stdout = [&](std::string_view bytes) {
    if (node != 0) return;
    std::vector<std::pair<std::string, uint64_t>> lines;
    {
      std::lock_guard lock(mu_);
      metrics_partial_ += bytes;
      size_t start = 0, nl;
      while ((nl = metrics_partial_.find('\n', start)) != std::string::npos) {
        metrics_offset_ += nl - start + 1;
        lines.emplace_back(metrics_partial_.substr(start, nl - start), metrics_offset_);
        start = nl + 1;
      }
      metrics_partial_.erase(0, start);
    }
    if (events_.on_metrics_line)
      for (auto& [line, off] : lines) events_.on_metrics_line(line, off);
  };
  h.on_stderr = [&](std::string_view bytes) {
    std::vector<std::string> lines;
    {
      std::lock_guard lock(mu_);
      std::string& part = log_partial_[n];
      part += bytes;
      size_t start = 0, nl;
      while ((nl = part.find('\n', start)) != std::string::npos) {
        log_offsets_[n] += nl - start + 1;
        lines.push_back((plan_.local_root.empty() ? "[" + plan_.hosts[n].label() + "] " : std::string()) +
                        part.substr(start, nl - start));
        start = nl + 1;
      }
      part.erase(0, start);
    }
    if (events_.on_log_line)
      for (auto& l : lines) events_.on_log_line(node, l);
  };
  h.stop = [&] { return !final_drain && stop_requested(); };
  // Bytes of an unfinished line are read again from the offset next time, never delivered twice.
  {
    std::lock_guard lock(mu_);
    if (node == 0) metrics_partial_.clear();
    log_partial_[n].clear();
  }
  StreamResult r = session.stream(watch_command(dir, m_off, l_off), h);
  if (!r.lost.empty()) throw moe::Error(r.lost);
  if (r.stopped) return;
  if (r.exit_status == 98) throw moe::Error("no job in " + dir);
}

void JobController::run_node(int node, bool launch) {
  const size_t n = static_cast<size_t>(node);
  const HostEntry& host = plan_.hosts[n];
  const bool local = !plan_.local_root.empty();
  std::unique_ptr<NodeShell> s;
  SshSession* ssh = nullptr;
  auto open = [&] {
    if (local) {
      s = std::make_unique<LocalShell>(plan_.local_root, host.host);
    } else {
      auto c = SshSession::connect(host, plan_.connect);
      ssh = c.get();
      s = std::move(c);
    }
  };
  std::string dir;
  // Stops whatever is left of this node's job; over a fresh connection when the old one is gone.
  auto stop_here = [&](bool reconnect) {
    try {
      if (reconnect) open();
      if (cancel_job(*s, dir, plan_.cancel_grace_s, plan_.cancel_signal)) event(node, "process group killed, none left");
    } catch (const moe::Error& e) {
      event(node, std::string("could not stop its processes: ") + e.what());
      std::lock_guard lock(mu_);
      reason_ += std::string("; ") + host.label() + ": processes may remain (" + e.what() + ")";
    }
  };
  try {
    open();
    if (ssh) event(node, "connected in " + std::to_string(ssh->connect_time().count()) + " ms");
    dir = job_dir(s->jobs_root(), plan_.job_id, node);
    if (launch) {
      NodeContext ctx;
      ctx.node_rank = node;
      ctx.nnodes = static_cast<int>(plan_.hosts.size());
      ctx.host = host;
      ctx.master_addr = plan_.hosts[0].rendezvous_address();
      ctx.master_port = plan_.master_port;
      ctx.job_dir = dir;
      ctx.job_id = plan_.job_id;
      if (plan_.bundle) {
        std::call_once(bundle_once_, [&] {
          try {
            bundle_ = std::make_shared<Bundle>(scan_bundle(*plan_.bundle));
          } catch (const moe::Error& e) {
            bundle_error_ = e.what();
          }
        });
        if (!bundle_) throw moe::Error(bundle_error_);
        DeployResult d = deploy_bundle(*ssh, *bundle_);
        ctx.bundle_dir = d.remote_dir;
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.2f", d.seconds);
        event(node, d.uploaded ? "bundle uploaded (" + std::to_string(d.bytes) + " bytes, " + secs + " s)"
                               : "bundle present, upload skipped (" + std::string(secs) + " s)");
      }
      if (cancel_requested_) {  // another node failed, or the user cancelled, before we started
        event(node, "not started (job cancelled)");
        node_done();
        return;
      }
      const int pid = launch_job(*s, dir, shell_join(plan_.command(ctx)), plan_.files, local);
      event(node, "started (process group " + std::to_string(pid) + ")");
      if (events_.on_started) events_.on_started(node, pid);
    }
    watch_node(*s, node, dir, false);
    if (detach_requested_ && !cancel_requested_) {
      event(node, "detached (the job keeps running)");
    } else if (cancel_requested_) {
      stop_here(false);
      watch_node(*s, node, dir, true);  // deliver what was written before the kill
    } else {
      NodeJobStatus st = job_status(*s, dir);
      {
        std::lock_guard lock(mu_);
        node_status_[n] = st;
      }
      if (st.state == NodeJobState::exited && st.exit_code == 0) event(node, "finished");
      else if (!cancel_requested_) fail(node, st.describe());
      stop_here(false);  // a rank that outlived the launcher must not stay behind
    }
  } catch (const moe::Error& e) {
    const bool connected = s != nullptr;
    fail(node, e.what());
    if (connected && !dir.empty()) stop_here(true);
  }
  node_done();
}

}  // namespace moe::remote
