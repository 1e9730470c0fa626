// Benchmark: how long the studio waits for a plan after a keystroke — load + validate + plan of a
// spec (default: the DeepSeek-V3 preset, the largest layout). Prints median, p90 and min per
// phase over many iterations. Usage: bench_plan [SPEC] [ITERATIONS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cost_model.h"
#include "error.h"
#include "hardware_profile.h"
#include "job_spec.h"
#include "resources.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string spec_file = argc > 1 ? argv[1] : moe::preset_path("deepseek-v3").string();
    const int iters = argc > 2 ? std::atoi(argv[2]) : 2000;
    if (iters < 1) throw moe::Error("ITERATIONS: must be positive");
    const auto hw_file = moe::resources_dir() / "hardware.json";
    std::vector<double> t_hw, t_load, t_validate, t_plan, t_total;
    double sink = 0;
    for (int i = 0; i < iters; ++i) {
      auto t0 = Clock::now();
      auto profiles = moe::load_hardware_profiles(hw_file);  // uncached: the worst case
      t_hw.push_back(ms_since(t0));
      auto t1 = Clock::now();
      moe::JobSpec spec = moe::load_spec(spec_file);
      t_load.push_back(ms_since(t1));
      auto t2 = Clock::now();
      const moe::HardwareProfile& hw = moe::find_hardware(profiles, spec.cluster.hardware);
      auto diags = moe::validate_spec(spec, &hw);  // includes the memory rule's plan
      t_validate.push_back(ms_since(t2));
      auto t3 = Clock::now();
      moe::Plan plan = moe::plan_job(spec, hw);
      t_plan.push_back(ms_since(t3));
      t_total.push_back(ms_since(t0));
      sink += plan.time.step + double(diags.size());
    }
    std::printf("bench_plan: %s, %d iterations (world size %lld)\n", spec_file.c_str(), iters,
                (long long)moe::load_spec(spec_file).parallel.world_size());
    std::printf("%-44s %10s %10s %10s\n", "phase", "median ms", "p90 ms", "min ms");
    auto row = [](const char* name, const std::vector<double>& v) {
      std::printf("%-44s %10.4f %10.4f %10.4f\n", name, percentile(v, 0.5), percentile(v, 0.9),
                  *std::min_element(v.begin(), v.end()));
    };
    row("read hardware.json", t_hw);
    row("load_spec (read, parse, resolve)", t_load);
    row("validate_spec with hardware (spec rules + memory)", t_validate);
    row("plan_job", t_plan);
    row("total", t_total);
    std::printf("budget 5 ms per keystroke: %s\n", percentile(t_total, 0.5) < 5.0 ? "met" : "MISSED");
    return sink > 0 ? 0 : 1;
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "bench_plan: %s\n", e.what());
    return 1;
  }
}
