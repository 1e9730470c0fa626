// moe-runtime: the training runtime's executable. Dispatches to train / eval / bench and turns
// errors into one line on stderr and a non-zero exit code.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include "runtime_commands.h"
#include "error.h"
#include "gemm.h"

namespace {

std::atomic<int> g_stop{0};

void on_signal(int signal) { g_stop.store(signal); }

void install_signal_handlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// OpenBLAS reads OPENBLAS_CORETYPE only when it loads; on CPUs it does not know it falls back to
// slow SSE3 kernels. Set the right core type and start again, before any work (gemm.h).
void use_fast_blas_kernels(char** argv) {
  if (const char* core = moe::rt::blas_coretype_override()) {
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then run with the slow kernels
  }
}

}  // namespace

int main(int argc, char** argv) {
  use_fast_blas_kernels(argv);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(moe::rt::kMainHelp, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "train") {
      install_signal_handlers();
      return moe::rt::cmd_train(args, &g_stop);
    }
    if (command == "eval") return moe::rt::cmd_eval(args);
    if (command == "bench") return moe::rt::cmd_bench(args);
    std::fprintf(stderr, "moe-runtime: unknown command '%s' (train, eval, bench; see moe-runtime --help)\n", command.c_str());
    return 2;
  } catch (const moe::rt::UsageError& e) {
    std::fprintf(stderr, "%s (see moe-runtime %s --help)\n", e.message.c_str(), command.c_str());
    return 2;
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "moe-runtime %s: %s\n", command.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe-runtime %s: internal error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
