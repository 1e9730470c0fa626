#pragma once
// A shell on the node of a job: what the job controller does on a node (run a command, stream one,
// write the job's files), over SSH (SshSession) or on this machine (LocalShell). A local run is a
// job on one node that is this machine: same job directory, same wrapper, same watch and cancel.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace moe::remote {

// Result of a command run to completion with its output collected.
struct ExecResult {
  int exit_status = -1;  // -1: no status (connection lost, or killed by a signal without status)
  std::string out, err;
};

// Result of a streamed command.
struct StreamResult {
  int exit_status = -1;    // as above
  bool stopped = false;    // the caller's stop() returned true; the command was ended early
  std::string lost;        // non-empty: the connection or keepalive failed (the reason)
};

struct StreamHandlers {
  std::function<void(std::string_view)> on_stdout;  // raw bytes as they arrive
  std::function<void(std::string_view)> on_stderr;
  std::function<bool()> stop;                       // polled about every 100 ms
};

struct JobFile {
  std::string name;     // plain file name inside the job directory (no '/')
  std::string content;
  unsigned mode = 0600;
};

class NodeShell {
 public:
  virtual ~NodeShell() = default;
  virtual const std::string& name() const = 0;  // for messages
  // Runs `command` (one POSIX shell command line) and collects its output. Throws on connection errors.
  virtual ExecResult run(const std::string& command) = 0;
  // Runs `command`, streaming stdout/stderr, until it ends or stop() says so.
  virtual StreamResult stream(const std::string& command, const StreamHandlers& handlers) = 0;
  // Creates `dir` (mode 0700, with its parents) and writes `files` into it.
  virtual void write_files(const std::string& dir, const std::vector<JobFile>& files) = 0;
  // The absolute directory that holds the job directories (<home>/.moe-studio/jobs on a node).
  virtual std::string jobs_root() = 0;
};

}  // namespace moe::remote
