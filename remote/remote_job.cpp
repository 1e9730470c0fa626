// Remote job directory: launch under setsid, status, watch (tail from an offset), cancel.
#include "remote_job.h"

#include <charconv>

#include "error.h"
#include "shell_quote.h"

namespace moe::remote {

namespace {

// alive PGID: exit 0 when a non-zombie process is in that process group (zombies hold nothing).
const char* kAliveFn =
    "alive() { ps -e -o pgid= -o stat= | awk -v g=\"$1\" '$1==g && $2 !~ /^Z/ {n++} END {exit n==0}'; }; ";

}  // namespace

void check_job_id(const std::string& id) {
  if (id.empty() || id == "." || id == ".." || id.size() > 200 || id.find('/') != std::string::npos ||
      id.find('\0') != std::string::npos)
    throw moe::Error("job id '" + id + "': must be 1-200 bytes, not . or .., without '/' or NUL");
}

std::string job_dir(const std::string& jobs_root, const std::string& job_id, int node_rank) {
  check_job_id(job_id);
  return jobs_root + "/" + job_id + "/node-" + std::to_string(node_rank);
}

std::string wrapper_script(const std::string& command_line, bool watch_recorder) {
  if (!watch_recorder) {
    return "# moe-studio job wrapper: pid (= process group), command, exit code.\n"
           "echo $$ > pid.tmp && mv pid.tmp pid\n" +
           command_line +
           " >> metrics.jsonl 2>> log\n"
           "code=$?\n"
           "echo $code > exit_code.tmp && mv exit_code.tmp exit_code\n";
  }
  // The command runs in the background so that a watchdog can poll beside it: every 0.5 s it asks
  // whether the recorder (pid and start time in ./recorder, rewritten by a reattach) is alive or
  // the job was detached (./detached); when neither, it sends SIGTERM to the process group (the
  // launcher stops its ranks), SIGKILL after 5 s. The recorder is checked again after the marker,
  // so a reattach (new recorder first, then the marker removed) is never mistaken for a death.
  return "# moe-studio job wrapper (this machine): pid (= process group), command, exit code, and a\n"
         "# watchdog that stops the job once its recorder is gone unless it was detached.\n"
         "echo $$ > pid.tmp && mv pid.tmp pid\n" +
         command_line +
         " >> metrics.jsonl 2>> log &\n"
         "job=$!\n"
         "alive() { st=$(sed 's/.*) //' \"/proc/$1/stat\" 2>/dev/null) || return 1; "
         "case $st in ''|Z*|X*) return 1;; esac; }\n"
         "recorder_alive() { read -r rp rs < recorder 2>/dev/null || return 1; "
         "st=$(sed 's/.*) //' \"/proc/$rp/stat\" 2>/dev/null) || return 1; set -- $st; "
         "[ \"$1\" != Z ] && [ \"$1\" != X ] && [ \"${20}\" = \"$rs\" ]; }\n"
         "(\n"
         "  trap 'kill $s 2>/dev/null; exit 0' TERM\n"
         "  while :; do\n"
         "    sleep 0.5 & s=$!; wait $s\n"
         "    if recorder_alive || [ -e detached ] || recorder_alive; then continue; fi\n"
         "    trap '' TERM\n"
         "    echo \"moe job: its recorder (pid $rp) is gone and the job was not detached: stopping it\" >> log\n"
         "    kill -TERM -$$ 2>/dev/null\n"
         "    i=0; while alive $job && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done\n"
         "    kill -KILL -$$ 2>/dev/null; exit 0\n"
         "  done\n"
         ") &\n"
         "watchdog=$!\n"
         "wait $job\n"
         "code=$?\n"
         "kill $watchdog 2>/dev/null; wait $watchdog\n"
         "echo $code > exit_code.tmp && mv exit_code.tmp exit_code\n";
}

std::string launch_command(const std::string& dir) {
  return "cd -- " + shell_quote(dir) + " || exit 97; "
         "if [ -e pid ]; then echo 'a job was already started in this directory' >&2; exit 97; fi; "
         ": > metrics.jsonl && : > log || exit 97; "
         "setsid nohup sh ./run.sh </dev/null >/dev/null 2>&1 & "
         "i=0; while [ ! -s pid ]; do i=$((i+1)); "
         "if [ $i -gt 100 ]; then echo 'the job did not start within 10 s' >&2; exit 96; fi; sleep 0.1; done; "
         "cat pid";
}

std::string watch_command(const std::string& dir, uint64_t metrics_offset, uint64_t log_offset) {
  // A polling copier rather than `tail -f --pid`: tail treats a zombie as alive, and where init
  // reaps slowly that delays the end by seconds. Each round first asks whether the wrapper still
  // runs, then copies the bytes between the offsets and the current sizes (head -c keeps the
  // count exact while the file grows); a round that began with the wrapper gone is the last, so
  // everything written before its exit is sent, exactly once. It also ends when its sshd session
  // is gone (client killed or detached), instead of polling until the job ends.
  return "cd -- " + shell_quote(dir) + " || exit 98; pid=$(cat pid) || exit 98; "
         "m=" + std::to_string(metrics_offset) + "; l=" + std::to_string(log_offset) + "; "
         "running() { [ ! -f exit_code ] || return 1; st=; read -r _ _ st _ < /proc/$pid/stat 2>/dev/null; "
         "[ -n \"$st\" ] && [ \"$st\" != Z ] && [ \"$st\" != X ]; }; "
         "while :; do r=0; running && r=1; "
         "s=$(stat -c %s metrics.jsonl) || exit 98; "
         "if [ \"$s\" -gt \"$m\" ]; then tail -c +$((m+1)) metrics.jsonl | head -c $((s-m)); m=$s; fi; "
         "s=$(stat -c %s log) || exit 98; "
         "if [ \"$s\" -gt \"$l\" ]; then tail -c +$((l+1)) log | head -c $((s-l)) >&2; l=$s; fi; "
         "[ $r = 1 ] || break; kill -0 $PPID 2>/dev/null || exit 0; sleep 0.2; done";
}

std::string status_command(const std::string& dir) {
  return std::string(kAliveFn) + "cd -- " + shell_quote(dir) + " 2>/dev/null || { echo missing; exit 0; }; "
         "pid=$(cat pid 2>/dev/null); "
         "if [ -f exit_code ]; then echo \"exited $(cat exit_code)\"; "
         "elif [ -n \"$pid\" ] && alive \"$pid\"; then echo running; "
         "elif [ -f cancelled ]; then echo cancelled; "
         "else echo gone; fi";
}

std::string cancel_command(const std::string& dir, int grace_s, const std::string& signal) {
  const int term_ticks = grace_s * 10;
  return std::string(kAliveFn) + "cd -- " + shell_quote(dir) + " 2>/dev/null || exit 3; "
         "pid=$(cat pid 2>/dev/null); [ -n \"$pid\" ] || exit 3; alive \"$pid\" || exit 3; "
         "[ -f exit_code ] || : > cancelled; "
         "kill -" + signal + " -\"$pid\" 2>/dev/null; i=0; "
         "while alive \"$pid\"; do i=$((i+1)); "
         "if [ $i -eq " + std::to_string(term_ticks) + " ]; then kill -KILL -\"$pid\" 2>/dev/null; fi; "
         "if [ $i -gt " + std::to_string(term_ticks + 50) + " ]; then "
         "echo \"processes of group $pid survive SIGKILL:\" $(ps -e -o pid= -o pgid= | awk -v g=\"$pid\" '$2==g {print $1}') >&2; "
         "exit 1; fi; sleep 0.1; done; exit 0";
}

std::string NodeJobStatus::describe() const {
  switch (state) {
    case NodeJobState::running: return "running";
    case NodeJobState::exited: return "exited with status " + std::to_string(exit_code) +
                                      (exit_code > 128 ? " (signal " + std::to_string(exit_code - 128) + ")" : "");
    case NodeJobState::cancelled: return "cancelled";
    case NodeJobState::gone: return "its processes are gone without an exit status (killed)";
    case NodeJobState::missing: return "no job directory";
  }
  return "?";
}

int launch_job(NodeShell& session, const std::string& dir, const std::string& command_line,
               const std::vector<JobFile>& files, bool watch_recorder) {
  for (const JobFile& f : files) {
    if (f.name.empty() || f.name.find('/') != std::string::npos || f.name == "run.sh" || f.name == "pid" ||
        f.name == "metrics.jsonl" || f.name == "log" || f.name == "exit_code" || f.name == "cancelled" ||
        f.name == "detached")
      throw moe::Error("job file name '" + f.name + "' is not allowed");
  }
  // Refuse before uploading anything, so a running job's files are never overwritten.
  ExecResult used = session.run("[ -e " + shell_quote(dir + "/pid") + " ]");
  if (used.exit_status == 0)
    throw moe::Error(session.name() + ": " + dir + " already holds a started job (job ids must be unique)");
  std::vector<JobFile> all = files;
  all.push_back(JobFile{"run.sh", wrapper_script(command_line, watch_recorder), 0700});
  session.write_files(dir, all);
  ExecResult r = session.run(launch_command(dir));
  int pid = 0;
  const std::string out = r.out.substr(0, r.out.find_first_of("\r\n"));
  auto [p, ec] = std::from_chars(out.data(), out.data() + out.size(), pid);
  if (r.exit_status != 0 || ec != std::errc() || pid <= 1)
    throw moe::Error(session.name() + ": cannot start the job in " + dir + ": " +
                     (r.err.empty() ? "exit status " + std::to_string(r.exit_status) : r.err));
  return pid;
}

NodeJobStatus job_status(NodeShell& session, const std::string& dir) {
  ExecResult r = session.run(status_command(dir));
  NodeJobStatus s;
  const std::string out = r.out.substr(0, r.out.find('\n'));
  if (out == "running") s.state = NodeJobState::running;
  else if (out == "cancelled") s.state = NodeJobState::cancelled;
  else if (out == "gone") s.state = NodeJobState::gone;
  else if (out == "missing") s.state = NodeJobState::missing;
  else if (out.rfind("exited ", 0) == 0) {
    s.state = NodeJobState::exited;
    const std::string code = out.substr(7);
    auto [p, ec] = std::from_chars(code.data(), code.data() + code.size(), s.exit_code);
    if (ec != std::errc()) throw moe::Error(session.name() + ": unreadable exit_code in " + dir);
  } else {
    throw moe::Error(session.name() + ": cannot read job status in " + dir + ": " + r.err);
  }
  return s;
}

bool cancel_job(NodeShell& session, const std::string& dir, int grace_s, const std::string& signal) {
  ExecResult r = session.run(cancel_command(dir, grace_s, signal));
  if (r.exit_status == 3) return false;
  if (r.exit_status != 0)
    throw moe::Error(session.name() + ": cancel in " + dir + " failed: " + r.err);
  return true;
}

}  // namespace moe::remote
