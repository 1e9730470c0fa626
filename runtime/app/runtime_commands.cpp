// moe-runtime train / eval / bench: argument parsing and the glue to the trainer, the evaluator
// and the MoE layer benchmark.
#include "runtime_commands.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "cpu_support.h"
#include "cuda_train_command.h"
#include "byte_data.h"
#include "checkpoint.h"
#include "ep_runtime.h"
#include "error.h"
#include "resources.h"
#include "evaluator.h"
#include "gemm.h"
#include "job_spec.h"
#include "launcher.h"
#include "rendezvous.h"
#include "model_state.h"
#include "moe_bench.h"
#include "trainer.h"

namespace moe::rt {

const char* const kMainHelp =
    "usage: moe-runtime COMMAND [ARGS]\n"
    "The MoE Studio training runtime (CPU backend, one process).\n\n"
    "commands:\n"
    "  train SPEC [--set k=v]... [--metrics FILE|-] [--checkpoint-dir DIR] [--resume DIR]\n"
    "  eval --checkpoint DIR (--text STRING | --file PATH)\n"
    "  bench SPEC [--set k=v]... [--tokens N] [--skew S] [--threads T] [--iterations I]\n\n"
    "Run 'moe-runtime COMMAND --help' for a command's options.\n";

namespace {

const char* const kTrainHelp =
    "usage: moe-runtime train SPEC [--set k=v]... [--metrics FILE|-] [--checkpoint-dir DIR] [--resume DIR]\n"
    "Trains the spec's Mixtral-style MoE model on the CPU and writes the metrics stream (JSON Lines,\n"
    "docs/architecture.md 3.3) to stdout or FILE; logs go to stderr.\n\n"
    "  SPEC                 a job spec file, or a preset name from resources/presets (e.g. tiny-cpu)\n"
    "  --set k=v            override a spec field, e.g. --set train.steps=50 (repeatable)\n"
    "  --metrics FILE|-     where the metrics stream goes (default: stdout)\n"
    "  --checkpoint-dir DIR write checkpoints under DIR every runtime.checkpoint_every steps and at\n"
    "                       the end (DIR/step-NNNNNNNN, DIR/latest names the newest)\n"
    "  --resume DIR         continue from a checkpoint (a checkpoint directory or a root with latest)\n"
    "  --nproc-per-node N   rank processes on this node (dp·ep = N × --nnodes; default 1)\n"
    "  --nnodes M --node-rank R --master HOST:PORT\n"
    "                       multi-node: this node's index and rank 0's rendezvous address\n"
    "                       (default 127.0.0.1:29500); --grace S, --comm-timeout S tune the launcher\n"
    "  --job-id ID          the same on every node of one job; the rendezvous refuses another job's\n"
    "                       ranks (default: random on one node, else from --master)\n"
    "  --time-limit S       stop (completed, with a reason) after S seconds of training\n\n"
    "Exit: 0 completed, 1 failed or error, 2 usage, 128+signal when cancelled by SIGINT/SIGTERM.\n";

const char* const kEvalHelp =
    "usage: moe-runtime eval --checkpoint DIR (--text STRING | --file PATH) [--threads T]\n"
    "Prints the mean next-byte cross-entropy of the text in nats as its last line (docs/architecture.md 3.5:\n"
    "bytes are tokens, windows of seq_len + 1 bytes sharing their boundary byte, dropless routing).\n";

const char* const kBenchHelp =
    "usage: moe-runtime bench SPEC [--set k=v]... [--tokens N] [--skew S] [--threads T] [--iterations I]\n"
    "Forward+backward of one MoE layer of the spec on N synthetic tokens (default 4096), routing\n"
    "skewed by a Zipf exponent S (default 0: uniform); prints tokens/s, the expert GEMMs' GFLOP/s\n"
    "beside plain cblas_sgemm in the same run, and the time split by phase.\n";

// A tiny parser: one positional at most, options that take a value, --help.
struct Parsed {
  bool help = false;
  std::vector<std::string> positionals;
  std::map<std::string, std::vector<std::string>> values;
  std::string last(const std::string& k, const std::string& fallback = "") const {
    auto it = values.find(k);
    return it == values.end() ? fallback : it->second.back();
  }
  bool has(const std::string& k) const { return values.count(k) > 0; }
};

Parsed parse(const std::string& command, const std::vector<std::string>& args, const std::vector<std::string>& options) {
  Parsed p;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--help" || a == "-h") {
      p.help = true;
      continue;
    }
    if (a.rfind("--", 0) == 0) {
      std::string value;
      bool inline_value = false;
      if (auto eq = a.find('='); eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        inline_value = true;
      }
      if (std::find(options.begin(), options.end(), a) == options.end())
        throw UsageError{"moe-runtime " + command + ": unknown option " + a};
      if (!inline_value) {
        if (i + 1 >= args.size()) throw UsageError{"moe-runtime " + command + ": " + a + " needs a value"};
        value = args[++i];
      }
      p.values[a].push_back(value);
    } else {
      p.positionals.push_back(a);
    }
  }
  return p;
}

int64_t parse_int(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError{what + ": expected an integer, got '" + text + "'"};
}

double parse_double(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError{what + ": expected a number, got '" + text + "'"};
}

// SPEC is a file, or the name of a preset in resources/presets.
JobSpec load_spec_arg(const std::string& command, const Parsed& p) {
  if (p.positionals.size() != 1)
    throw UsageError{"moe-runtime " + command + ": expected one SPEC argument, got " + std::to_string(p.positionals.size())};
  std::filesystem::path file = p.positionals[0];
  std::error_code ec;
  if (!std::filesystem::exists(file, ec) && file.extension().empty() && file.parent_path().empty()) {
    // Beside the executable first (a deployed bundle), then the source tree: see core/resources.h.
    try {
      const auto preset = preset_path(file.string());
      if (std::filesystem::exists(preset, ec)) file = preset;
    } catch (const Error&) {  // no resources anywhere: load_spec names the missing file
    }
  }
  auto it = p.values.find("--set");
  return load_spec(file, it == p.values.end() ? std::vector<std::string>{} : it->second);
}

}  // namespace

int cmd_train(const std::vector<std::string>& args, const std::atomic<int>* stop_signal) {
  // The launcher's flags (--nproc-per-node, --nnodes, --node-rank, --master, --grace, --comm-timeout, --job-id).
  std::vector<std::string> rest = args;
  comm::LauncherOptions launch;
  take_launcher_flags(rest, launch);
  const Parsed p = parse("train", rest, {"--set", "--metrics", "--checkpoint-dir", "--resume", "--time-limit"});
  if (p.help) {
    std::fputs(kTrainHelp, stdout);
    return 0;
  }
  const JobSpec spec = load_spec_arg("train", p);
  if (spec.runtime.backend == "cuda")  // issue 8: the CUDA path (runtime/app/cuda_train_command.h)
    return run_cuda_train_command(spec, launch.world_size() > 1 || comm::rank_env_from_environment().has_value(),
                                  p.last("--metrics", "-"), p.last("--checkpoint-dir"), p.last("--resume"),
                                  p.has("--time-limit") ? parse_double(p.last("--time-limit"), "--time-limit") : 0.0,
                                  stop_signal);
  const std::optional<comm::RankEnv> rank_env = comm::rank_env_from_environment();
  if (!rank_env && launch.world_size() > 1) {
    // This process is the node's launcher: it starts the ranks (this executable again, with the
    // rank variables set) and supervises them (runtime/comm/launcher.h).
    comm::check_launch_world(launch, spec.parallel.world_size());
    // Refuse a spec the ranks would refuse before starting them: one error line, not one per rank.
    check_supported_by_cpu_runtime(spec, true);
    launch.metrics_path = p.last("--metrics", "-");
    std::vector<std::string> rank_argv{comm::self_executable(), "train"};
    rank_argv.insert(rank_argv.end(), rest.begin(), rest.end());
    return comm::run_launcher(launch, rank_argv);
  }
  std::unique_ptr<ep::EpRuntime> parallel;
  if (rank_env) parallel = std::make_unique<ep::EpRuntime>(spec, *rank_env);
  TrainerOptions options;
  options.parallel = parallel.get();
  options.metrics = p.last("--metrics", "-");
  options.checkpoint_dir = p.last("--checkpoint-dir");
  options.resume = p.last("--resume");
  options.stop_signal = stop_signal;
  if (p.has("--time-limit")) options.time_limit_s = parse_double(p.last("--time-limit"), "--time-limit");
  Trainer trainer(spec, options);
  const TrainResult r = trainer.run();
  std::fprintf(stderr, "moe-runtime: %s after %lld steps%s%s (peak RSS %.1f MiB)\n", r.status.c_str(),
               static_cast<long long>(r.steps), r.reason.empty() ? "" : ": ", r.reason.c_str(),
               static_cast<double>(r.peak_rss_bytes) / (1 << 20));
  if (r.status == "completed") return 0;
  if (r.status == "cancelled") return 128 + (stop_signal ? stop_signal->load() : 0);
  return 1;
}

int cmd_eval(const std::vector<std::string>& args) {
  const Parsed p = parse("eval", args, {"--checkpoint", "--text", "--file", "--threads"});
  if (p.help) {
    std::fputs(kEvalHelp, stdout);
    return 0;
  }
  if (!p.positionals.empty()) throw UsageError{"moe-runtime eval: unexpected argument '" + p.positionals[0] + "'"};
  if (!p.has("--checkpoint")) throw UsageError{"moe-runtime eval: --checkpoint DIR is required"};
  if (p.has("--text") == p.has("--file")) throw UsageError{"moe-runtime eval: give exactly one of --text STRING or --file PATH"};
  const int threads = p.has("--threads") ? static_cast<int>(parse_int(p.last("--threads"), "--threads"))
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  set_gemm_threads(threads);
  Bytes text;
  if (p.has("--text")) {
    const std::string s = p.last("--text");
    text.assign(s.begin(), s.end());
  } else {
    text = read_bytes_file(p.last("--file"));
  }
  if (text.size() < 2) throw Error("eval: the text has " + std::to_string(text.size()) + " bytes; at least 2 are needed");
  const LoadedCheckpoint ck = load_checkpoint(p.last("--checkpoint"), false);
  JobSpec spec = ck.spec;
  spec.parallel = ParallelSpec{};  // eval runs on one process whatever the training layout was
  check_supported_by_cpu_runtime(spec);
  MixtralModel model(spec);
  load_model_weights(ck, model);
  const EvalResult r = evaluate_bytes(model, text.data(), static_cast<int64_t>(text.size()));
  std::fprintf(stderr, "moe-runtime eval: %s, %lld bytes predicted\n", ck.dir.c_str(), static_cast<long long>(r.predicted));
  std::printf("%.9f\n", r.mean_nats);
  return 0;
}

int cmd_bench(const std::vector<std::string>& args) {
  const Parsed p = parse("bench", args, {"--set", "--tokens", "--skew", "--threads", "--iterations"});
  if (p.help) {
    std::fputs(kBenchHelp, stdout);
    return 0;
  }
  const JobSpec spec = load_spec_arg("bench", p);
  const int64_t tokens = parse_int(p.last("--tokens", "4096"), "--tokens");
  const double skew = parse_double(p.last("--skew", "0"), "--skew");
  const int threads = static_cast<int>(parse_int(p.last("--threads", "0"), "--threads"));
  const int iterations = static_cast<int>(parse_int(p.last("--iterations", "3"), "--iterations"));
  if (tokens < 1) throw UsageError{"--tokens: must be at least 1"};
  if (iterations < 1) throw UsageError{"--iterations: must be at least 1"};
  const MoeBenchResult r = run_moe_layer_bench(spec, tokens, skew, threads, iterations);
  std::fputs(r.table().c_str(), stdout);
  return 0;
}

}  // namespace moe::rt
