// Driver for run_moe_layer_bench (runtime/moe/moe_bench.h): one MoE layer forward+backward on
// synthetic tokens, printed as a table. Without a SPEC it uses the reference shape:
// d_model 1024, d_expert 2048, 8 experts, top-2, dropless softmax routing (Mixtral).
//   moe_layer_bench [SPEC] [--tokens N] [--skew S] [--threads T] [--iterations I] [--set k=v]...
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "error.h"
#include "job_spec.h"
#include "moe_bench.h"

int main(int argc, char** argv) {
  try {
    std::string spec_path;
    std::vector<std::string> overrides;
    long long tokens = 4096;
    double skew = 0.0;
    int threads = 2, iterations = 3;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw moe::Error(arg + ": missing value");
        return argv[++i];
      };
      if (arg == "--tokens") tokens = std::stoll(value());
      else if (arg == "--skew") skew = std::stod(value());
      else if (arg == "--threads") threads = std::stoi(value());
      else if (arg == "--iterations") iterations = std::stoi(value());
      else if (arg == "--set") overrides.push_back(value());
      else if (arg == "--help" || arg == "-h") {
        std::printf("usage: moe_layer_bench [SPEC] [--tokens N] [--skew S] [--threads T] [--iterations I] [--set k=v]...\n");
        return 0;
      } else if (!arg.empty() && arg[0] != '-' && spec_path.empty()) spec_path = arg;
      else throw moe::Error("unknown argument '" + arg + "'");
    }
    moe::JobSpec spec;
    if (spec_path.empty()) {
      std::vector<std::string> all{"model.d_model=1024", "model.moe.d_expert=2048", "model.moe.num_experts=8",
                                   "model.moe.top_k=2", "routing.capacity_factor=0"};
      all.insert(all.end(), overrides.begin(), overrides.end());
      spec = moe::parse_spec("{\"schema\": 1}", all, "<bench default>");
    } else {
      spec = moe::load_spec(spec_path, overrides);
    }
    const moe::rt::MoeBenchResult r = moe::rt::run_moe_layer_bench(spec, tokens, skew, threads, iterations);
    std::fputs(r.table().c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe_layer_bench: %s\n", e.what());
    return 1;
  }
}
