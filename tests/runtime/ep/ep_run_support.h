#pragma once
// Running the real moe-runtime for the equivalence tests (ep_equivalence_test.cpp,
// placement_equivalence_test.cpp): one process or N ranks on the same global batch, and the
// comparison of two runs. With the default deterministic arithmetic (runtime.deterministic) the
// final checkpoints (rank 0 gathers the experts) hold bit-identical weights under the same Hugging
// Face names, the expert_load counts and capacity drops are identical, and every step's reported
// losses agree within 1e-12: they are double-precision means of the same per-token values, added
// in the layout's order (n ≤ 256 terms: ≤ n·2^-53 ≈ 3e-14 apart). The fast arithmetic
// (runtime.deterministic false: OpenBLAS, float all-reduce) is held to 1e-5 in the losses and 1e-3
// per tensor in the weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "cost_model.h"
#include "hardware_profile.h"
#include "job_spec.h"
#include "safetensors.h"
#include "socket_util.h"

namespace ep_test {

namespace fs = std::filesystem;

// Small enough for 2 shared cores: 20 steps of 8 × 32 tokens, 2 MoE layers of 8 experts.
inline const std::string kBase =
    " --set train.steps=20 --set model.seq_len=32 --set model.n_layers=2 --set train.data.val_fraction=0.002"
    " --set cluster.nodes.0.slots=4 --set train.warmup_steps=5";

struct TrainRun {
  int rc = -1;
  std::vector<nlohmann::json> records;
  fs::path dir;
  std::string err;
  std::vector<nlohmann::json> of(const std::string& type) const {
    std::vector<nlohmann::json> out;
    for (const auto& r : records)
      if (r.value("type", "") == type) out.push_back(r);
    return out;
  }
};

// A free 127.0.0.1 port for a job's master, picked by the kernel as the other multi-process tests
// and `moe run` pick theirs. (A range derived from the pid collided: the flake hunt saw two test
// processes, from two suites running at once, start jobs on the same port.)
inline int next_port() { return moe::rt::comm::free_loopback_port(); }

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// `procs` 1: one process; otherwise --nproc-per-node procs. `env`: variables for the runtime.
inline TrainRun train(const std::string& name, int procs, const std::string& sets, const std::string& env = "") {
  TrainRun r;
  r.dir = fs::temp_directory_path() / ("moe_ep_test_" + std::to_string(getpid())) / name;
  fs::remove_all(r.dir);
  fs::create_directories(r.dir);
  std::string cmd = (env.empty() ? "" : "env " + env + " ") + std::string(MOE_RUNTIME_EXE) + " train tiny-cpu" + kBase + sets;
  if (procs > 1)
    cmd += " --nproc-per-node " + std::to_string(procs) + " --master 127.0.0.1:" + std::to_string(next_port());
  cmd += " --metrics " + (r.dir / "metrics.jsonl").string() + " --checkpoint-dir " + (r.dir / "ck").string() + " 2>" +
         (r.dir / "stderr.txt").string();
  const int status = std::system(cmd.c_str());
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(r.dir / "stderr.txt");
  std::ifstream in(r.dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) r.records.push_back(nlohmann::json::parse(line));
  return r;
}

// The one-process runs, shared by the tests that compare against them.
inline const TrainRun& baseline(const std::string& sets) {
  static std::map<std::string, TrainRun> cache;
  auto it = cache.find(sets);
  if (it == cache.end()) it = cache.emplace(sets, train("one" + std::to_string(cache.size()), 1, sets + " --set train.micro_batch=8")).first;
  return it->second;
}

enum class Arithmetic { deterministic, fast };

inline void expect_same_training(const TrainRun& one, const TrainRun& many, Arithmetic arithmetic = Arithmetic::deterministic) {
  const bool exact = arithmetic == Arithmetic::deterministic;
  const double loss_tolerance = exact ? 1e-12 : 1e-5;
  ASSERT_EQ(one.rc, 0) << one.err;
  ASSERT_EQ(many.rc, 0) << many.err;
  // run_start.params is the whole model's on every layout (tp slices whole, every expert once).
  EXPECT_EQ(one.of("run_start").at(0)["params"], many.of("run_start").at(0)["params"]);
  const auto s1 = one.of("step"), sn = many.of("step");
  ASSERT_EQ(s1.size(), 20u);
  ASSERT_EQ(sn.size(), 20u);
  for (size_t i = 0; i < s1.size(); ++i) {
    for (const char* key : {"loss", "aux_loss", "z_loss"}) {
      const double a = s1[i][key], b = sn[i][key];
      EXPECT_LE(std::abs(a - b), loss_tolerance * std::abs(a)) << key << " at step " << i + 1 << ": " << a << " vs " << b;
    }
    EXPECT_EQ(s1[i]["tokens"], sn[i]["tokens"]);
  }
  // Routing decisions are discrete: the counts (summed over ranks) and drops are identical.
  const auto l1 = one.of("expert_load"), ln = many.of("expert_load");
  ASSERT_EQ(l1.size(), ln.size());
  for (size_t i = 0; i < l1.size(); ++i) {
    EXPECT_EQ(l1[i]["counts"], ln[i]["counts"]) << "step " << l1[i]["step"] << " layer " << l1[i]["layer"];
    EXPECT_EQ(l1[i]["dropped"], ln[i]["dropped"]) << "step " << l1[i]["step"] << " layer " << l1[i]["layer"];
  }
  // The final checkpoints: the same tensors (rank 0 gathered the other ranks' experts).
  const auto w1 = moe::rt::read_safetensors(one.dir / "ck" / "step-00000020" / "model.safetensors");
  const auto wn = moe::rt::read_safetensors(many.dir / "ck" / "step-00000020" / "model.safetensors");
  ASSERT_EQ(w1.size(), wn.size());
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, t] : w1) {
    auto it = wn.find(name);
    ASSERT_NE(it, wn.end()) << name << " missing from the multi-process checkpoint";
    ASSERT_EQ(it->second.shape, t.shape) << name;
    // Per tensor: largest |difference| over largest |value|. (Not per element: AdamW divides by
    // sqrt(v), so an element whose gradient is ~0 moves by up to lr on float-rounding noise.)
    double diff = 0, scale = 0;
    for (size_t j = 0; j < t.data.size(); ++j) {
      diff = std::max(diff, std::abs(double(t.data[j]) - double(it->second.data[j])));
      scale = std::max(scale, std::abs(double(t.data[j])));
    }
    if (diff / scale > worst) worst = diff / scale, worst_name = name;
  }
  if (exact)
    EXPECT_EQ(worst, 0.0) << "largest relative weight difference in " << worst_name << " (expected the same bits)";
  else
    EXPECT_LE(worst, 1e-3) << "largest relative weight difference in " << worst_name;
  const int check = std::system((std::string("python3 ") + CHECK_STREAM + " " + (many.dir / "metrics.jsonl").string() + " >/dev/null").c_str());
  EXPECT_EQ(check, 0) << "check-stream rejected " << many.dir / "metrics.jsonl";
}

inline const std::string kDropless = " --set routing.capacity_factor=0";

// Validation on a layout (every 2 steps of 6 and at the end) against one process: the losses
// within `tolerance` (relative), every byte counted once over the layout's 2 data ranks.
inline void expect_same_validation(const TrainRun& one, const TrainRun& many, double tolerance) {
  ASSERT_EQ(one.rc, 0) << one.err;
  ASSERT_EQ(many.rc, 0) << many.err;
  std::vector<nlohmann::json> v1, vn;
  for (const auto& r : one.of("step"))
    if (r.contains("val_loss")) v1.push_back(r);
  for (const auto& r : many.of("step"))
    if (r.contains("val_loss")) vn.push_back(r);
  v1.push_back(one.of("run_end").at(0));
  vn.push_back(many.of("run_end").at(0));
  ASSERT_EQ(v1.size(), 3u);
  ASSERT_EQ(vn.size(), v1.size());
  for (size_t i = 0; i < v1.size(); ++i) {
    const double a = v1[i]["val_loss"], b = vn[i]["val_loss"];
    EXPECT_LE(std::abs(a - b), tolerance * std::abs(a)) << "validation " << i << ": " << a << " vs " << b;
    ASSERT_EQ(vn[i]["val_rank_bytes"].size(), 2u);
    EXPECT_EQ(vn[i]["val_rank_bytes"][0].get<int64_t>() + vn[i]["val_rank_bytes"][1].get<int64_t>(),
              v1[i]["val_rank_bytes"][0].get<int64_t>());
  }
}

// A run resumed from the step-3 checkpoint of `full` (6 steps): its 3 steps continue `full`'s
// losses within 1e-5 relative.
inline void expect_resumed_losses(const TrainRun& full, const TrainRun& resumed, const std::string& what) {
  const auto f = full.of("step"), r = resumed.of("step");
  ASSERT_EQ(f.size(), 6u);
  ASSERT_EQ(r.size(), 3u);
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i]["step"], f[i + 3]["step"]);
    const double x = r[i]["loss"], y = f[i + 3]["loss"];
    EXPECT_LE(std::abs(x - y), 1e-5 * std::abs(y)) << what << " resume, step " << r[i]["step"];
  }
}

// The cost model's plan of the spec a run recorded in its run_start (its hardware profile).
inline moe::Plan plan_of(const TrainRun& run) {
  const auto start = run.of("run_start");
  EXPECT_EQ(start.size(), 1u);
  const nlohmann::json& recorded = start.at(0)["spec"];
  const moe::JobSpec spec =
      moe::spec_from_json(recorded.is_string() ? nlohmann::json::parse(recorded.get<std::string>()) : recorded);
  return moe::plan_job(spec, moe::find_hardware(moe::builtin_hardware_profiles(), spec.cluster.hardware));
}

}  // namespace ep_test
