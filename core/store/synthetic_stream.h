#pragma once
// A deterministic, contract-valid metrics stream (docs/architecture.md 3.3) for tests, benchmarks and
// the stand-in runtime: per step, expert_load for every layer (skewed counts with some drops),
// optional a2a records, and a step record; run_start first, run_end last when asked.
#include <cstdint>
#include <string>

namespace moe::store {

struct SyntheticShape {
  int64_t steps = 10;
  int64_t layers = 4;
  int64_t experts = 8;
  int64_t ranks = 2;      // a2a arrays; 0: no a2a records
  int64_t tokens = 4096;  // tokens per step (each chooses top_k experts)
  int64_t top_k = 2;
  uint64_t seed = 1;
  bool run_start = true;
  bool run_end = true;
  std::string name = "synthetic";
};

std::string synthetic_run_start(const SyntheticShape& s);
// The records of one step (1-based), each line ending in '\n'.
std::string synthetic_step(const SyntheticShape& s, int64_t step);
std::string synthetic_run_end(const SyntheticShape& s, const std::string& status = "completed");
std::string synthetic_stream(const SyntheticShape& s);

}  // namespace moe::store
