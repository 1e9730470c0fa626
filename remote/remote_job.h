#pragma once
// One node's share of a job, kept in ~/.moe-studio/jobs/<id>/node-<rank>/ on that node (a local
// job: <store>-jobs/<id>/node-0/ on this machine, see local_shell.h):
//   run.sh        the wrapper: records its pid (= its process group, it runs under setsid),
//                 runs the command with stdout → metrics.jsonl and stderr → log, then exit_code
//   pid, exit_code, metrics.jsonl, log, cancelled, plus the caller's files (spec.json …)
//   recorder, detached   a local job only: the wrapper's watchdog stops the job once the process
//                 named in `recorder` ("PID START_TICKS") is gone, unless `detached` exists
// The job runs detached (setsid + nohup), so it survives the client; watching is a separate
// command that copies the files from any byte offset, which is also how a client reattaches.
// Nodes need a POSIX shell, Linux /proc, and coreutils (setsid, stat -c, sha256sum, mv -T).
#include <cstdint>
#include <string>
#include <vector>

#include "node_shell.h"

namespace moe::remote {

// Throws moe::Error unless `id` can be a directory name (non-empty, no '/', NUL, not . or ..).
void check_job_id(const std::string& id);
// <jobs_root>/<id>/node-<rank> (jobs_root: NodeShell::jobs_root())
std::string job_dir(const std::string& jobs_root, const std::string& job_id, int node_rank);

// Remote shell commands (exposed for tests; every path is shell-quoted).
std::string launch_command(const std::string& dir);
std::string watch_command(const std::string& dir, uint64_t metrics_offset, uint64_t log_offset);
std::string status_command(const std::string& dir);
// `signal` (TERM, INT) to the process group first, KILL after grace_s.
std::string cancel_command(const std::string& dir, int grace_s, const std::string& signal = "TERM");
// Contents of run.sh for a command line (already quoted, e.g. by shell_join). `watch_recorder`:
// with the watchdog of a local job (see above; it stops the job within about a second).
std::string wrapper_script(const std::string& command_line, bool watch_recorder = false);

enum class NodeJobState { running, exited, cancelled, gone, missing };
struct NodeJobStatus {
  NodeJobState state = NodeJobState::missing;
  int exit_code = -1;  // for exited
  std::string describe() const;
};

// Creates the job directory, uploads files and run.sh, starts the wrapper under setsid; returns
// the pid (= process group id). Throws moe::Error if the directory already holds a started job.
int launch_job(NodeShell& shell, const std::string& dir, const std::string& command_line,
               const std::vector<JobFile>& files, bool watch_recorder = false);
NodeJobStatus job_status(NodeShell& shell, const std::string& dir);
// `signal` to the process group, SIGKILL after grace_s, then confirms no live process is left in
// the group. Returns false when there was nothing to stop; throws moe::Error if processes remain.
bool cancel_job(NodeShell& shell, const std::string& dir, int grace_s, const std::string& signal = "TERM");

}  // namespace moe::remote
