// A stand-in for `moe-runtime train SPEC [--set k=v]…` in tests of `moe run`: it resolves the spec
// like the real runtime, then writes a contract-valid metrics stream to stdout (synthetic numbers,
// the spec's layers, experts and steps). SIGINT ends it with run_end "cancelled" and exit code 130.
// Environment: FAKE_STEP_MS (sleep per step), FAKE_FAIL_AFTER (exit 3 after N steps, no run_end).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.h"
#include "job_spec.h"
#include "synthetic_stream.h"

namespace {

volatile sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }

void out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2 || args[0] != "train") {
    std::fprintf(stderr, "usage: store_fake_runtime train SPEC [--set k=v]…\n");
    return 2;
  }
  std::vector<std::string> overrides;
  for (size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--set" && i + 1 < args.size()) overrides.push_back(args[++i]);
  }
  try {
    moe::JobSpec spec = moe::load_spec(args[1], overrides);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, nullptr);
    moe::store::SyntheticShape shape;
    shape.steps = spec.train.steps;
    shape.layers = spec.model.moe_layers();
    shape.experts = spec.model.moe.num_experts;
    shape.top_k = spec.model.moe.top_k;
    shape.ranks = spec.parallel.world_size();
    shape.tokens = spec.train.micro_batch * spec.model.seq_len;
    const char* step_ms = std::getenv("FAKE_STEP_MS");
    const char* fail_after = std::getenv("FAKE_FAIL_AFTER");
    nlohmann::json start = {{"type", "run_start"}, {"schema", 1}, {"spec", moe::spec_to_json(spec)},
                            {"world_size", spec.parallel.world_size()}, {"backend", spec.runtime.backend},
                            {"started_at", "2026-11-29T12:00:00Z"}, {"hosts", {"localhost"}}};
    out(start.dump() + "\n");
    std::fprintf(stderr, "fake runtime: %lld steps\n", static_cast<long long>(shape.steps));
    for (int64_t s = 1; s <= shape.steps; ++s) {
      if (g_interrupted) {
        out(moe::store::synthetic_run_end(moe::store::SyntheticShape{.steps = s - 1}, "cancelled"));
        return 130;
      }
      if (fail_after && s > std::atoll(fail_after)) {
        std::fprintf(stderr, "fake runtime: rank 1 lost\n");
        return 3;
      }
      out(moe::store::synthetic_step(shape, s));
      if (step_ms) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(step_ms)));
    }
    out(moe::store::synthetic_run_end(shape, "completed"));
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "store_fake_runtime: %s\n", e.what());
    return 1;
  }
  return 0;
}
