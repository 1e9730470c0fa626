#pragma once
// The node of a local job: this machine. Commands run as `/bin/sh -c COMMAND` child processes
// (their own process group, stdin /dev/null, no inherited descriptors, killed with this thread's
// process if it dies); job directories live under a directory of the caller's choosing, e.g.
// <store>-jobs beside the run store. The job controller drives it exactly as it drives an SSH node.
#include <string>

#include "node_shell.h"

namespace moe::remote {

class LocalShell : public NodeShell {
 public:
  explicit LocalShell(std::string jobs_root, std::string name = "localhost");
  const std::string& name() const override { return name_; }
  ExecResult run(const std::string& command) override;
  StreamResult stream(const std::string& command, const StreamHandlers& handlers) override;
  void write_files(const std::string& dir, const std::vector<JobFile>& files) override;
  std::string jobs_root() override { return root_; }

 private:
  std::string root_, name_;
};

}  // namespace moe::remote
