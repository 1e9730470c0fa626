// A stand-in for moe-runtime in the launcher tests: `comm_test_rank launch [launcher flags] MODE…`
// runs the launcher over itself; with MOE_RANK set it is one rank that joins the job, trains a
// fake model with one all-reduce per step and (rank 0) prints a contract-shaped metrics stream.
//   train STEPS STEP_MS            all ranks finish
//   fail RANK STEP CODE STEPS STEP_MS   rank RANK exits with CODE at STEP (after an error line)
// Every rank writes its pid to $COMM_TEST_DIR/rank<r>.pid after joining, so tests can kill one.
// `launch --metrics FILE …` makes rank 0 write the stream to FILE (MOE_METRICS), as moe-runtime does.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "error.h"
#include "launcher.h"
#include "rendezvous.h"

using namespace moe::rt::comm;

namespace {

int as_rank(const RankEnv& env, const std::vector<std::string>& args) {
  const std::string mode = args.empty() ? "train" : args[0];
  int fail_rank = -1, fail_step = -1, fail_code = 0, steps = 5, step_ms = 10;
  if (mode == "train" && args.size() >= 3) steps = std::stoi(args[1]), step_ms = std::stoi(args[2]);
  if (mode == "fail" && args.size() >= 6) {
    fail_rank = std::stoi(args[1]), fail_step = std::stoi(args[2]), fail_code = std::stoi(args[3]);
    steps = std::stoi(args[4]), step_ms = std::stoi(args[5]);
  }
  auto group = init_process_group(env);
  if (const char* dir = std::getenv("COMM_TEST_DIR")) {
    std::ofstream(std::string(dir) + "/rank" + std::to_string(env.rank) + ".pid") << ::getpid() << "\n";
  }
  std::cerr << "joined" << std::endl;  // the launcher prefixes this on ranks ≠ 0
  auto& world = *group->world;
  world.barrier();  // every pid file exists once rank 0 prints run_start
  std::ofstream metrics_file;
  if (const char* path = std::getenv("MOE_METRICS"); path && std::string(path) != "-" && env.rank == 0) {
    metrics_file.open(path, std::ios::trunc);
    if (!metrics_file) throw moe::Error(std::string("cannot write --metrics ") + path);
  }
  std::ostream& out = metrics_file.is_open() ? static_cast<std::ostream&>(metrics_file) : std::cout;
  if (env.rank == 0) {
    out << R"({"type":"run_start","schema":1,"spec":{},"world_size":)" << env.world_size
              << R"(,"backend":"cpu","started_at":"2026-11-29T00:00:00Z","hosts":["localhost"]})" << std::endl;
  }
  for (int step = 1; step <= steps; ++step) {
    if (env.rank == fail_rank && step == fail_step) {
      std::cerr << "rank " << env.rank << ": injected failure at step " << step << std::endl;
      std::_Exit(fail_code);
    }
    double value = env.rank + 1.0;
    world.all_reduce_sum(&value, 1);
    const double expected = env.world_size * (env.world_size + 1) / 2.0;
    if (value != expected) throw moe::Error("all_reduce gave " + std::to_string(value));
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
    if (env.rank == 0)
      out << R"({"type":"step","step":)" << step << R"(,"loss":)" << value
                << R"(,"aux_loss":0,"z_loss":0,"lr":0.001,"tokens":8,"step_ms":1.0,"tokens_per_s":8.0})" << std::endl;
  }
  world.barrier();
  if (env.rank == 0) out << R"({"type":"run_end","status":"completed","steps":)" << steps << "}" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (auto env = rank_env_from_environment()) return as_rank(*env, args);
    if (args.empty() || args[0] != "launch") {
      std::cerr << "usage: comm_test_rank launch [--nproc-per-node N …] MODE ARGS…\n";
      return 2;
    }
    args.erase(args.begin());
    LauncherOptions options;
    if (args.size() >= 2 && args[0] == "--metrics") {
      options.metrics_path = args[1];
      args.erase(args.begin(), args.begin() + 2);
    }
    take_launcher_flags(args, options);
    std::vector<std::string> rank_argv{self_executable()};
    rank_argv.insert(rank_argv.end(), args.begin(), args.end());
    return run_launcher(options, rank_argv);
  } catch (const std::exception& e) {
    std::cerr << e.what() << std::endl;
    return 1;
  }
}
