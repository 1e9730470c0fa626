#pragma once
// The subcommands of moe-runtime (docs/architecture.md 3.4). Each takes its arguments (after the
// subcommand name) and returns the process exit code; errors are thrown as moe::Error (one line,
// exit 1) or UsageError (exit 2), and main() prints them.
#include <atomic>
#include <string>
#include <vector>

namespace moe::rt {

struct UsageError {
  std::string message;
};

int cmd_train(const std::vector<std::string>& args, const std::atomic<int>* stop_signal);
int cmd_eval(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);

extern const char* const kMainHelp;

}  // namespace moe::rt
