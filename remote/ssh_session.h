#pragma once
// One authenticated SSH connection to one node (RAII over ssh_session). Not thread-safe: a session
// belongs to one thread (libssh's rule); the job controller runs one worker thread per node.
#include <libssh/libssh.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "connect_options.h"
#include "hostfile.h"
#include "node_shell.h"

namespace moe::remote {

class SshSession : public NodeShell {
 public:
  // Connects, verifies the host key (known_hosts + policy), authenticates (agent → key files →
  // password). Throws moe::Error naming the host and the reason.
  static std::unique_ptr<SshSession> connect(const HostEntry& host, const ConnectOptions& options);
  ~SshSession() override;
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  const HostEntry& host() const { return host_; }
  const std::string& name() const override { return host_.host; }  // for messages
  ssh_session raw() { return session_; }

  // Runs `command` (one shell command line) and collects its output. Throws on connection errors.
  ExecResult run(const std::string& command) override;
  // Runs `command`, streaming stdout/stderr; sends a keepalive round trip every
  // keepalive_interval_s and reports a lost connection instead of throwing.
  StreamResult stream(const std::string& command, const StreamHandlers& handlers) override;
  // One round trip to the server (opens and closes a channel): false when it did not answer in
  // keepalive_timeout_s or the connection is gone.
  bool keepalive();
  // The remote $HOME (absolute), asked once. Remote paths are built from it so SFTP and shell agree.
  const std::string& home();
  // By SFTP (no shell involved): the directory 0700 with its parents, then each file with its mode.
  void write_files(const std::string& dir, const std::vector<JobFile>& files) override;
  std::string jobs_root() override { return home() + "/.moe-studio/jobs"; }
  // Time of the last successful connect + auth.
  std::chrono::milliseconds connect_time() const { return connect_time_; }
  const ConnectOptions& options() const { return options_; }

 private:
  SshSession(ssh_session s, HostEntry host, ConnectOptions options);
  std::string error_text();  // ssh_get_error for messages

  ssh_session session_;
  HostEntry host_;
  ConnectOptions options_;
  std::string home_;
  std::chrono::milliseconds connect_time_{0};
};

}  // namespace moe::remote
