#pragma once
// One run, from "record it" to "it ended": the non-Qt logic that `moe run`, `moe run --hosts`,
// `moe run --attach` and the studio's Run workspace share, for a job on this machine and for one on
// hosts alike. It checks the spec (and the hostfile against it), creates the run's rows in the store
// (runs + remote_runs, which holds every job's resume point, + run_writers for a local run), drives
// a JobController (a local run is a job on one node that is this machine: a job directory beside
// the store, <store>-jobs/<job id>/node-0/, watched and cancelled as a node's), ingests rank 0's
// metrics stream exactly once (each batch stores its byte offset), saves the log offsets and
// records the final status with a reason naming the node or rank. Start, cancel, detach (the job
// goes on; a local job's watchdog is told by a `detached` marker), reattach, poll, finish.
// Callbacks arrive on worker threads.
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
struct IngestResult;
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

// Slurm (docs/remote.md, "Slurm"): the spec as submitted — ⌈world / gpus_per_node⌉ nodes of equal
// slots, named slurm-node-i (the allocation decides the hosts). Throws moe::Error when the world
// does not split evenly over them.
JobSpec spec_for_slurm(JobSpec spec);
// argv on the login node: the bundle's resources/slurm/moe-slurm-job, which writes the batch
// script, submits it, relays node 0's metrics and Slurm's states, and scancels on SIGTERM.
// `slurm_bin`: a directory put first on the login node's PATH (the tests' Slurm stand-ins).
CommandBuilder slurm_command(const JobSpec& spec, const std::string& slurm_bin = "");

// The bundle to deploy: `given` (a directory holding an executable moe-runtime) when not empty,
// else BUILD/runtime-bundle made by `bundle_script` from `runtime_exe` (BUILD/runtime/app/moe-runtime),
// remade when the runtime is newer. `note` hears "bundling …". Throws moe::Error saying what is missing.
std::filesystem::path locate_bundle(const std::string& given, const std::filesystem::path& runtime_exe,
                                    const std::string& bundle_script,
                                    const std::function<void(const std::string&)>& note = {});

// scripts/bundle-runtime of the source tree this was built from; $MOE_BUNDLE_SCRIPT overrides it.
std::string default_bundle_script();

// The moe-runtime of a local run: $MOE_RUNTIME, else beside this program's build tree
// (build/cli/moe, build/gui/moe-studio → build/runtime/app/moe-runtime) or install folder
// (bin/moe-runtime). Throws moe::Error saying where it looked.
std::filesystem::path find_runtime();

struct RunRequest {
  std::string db;                  // the run store
  JobSpec spec;                    // resolved (overrides applied)
  std::string name;                // run name; empty: the spec's name
  std::vector<std::string> tags;
  // Where: no hosts → this machine; else these nodes over SSH, node 0 first.
  std::vector<HostEntry> hosts;
  std::string hostfile_text;       // hosts: recorded with the run, --attach reconnects with it
  std::string hostfile_name;       // hosts: for messages ("hosts.txt", "Hosts panel")
  int master_port = 29500;         // hosts (a local run with several ranks takes a free 127.0.0.1 port)
  std::filesystem::path bundle;    // hosts: locate_bundle()
  ConnectOptions connect;          // hosts
  std::filesystem::path runtime;   // this machine: moe-runtime (find_runtime())
  std::string checkpoint_dir;      // this machine: "" → <store>-checkpoints/run-<id> when the spec checkpoints
  std::string resume;              // this machine: --resume DIR
  std::string recorder = "moe run";  // this machine: the recording program, named if it dies (run_writers.h)
  // hosts: one entry, a Slurm login node; the job goes through sbatch/srun there (slurm_command).
  bool slurm = false;
  std::string slurm_bin;           // slurm: tests' stand-ins (slurm_command)
};

struct RunCallbacks {
  std::function<void(int node, const std::string& line)> on_log_line;    // "[host] …"
  std::function<void(int node, const std::string& what)> on_node_event;  // names the host
};

struct RunOutcome {
  int64_t run_id = 0;
  std::string status;  // completed / failed / cancelled / interrupted
  std::string reason;  // hosts: the controller's (names the node); this machine: the run's end reason (names the rank)
  int64_t steps = 0;
  double last_loss = 0;  // NaN when no step was stored
  int64_t malformed_lines = 0;
};

// Options a CLI or GUI starts from: keepalive tight enough that a lost node fails the run in ~15 s.
ConnectOptions default_run_connect_options();

class RunSession {
 public:
  // Records a new run (checks the spec and the hosts against it, writes the rows); start() launches it.
  static std::unique_ptr<RunSession> create(const RunRequest& request, RunCallbacks callbacks);
  // A session that reattaches to `run` (recorded by create(), local or on hosts); `hosts` empty: the
  // recorded hostfile. Throws moe::Error when the run is unknown, has no job, or (a local run) is
  // being recorded by another live process. `recorder`: as RunRequest's.
  static std::unique_ptr<RunSession> reattach(const std::string& db, int64_t run, std::vector<HostEntry> hosts,
                                              const ConnectOptions& connect, RunCallbacks callbacks,
                                              const std::string& recorder = "moe run");
  ~RunSession();  // a session not finished detaches: the job keeps running (reattach later)
  RunSession(const RunSession&) = delete;
  RunSession& operator=(const RunSession&) = delete;

  void start();   // launch (create) or attach (reattach); never blocks on the network
  void cancel();  // kill the job on every node (a local job: SIGINT, as Ctrl-C; SIGKILL after 5 s)
  // Stops watching and leaves the job running: a local job is first marked `detached` (its
  // watchdog then lets it outlive this process), the records read so far are stored with their
  // resume point, the status stays `running` (reattach() later). The session is done afterwards:
  // call nothing but run_id()/job_id() on it.
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
  bool local() const { return !row_.local_root.empty(); }
  // A local run's job directory (<store>-jobs/<job id>/node-0); "" on hosts.
  std::string local_job_dir() const;

 private:
  RunSession(std::string db, store::RemoteRunRow row, JobPlan plan, bool launch, RunCallbacks callbacks,
             std::string recorder);
  void record_end(const store::IngestResult& result, JobState state, const std::string& reason);

  std::string db_;
  store::RemoteRunRow row_;
  std::vector<std::string> labels_;
  bool launch_;
  RunCallbacks cb_;
  std::string recorder_;
  std::unique_ptr<store::Ingestor> ingestor_;
  std::unique_ptr<JobController> job_;
  std::mutex mu_;  // guards the fields below (written on worker threads)
  std::atomic<bool> ingest_failed_{false};
  std::string ingest_error_;
  std::vector<std::string> launcher_lines_;  // "[host] launcher: rank 3 was killed by …"
  bool cancel_sent_ = false, finished_ = false, started_ = false;
  std::chrono::steady_clock::time_point last_save_;
};

}  // namespace moe::remote
