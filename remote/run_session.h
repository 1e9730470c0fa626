#pragma once
// One remote run, from "record it" to "it ended": the non-Qt logic that `moe run --hosts`,
// `moe run --attach` and the studio's Run workspace share. It checks the hostfile against the spec,
// creates the run's rows in the store (runs + remote_runs), drives a JobController, ingests node 0's
// metrics stream exactly once (each batch stores its byte offset), saves the nodes' log offsets and
// records the final status with a reason naming the node. Callbacks arrive on worker threads.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "connect_options.h"
#include "hostfile.h"
#include "job_controller.h"
#include "job_spec.h"
#include "remote_runs.h"

namespace moe::store {
class Ingestor;
}

namespace moe::remote {

// The launcher starts the same number of ranks on every node: slots must agree and fill the world.
// Throws moe::Error naming `hostfile` and the line.
void check_hosts_against_spec(const std::vector<HostEntry>& hosts, const JobSpec& spec, const std::string& hostfile);
// The spec as uploaded: cluster.nodes replaced by the hosts (validated).
JobSpec spec_for_hosts(JobSpec spec, const std::vector<HostEntry>& hosts);
// "run-<id>-<16 hex>": names ~/.moe-studio/jobs/<id>/ on every node.
std::string new_job_id(int64_t run);
// argv of moe-runtime on one node (train spec.json --nnodes … --metrics -).
CommandBuilder runtime_command();

// The bundle to deploy: `given` (a directory holding an executable moe-runtime) when not empty,
// else BUILD/runtime-bundle made by `bundle_script` from `runtime_exe` (BUILD/runtime/app/moe-runtime),
// remade when the runtime is newer. `note` hears "bundling …". Throws moe::Error saying what is missing.
std::filesystem::path locate_bundle(const std::string& given, const std::filesystem::path& runtime_exe,
                                    const std::string& bundle_script,
                                    const std::function<void(const std::string&)>& note = {});

// scripts/bundle-runtime of the source tree this was built from; $MOE_BUNDLE_SCRIPT overrides it.
std::string default_bundle_script();

struct RunRequest {
  std::string db;                  // the run store
  JobSpec spec;                    // resolved (overrides applied)
  std::vector<HostEntry> hosts;    // node 0 first
  std::string hostfile_text;       // recorded with the run: --attach reconnects with it
  std::string hostfile_name;       // for messages ("hosts.txt", "Hosts panel")
  std::string name;                // run name; empty: the spec's name
  std::vector<std::string> tags;
  int master_port = 29500;
  std::filesystem::path bundle;    // locate_bundle()
  ConnectOptions connect;
};

struct RunCallbacks {
  std::function<void(int node, const std::string& line)> on_log_line;    // "[host] …"
  std::function<void(int node, const std::string& what)> on_node_event;  // names the host
};

struct RunOutcome {
  int64_t run_id = 0;
  std::string status;  // completed / failed / cancelled / interrupted
  std::string reason;  // the controller's reason (names the node), "" when none
  int64_t steps = 0;
  double last_loss = 0;  // NaN when no step was stored
};

// Options a CLI or GUI starts from: keepalive tight enough that a lost node fails the run in ~15 s.
ConnectOptions default_run_connect_options();

class RunSession {
 public:
  // Records a new run (checks hosts against the spec, writes the rows); start() launches it.
  static std::unique_ptr<RunSession> create(const RunRequest& request, RunCallbacks callbacks);
  // A session that reattaches to `run` (recorded by create()); `hosts` empty: the recorded hostfile.
  // Throws moe::Error when the run is unknown or was not remote.
  static std::unique_ptr<RunSession> reattach(const std::string& db, int64_t run, std::vector<HostEntry> hosts,
                                              const ConnectOptions& connect, RunCallbacks callbacks);
  ~RunSession();  // a session not finished detaches: the job keeps running (reattach later)
  RunSession(const RunSession&) = delete;
  RunSession& operator=(const RunSession&) = delete;

  void start();   // launch (create) or attach (reattach); never blocks on the network
  void cancel();  // kill the job on every node
  // Stops watching and leaves the job running on the nodes: the records read so far are stored
  // with their resume point, the status stays `running` (reattach() later). The session is done
  // afterwards: call nothing but run_id()/job_id() on it.
  void detach();
  // Waits up to `wait` for every node to be done; saves the log offsets every 2 s; cancels the job
  // when the store cannot record. True once done: then call finish().
  bool poll(std::chrono::milliseconds wait);
  // Records the final status (with the failing node and its launcher's lines) and returns it.
  // Throws moe::Error when ingesting failed.
  RunOutcome finish();

  int64_t run_id() const { return row_.run_id; }
  const std::string& job_id() const { return row_.job_id; }
  const std::vector<std::string>& host_labels() const { return labels_; }
  const store::RemoteRunRow& row() const { return row_; }

 private:
  RunSession(std::string db, store::RemoteRunRow row, JobPlan plan, bool launch, RunCallbacks callbacks);

  std::string db_;
  store::RemoteRunRow row_;
  std::vector<std::string> labels_;
  bool launch_;
  RunCallbacks cb_;
  std::unique_ptr<store::Ingestor> ingestor_;
  std::unique_ptr<JobController> job_;
  std::mutex mu_;  // guards the fields below (written on worker threads)
  std::atomic<bool> ingest_failed_{false};
  std::string ingest_error_;
  std::vector<std::string> launcher_lines_;  // "[host] launcher: rank 3 was killed by …"
  bool cancel_sent_ = false, finished_ = false;
  std::chrono::steady_clock::time_point last_save_;
};

}  // namespace moe::remote
