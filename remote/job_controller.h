#pragma once
// Runs one job on several nodes: per node one worker thread (a libssh session is not thread-safe)
// that connects, deploys the bundle, launches the node's command under setsid in its job directory,
// then watches it. A plan with local_root runs on one node that is this machine instead (no SSH, no
// bundle: local_shell.h), with the same job directory, wrapper, watch and cancel. Node 0's stdout
// (the metrics stream) is delivered as complete lines with the byte offset after each line; every
// node's stderr is delivered as lines prefixed "[host] " (a local job's without a prefix).
// A node that exits non-zero, loses its connection or misses a keepalive fails the job: the others
// are cancelled (process group killed over a second channel, confirmed empty).
// No method blocks on the network; events arrive on worker threads (a GUI must queue them to its
// own thread). Destroying the controller stops watching but leaves the job running (reattach).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "connect_options.h"
#include "hostfile.h"
#include "remote_job.h"

namespace moe::remote {

// What a node's command line may depend on.
struct NodeContext {
  int node_rank = 0;
  int nnodes = 1;
  HostEntry host;
  std::string master_addr;  // node 0's rendezvous address (its addr= or host)
  int master_port = 0;
  std::string job_dir;      // absolute, on this node (also for a local job)
  std::string bundle_dir;   // absolute deployed bundle on this node ("" without a bundle)
  std::string job_id;       // JobPlan::job_id: the runtime's --job-id, the same on every node
};
// argv for one node, e.g. {bundle_dir + "/moe-runtime", "train", job_dir + "/spec.json", "--nnodes", …}.
// The controller quotes every element, so any bytes are safe.
using CommandBuilder = std::function<std::vector<std::string>(const NodeContext&)>;

struct JobPlan {
  std::string job_id;               // unique per run: names ~/.moe-studio/jobs/<id>/
  std::vector<HostEntry> hosts;     // node 0 first: it hosts the rendezvous
  int master_port = 29500;
  CommandBuilder command;
  std::vector<JobFile> files;       // written into every node's job dir before launch (spec.json)
  std::optional<std::filesystem::path> bundle;  // deployed to ~/.cache/moe-studio/<hash>/ first
  ConnectOptions connect;
  int cancel_grace_s = 5;           // cancel_signal → SIGKILL delay
  std::string cancel_signal = "TERM";
  // Non-empty: a local job, its directory under this absolute path on this machine (hosts: one
  // entry naming this machine); its wrapper stops it when its recorder is gone (remote_job.h);
  // stderr lines come without a host prefix.
  std::string local_root;
};

enum class JobState { idle, running, completed, failed, cancelled, detached };
const char* to_string(JobState s);

struct JobEvents {
  // Node 0's stdout, one complete line at a time (without '\n'); end_offset = bytes of the metrics
  // file up to and including this line: store it with the record, reattach from it.
  std::function<void(std::string_view line, uint64_t end_offset)> on_metrics_line;
  // A stderr line of a node, already prefixed "[host] ".
  std::function<void(int node, const std::string& line)> on_log_line;
  // Progress for the console: "connected in 12 ms", "bundle present, upload skipped", "started (pid 123)", …
  std::function<void(int node, const std::string& what)> on_node_event;
  // Once, when every node is done: completed / failed (reason names the node) / cancelled / detached.
  std::function<void(JobState state, const std::string& reason)> on_finished;
  // A node's job was started: its wrapper's pid (= process group).
  std::function<void(int node, int pid)> on_started;
};

class JobController {
 public:
  JobController(JobPlan plan, JobEvents events);
  ~JobController();  // detach(), then joins the workers
  JobController(const JobController&) = delete;
  JobController& operator=(const JobController&) = delete;

  void launch();  // deploy + start on every node, then watch
  // Watch a job started earlier (by this or a killed client): metrics from metrics_offset
  // (the end_offset of the last line stored), each node's log from log_offsets[i] (default 0).
  void attach(uint64_t metrics_offset, std::vector<uint64_t> log_offsets = {});
  void cancel();  // kill the job on every node
  void detach();  // stop watching; the job keeps running

  JobState state() const;
  std::string reason() const;
  bool wait_for(std::chrono::milliseconds timeout) const;  // true once finished
  uint64_t metrics_offset() const;
  std::vector<uint64_t> log_offsets() const;
  // How node `node`'s command ended (its exit_code file), once the controller looked: exited (with
  // the code), gone; `missing` while unknown (running, cancelled, unreachable).
  NodeJobStatus node_status(int node) const;

 private:
  void start(bool launch);
  void run_node(int node, bool launch);
  void watch_node(NodeShell& session, int node, const std::string& dir, bool final_drain);
  void fail(int node, const std::string& reason);
  void event(int node, const std::string& what);
  void node_done();
  bool stop_requested() const { return cancel_requested_ || detach_requested_; }

  JobPlan plan_;
  JobEvents events_;
  std::vector<std::thread> workers_;
  std::atomic<bool> cancel_requested_{false}, detach_requested_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable done_cv_;
  JobState state_ = JobState::idle;
  bool failed_ = false, user_cancel_ = false, finished_ = false;
  std::string reason_;
  int remaining_ = 0;
  // Stream positions (guarded by mu_).
  uint64_t metrics_offset_ = 0;
  std::string metrics_partial_;
  std::vector<uint64_t> log_offsets_;
  std::vector<std::string> log_partial_;
  std::vector<NodeJobStatus> node_status_;
  // The bundle is scanned once, by whichever worker gets there first.
  std::once_flag bundle_once_;
  std::shared_ptr<struct Bundle> bundle_;
  std::string bundle_error_;
};

}  // namespace moe::remote
