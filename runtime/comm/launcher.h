#pragma once
// The per-node launcher of `moe-runtime train SPEC --nproc-per-node N [--nnodes M --node-rank R
// --master HOST:PORT]` (docs/architecture.md 3.4). It starts the node's ranks as child processes in a
// process group of their own, each told its identity through the environment (rendezvous.h), and:
//   - passes global rank 0's stdout (the metrics stream) through untouched, except that it holds
//     back rank 0's `run_end` until every rank has exited, so that a failure elsewhere wins;
//   - passes rank 0's stderr through, prefixes every other rank's stderr (and stray stdout) lines
//     with "[rank r] " on its own stderr;
//   - forwards SIGINT/SIGTERM to the ranks (a second one sends SIGKILL);
//   - when a rank fails (non-zero exit or a signal), ends the others (SIGTERM, then SIGKILL after
//     the grace period) and exits non-zero with a `run_end` record `failed` naming the rank and its
//     exit status or signal — written by the launcher itself, so it is there even if rank 0 died.
// The io engineer's main() calls run_launcher(); a child knows it is a rank because MOE_RANK is set.
#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt::comm {

struct LauncherOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_host = "127.0.0.1";
  int master_port = 29500;
  double grace_s = 3.0;        // SIGTERM → SIGKILL
  double comm_timeout_s = 60;  // handed to the ranks: rendezvous wait and collective timeout
  // Where rank 0 writes the metrics stream: "" or "-" = stdout (held/patched by the launcher as
  // above); a file path: the launcher appends its own run_end there after a failure.
  std::string metrics_path;
  // The launch's id (--job-id), the same on every node; the rendezvous refuses ranks of another id,
  // so two jobs that share a master address fail with a clear error instead of training each
  // other's ranks. Empty: a random one when the job has one node; with several nodes, one derived
  // from the master address (orchestrators — moe run, Slurm — pass their own).
  std::string job_id;

  int world_size() const { return nproc_per_node * nnodes; }
  bool hosts_rank0() const { return node_rank == 0; }
};

// Removes the launcher's flags (--nproc-per-node, --nnodes, --node-rank, --master, --grace,
// --comm-timeout, --job-id; "--flag value" or "--flag=value") from `args`, filling `options`. Throws
// moe::Error naming the flag on a bad value or an inconsistent combination.
void take_launcher_flags(std::vector<std::string>& args, LauncherOptions& options);

// Throws a one-line moe::Error when the launch's world size (nproc × nnodes) differs from the
// spec's (dp × tp × pp × ep), e.g. "--nproc-per-node 2 × --nnodes 1 = 2 processes, but the spec
// needs dp·tp·pp·ep = 4".
void check_launch_world(const LauncherOptions& options, int64_t spec_world_size);

// Starts the node's ranks, each running `rank_argv` (argv[0] is executed as a path; use
// self_executable() to re-run this program) with the rank variables added to the environment, and
// supervises them as described above. Returns the launcher's exit code: 0 when every rank exited
// 0, 1 on a failure, 128+signal after a forwarded SIGINT/SIGTERM. Writes run_end records only on
// the node that hosts global rank 0.
int run_launcher(const LauncherOptions& options, const std::vector<std::string>& rank_argv);

// Absolute path of the running executable (/proc/self/exe).
std::string self_executable();

}  // namespace moe::rt::comm
