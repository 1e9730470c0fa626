// Recorders of local runs and the runs they abandoned (see run_writers.h).
#include "run_writers.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "error.h"

namespace moe::store {

namespace {

std::string hostname() {
  char name[256] = {0};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

// Field 22 of /proc/PID/stat: the start time in clock ticks after boot (the command name, field
// 2, is in parentheses and may hold spaces: parse after the last ')'). None for a process that
// has exited and not yet been waited for (state Z or X, field 3): it will record nothing more.
std::optional<int64_t> start_ticks(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3 && (field == "Z" || field == "X")) return std::nullopt;
    if (i == 22) return std::stoll(field);
  }
  return std::nullopt;
}

bool alive(int64_t pid, int64_t start) {
  const auto now = start_ticks(pid);
  return now && *now == start;
}

}  // namespace

std::optional<ProcessId> process_of(int64_t pid) {
  const auto start = start_ticks(pid);
  if (!start) return std::nullopt;
  return ProcessId{pid, *start};
}

ProcessId this_process() {
  const auto me = process_of(::getpid());
  if (!me) throw Error("/proc/self/stat: cannot read this process's start time");
  return *me;
}

void record_writer(RunStore& store, int64_t run, const ProcessId& writer, const std::string& program) {
  // A reattach keeps the runtime recorded by the launch.
  Stmt ins(store.db(), "INSERT INTO run_writers(run_id, host, boot_id, writer_pid, writer_start, recorder)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(run_id) DO UPDATE SET host = ?2, boot_id = ?3,"
                       " writer_pid = ?4, writer_start = ?5, recorder = ?6, detached = 0");
  ins.bind(1, run).bind(2, hostname()).bind(3, boot_id()).bind(4, writer.pid).bind(5, writer.start).bind(6, program).run();
}

void set_writer_detached(RunStore& store, int64_t run, bool detached) {
  Stmt up(store.db(), "UPDATE run_writers SET detached = ?2 WHERE run_id = ?1");
  up.bind(1, run).bind(2, detached ? 1 : 0).run();
}

std::optional<ProcessId> live_writer(RunStore& store, int64_t run) {
  Stmt q(store.db(), "SELECT writer_pid, writer_start FROM run_writers"
                     " WHERE run_id = ?1 AND detached = 0 AND host = ?2 AND boot_id = ?3");
  q.bind(1, run).bind(2, hostname()).bind(3, boot_id());
  if (!q.step() || !alive(q.col_int(0), q.col_int(1))) return std::nullopt;
  return ProcessId{q.col_int(0), q.col_int(1)};
}

void record_runtime(RunStore& store, int64_t run, const ProcessId& runtime) {
  Stmt up(store.db(), "UPDATE run_writers SET runtime_pid = ?2, runtime_start = ?3 WHERE run_id = ?1");
  up.bind(1, run).bind(2, runtime.pid).bind(3, runtime.start).run();
}

std::vector<int64_t> reap_abandoned_runs(RunStore& store) {
  struct Candidate {
    int64_t run, writer_pid, writer_start, last_step;
    std::optional<ProcessId> runtime;
    std::string recorder;
  };
  std::vector<Candidate> gone;
  {
    Stmt q(store.db(),
           "SELECT w.run_id, w.writer_pid, w.writer_start, w.runtime_pid, w.runtime_start, s.last_step,"
           " coalesce(w.recorder, 'moe run')"
           " FROM run_writers w JOIN runs r ON r.id = w.run_id LEFT JOIN run_summary s ON s.run_id = w.run_id"
           " WHERE r.status IN ('created', 'running') AND w.host = ?1 AND w.boot_id = ?2 AND w.detached = 0");
    q.bind(1, hostname()).bind(2, boot_id());
    while (q.step()) {
      Candidate c{q.col_int(0), q.col_int(1), q.col_int(2), q.is_null(5) ? 0 : q.col_int(5), std::nullopt, q.col_text(6)};
      if (alive(c.writer_pid, c.writer_start)) continue;
      if (!q.is_null(3)) c.runtime = ProcessId{q.col_int(3), q.col_int(4)};
      gone.push_back(c);
    }
  }
  std::vector<int64_t> reaped;
  for (const Candidate& c : gone) {
    // The runtime leads its own process group; kill it only if it is still that process.
    if (c.runtime && alive(c.runtime->pid, c.runtime->start)) ::kill(-static_cast<pid_t>(c.runtime->pid), SIGKILL);
    // Only if still unfinished: another reader may have reaped it meanwhile.
    Stmt up(store.db(), "UPDATE runs SET status = 'failed', end_reason = ?2, ended_at = coalesce(ended_at, ?3)"
                        " WHERE id = ?1 AND status IN ('created', 'running')");
    up.bind(1, c.run)
        .bind(2, "the recording process (" + c.recorder + ", pid " + std::to_string(c.writer_pid) +
                     ") ended without recording the run's end; last recorded step: " + std::to_string(c.last_step))
        .bind(3, utc_now())
        .run();
    if (store.db().changes() > 0) reaped.push_back(c.run);
  }
  return reaped;
}

}  // namespace moe::store
