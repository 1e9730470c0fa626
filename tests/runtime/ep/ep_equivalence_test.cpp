// Expert parallelism proven equal to one process (issues 4, 12): the real moe-runtime launches N
// rank processes (ep, dp × ep) and trains tiny-cpu (shrunk for CI) on the same global batch and
// seed as one process with micro_batch × dp × ep (ep_run_support.h says what "equal" means).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "ep_run_support.h"
#include "safetensors.h"

namespace fs = std::filesystem;

namespace {

using namespace ep_test;

TEST(EpEquivalence, FourRanksEp4MatchOneProcessDropless) {
  const TrainRun many = train("ep4", 4, kDropless + " --set parallel.ep=4 --set train.micro_batch=2");
  expect_same_training(baseline(kDropless), many);
  // One a2a record per MoE layer × phase × pass per step, every rank's figures.
  const auto a2a = many.of("a2a");
  ASSERT_EQ(a2a.size(), 20u * 2 * 4);
  for (const auto& r : a2a) {
    ASSERT_EQ(r["rank_us"].size(), 4u);
    ASSERT_EQ(r["rank_bytes"].size(), 4u);
    int64_t total = 0;
    for (const auto& b : r["rank_bytes"]) total += b.get<int64_t>();
    EXPECT_GT(total, 0);
    const int64_t split = static_cast<int64_t>(r["intra_bytes"]) + static_cast<int64_t>(r["inter_bytes"]);
    EXPECT_EQ(split, total);
    // dispatch/fwd says how much of its time was the counts exchange that opens it (part of rank_us).
    const bool opens = r["phase"] == "dispatch" && r["pass"] == "fwd";
    ASSERT_EQ(r.contains("rank_counts_us"), opens);
    if (opens)
      for (size_t i = 0; i < 4; ++i) {
        EXPECT_GT(r["rank_counts_us"][i].get<double>(), 0.0);
        EXPECT_LE(r["rank_counts_us"][i].get<double>(), r["rank_us"][i].get<double>());
      }
  }
}

TEST(EpEquivalence, Dp2Ep2MatchOneProcessDropless) {
  const TrainRun many = train("dp2ep2", 4, kDropless + " --set parallel.ep=2 --set parallel.dp=2 --set train.micro_batch=2");
  expect_same_training(baseline(kDropless), many);
}

TEST(EpEquivalence, CapacityModeDropsAreGlobalAndIdentical) {
  const std::string cap = " --set routing.capacity_factor=1.0";
  const TrainRun many = train("ep4cap", 4, cap + " --set parallel.ep=4 --set train.micro_batch=2");
  const TrainRun& one = baseline(cap);
  expect_same_training(one, many);
  int64_t dropped = 0;  // the test means something only if the limit bit
  for (const auto& r : one.of("expert_load"))
    for (const auto& d : r["dropped"]) dropped += d.get<int64_t>();
  EXPECT_GT(dropped, 0);
}

TEST(EpEquivalence, ProbabilityDropPolicyDp2Ep2) {
  const std::string cap = " --set routing.capacity_factor=1.0 --set routing.drop_policy=probability";
  const TrainRun many = train("dp2ep2prob", 4, cap + " --set parallel.ep=2 --set parallel.dp=2 --set train.micro_batch=2");
  expect_same_training(baseline(cap), many);
}

// Expert choice: each expert takes its top-C tokens among all the group's tokens (scores
// all-gathered, the one-process selection on the concatenated batch), so ep 4 and dp 2 × ep 2
// train exactly as one process; the counts are C per expert in both.
TEST(EpEquivalence, ExpertChoiceMatchesOneProcess) {
  const std::string ec = " --set routing.type=expert_choice --set routing.capacity_factor=1.0";
  const TrainRun& one = baseline(ec);
  expect_same_training(one, train("ep4ec", 4, ec + " --set parallel.ep=4 --set train.micro_batch=2"));
  expect_same_training(one, train("dp2ep2ec", 4, ec + " --set parallel.ep=2 --set parallel.dp=2 --set train.micro_batch=2"));
}

// The fast arithmetic (OpenBLAS, float gradient all-reduce) agrees within rounding in the stable
// modes (token choice, dropless).
TEST(EpEquivalence, FastArithmeticMatchesWithinRounding) {
  const std::string fast = kDropless + " --set runtime.deterministic=false";
  expect_same_training(baseline(fast), train("ep4fast", 4, fast + " --set parallel.ep=4 --set train.micro_batch=2"),
                       Arithmetic::fast);
}

// Deterministic arithmetic does not use the BLAS: the same bits under any OpenBLAS kernel set and
// with any vector width of the fixed-order GEMM (the kernels the finding of 2026-12-02 saw split
// expert choice apart: Cooperlake, Haswell, Prescott).
TEST(EpEquivalence, TheSameBitsUnderEveryBlasKernelAndVectorWidth) {
  const std::string ec = " --set routing.type=expert_choice --set routing.capacity_factor=1.0";
  const TrainRun& one = baseline(ec);
  const std::pair<const char*, const char*> variants[] = {
      {"prescott-scalar", "OPENBLAS_CORETYPE=Prescott MOE_ORDERED_GEMM_ISA=scalar"},
      {"haswell-avx2", "OPENBLAS_CORETYPE=Haswell MOE_ORDERED_GEMM_ISA=avx2"}};
  for (const auto& [name, env] : variants) {
    const TrainRun other = train(name, 1, ec + " --set train.micro_batch=8", env);
    expect_same_training(one, other);
    // gemm_backend names the ordered GEMM's kernel in run_start (a CPU without it falls back).
    const auto start = other.of("run_start");
    ASSERT_EQ(start.size(), 1u);
    EXPECT_NE(start[0].value("gemm", std::string()).find("ordered GEMM"), std::string::npos) << start[0].dump();
  }
}

// Router jitter: the noise is keyed by (one draw of the model's rng per layer call, global token
// index), so 4 ranks draw exactly what one process draws for the same batch.
TEST(EpEquivalence, JitterEp4MatchesOneProcess) {
  const std::string jitter = kDropless + " --set routing.jitter=0.1";
  const TrainRun many = train("ep4jitter", 4, jitter + " --set parallel.ep=4 --set train.micro_batch=2");
  const TrainRun& one = baseline(jitter);
  expect_same_training(one, many);
  // The noise is really on: the one-process losses differ from the run without jitter.
  const auto a = one.of("step"), b = baseline(kDropless).of("step");
  ASSERT_EQ(a.size(), b.size());
  double differs = 0;
  for (size_t i = 0; i < a.size(); ++i) differs = std::max(differs, std::abs(a[i]["loss"].get<double>() - b[i]["loss"].get<double>()));
  EXPECT_GT(differs, 1e-6);
}

// Validation split over the ranks (train.eval_every and the final val_loss): every dp·ep rank
// evaluates its slice of each batch of the one-process batching (micro_batch·dp·ep windows), the
// ranks sum (nats, bytes), so the mean is one process's. The validation split's windows are chosen
// so the last full-length batch is partial (some ranks get no window of it) and a short tail
// window follows (one rank evaluates it, the others run zero sequences). `val_rank_bytes` shows
// each rank's share: every byte counted once, and no rank evaluating much more than 1/N.
const std::string kValidation = " --set train.steps=6 --set train.eval_every=2";

void expect_same_validation(const TrainRun& one, const TrainRun& many, size_t ranks, int64_t slice_bytes) {
  ASSERT_EQ(one.rc, 0) << one.err;
  ASSERT_EQ(many.rc, 0) << many.err;
  std::vector<nlohmann::json> v1, vn;  // the step records with a validation, then the run_end
  for (const auto& r : one.of("step"))
    if (r.contains("val_loss")) v1.push_back(r);
  for (const auto& r : many.of("step"))
    if (r.contains("val_loss")) vn.push_back(r);
  ASSERT_EQ(v1.size(), 2u);  // steps 2 and 4 (step 6, the last, has the final validation)
  ASSERT_EQ(vn.size(), v1.size());
  ASSERT_EQ(one.of("run_end").size(), 1u);
  ASSERT_EQ(many.of("run_end").size(), 1u);
  v1.push_back(one.of("run_end")[0]);
  vn.push_back(many.of("run_end")[0]);
  for (size_t i = 0; i < v1.size(); ++i) {
    const std::string what = v1[i]["type"] == "run_end" ? "final validation" : "validation at step " + v1[i]["step"].dump();
    ASSERT_TRUE(vn[i].contains("val_loss")) << what;
    const double a = v1[i]["val_loss"], b = vn[i]["val_loss"];
    EXPECT_LE(std::abs(a - b), 1e-6 * std::abs(a)) << what << ": " << a << " vs " << b;
    std::printf("%s: relative difference %.3g\n", what.c_str(), std::abs(a - b) / std::abs(a));
    // One process predicts every byte but the first; the ranks' shares add up to exactly that.
    ASSERT_EQ(v1[i]["val_rank_bytes"].size(), 1u) << what;
    ASSERT_EQ(vn[i]["val_rank_bytes"].size(), ranks) << what;
    const int64_t total = v1[i]["val_rank_bytes"][0];
    int64_t sum = 0;
    for (const auto& x : vn[i]["val_rank_bytes"]) {
      const int64_t mine = x;
      sum += mine;
      // A rank's share is 1/N of the bytes, give or take its slice of the partial batch and the
      // tail window (< one slice + one window).
      EXPECT_LE(std::abs(double(mine) - double(total) / double(ranks)), double(slice_bytes)) << what << ": " << x;
    }
    EXPECT_EQ(sum, total) << what;
  }
  const int check = std::system((std::string("python3 ") + CHECK_STREAM + " " + (many.dir / "metrics.jsonl").string() + " >/dev/null").c_str());
  EXPECT_EQ(check, 0) << "check-stream rejected " << many.dir / "metrics.jsonl";
}

// Per rank and batch: micro_batch (2) windows of seq_len (32) bytes, plus one tail window.
constexpr int64_t kSliceBytes = 2 * 32 + 32;

// The default validation split (8275 bytes): 258 full windows = 32 batches of 8 and one of 2 (rank
// 0 takes both), then a 19-byte window: 34 batches, not a multiple of the 4 ranks.
TEST(EpValidation, SplitOverEp4MatchesOneProcess) {
  const std::string sets = kDropless + kValidation;
  const TrainRun one = train("val_one", 1, sets + " --set train.micro_batch=8");
  const TrainRun many = train("val_ep4", 4, sets + " --set parallel.ep=4 --set train.micro_batch=2");
  expect_same_validation(one, many, 4, kSliceBytes);
  // The a2a records hold their step's exchanges only, not the validation's before them: in dispatch
  // forward (and combine backward) a rank sends at most its micro-batch's tokens × top_k rows of
  // d_model floats.
  ASSERT_EQ(many.of("run_start").size(), 1u);
  const nlohmann::json model = many.of("run_start")[0]["spec"]["model"];
  const int64_t most = 2 * model["seq_len"].get<int64_t>() * model["moe"]["top_k"].get<int64_t>() *
                       model["d_model"].get<int64_t>() * int64_t(sizeof(float));
  const auto a2a = many.of("a2a");
  ASSERT_FALSE(a2a.empty());
  for (const auto& r : a2a) {
    if ((r["phase"] == "dispatch") != (r["pass"] == "fwd")) continue;
    for (const auto& b : r["rank_bytes"]) EXPECT_LE(b.get<int64_t>(), most) << "step " << r["step"] << " " << r["phase"];
  }
}

// dp 2 × ep 2: the sum runs over all 4 ranks (both EP groups) once. 8358 validation bytes: 261 full
// windows = 32 batches of 8 and one of 5 (slices 2, 2, 1, 0), then a 6-byte window.
TEST(EpValidation, SplitOverDp2Ep2MatchesOneProcess) {
  const std::string sets = kDropless + kValidation + " --set train.data.val_fraction=0.00202";
  const TrainRun one = train("val_one_dp", 1, sets + " --set train.micro_batch=8");
  const TrainRun many = train("val_dp2ep2", 4, sets + " --set parallel.ep=2 --set parallel.dp=2 --set train.micro_batch=2");
  expect_same_validation(one, many, 4, kSliceBytes);
}

// Expert choice in validation: each expert's top-C is taken over the whole one-process batch (the
// scores of the 4 slices all-gathered), so the validation loss is one process's. lr ≈ 0 keeps both
// runs' weights identical: top-C is discrete, and with lr 3e-3 the training's ~1e-8 weight drift
// flipped a selection by step 6 (final val_loss 1.4e-6 apart) — a property of training, not of
// the split validation this test is about.
TEST(EpValidation, ExpertChoiceSplitOverEp4MatchesOneProcess) {
  const std::string sets = " --set routing.type=expert_choice --set routing.capacity_factor=1.0 --set train.lr=1e-12" + kValidation;
  const TrainRun one = train("val_one_ec", 1, sets + " --set train.micro_batch=8");
  const TrainRun many = train("val_ep4_ec", 4, sets + " --set parallel.ep=4 --set train.micro_batch=2");
  expect_same_validation(one, many, 4, kSliceBytes);
}

// Hierarchical all-to-all on 2 virtual nodes of 2 ranks: the same training as one process and as
// the flat exchange; a token crosses to a node once (fewer inter-node bytes than the flat
// exchange's one row per copy), and the forwarding inside the nodes adds intra-node bytes.
TEST(EpEquivalence, HierarchicalOnOffTwoVirtualNodes) {
  const std::string nodes = kDropless + " --set parallel.ep=4 --set train.micro_batch=2 --set parallel.gpus_per_node=2";
  const TrainRun flat = train("flat2nodes", 4, nodes + " --set parallel.hierarchical_a2a=false");
  const TrainRun hier = train("hier2nodes", 4, nodes + " --set parallel.hierarchical_a2a=true");
  expect_same_training(baseline(kDropless), hier);
  expect_same_training(flat, hier);
  const auto a = flat.of("a2a"), b = hier.of("a2a");
  ASSERT_EQ(a.size(), b.size());
  // Deduplication: a token crosses to a node once, however many of its experts live there, so
  // no record's inter-node bytes exceed the flat exchange's and with top-2 the total is smaller;
  // the forwarding inside the destination node adds intra-node bytes.
  int64_t flat_intra = 0, hier_intra = 0, flat_inter = 0, inter = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_FALSE(a[i].contains("rank_meta_bytes")) << "record " << i;  // the flat exchange sends none
    if (b[i]["phase"] == "dispatch" && b[i]["pass"] == "fwd") {
      EXPECT_TRUE(b[i].contains("rank_meta_bytes")) << "record " << i;
    }
    EXPECT_LE(b[i]["inter_bytes"].get<int64_t>(), a[i]["inter_bytes"].get<int64_t>()) << "record " << i;
    flat_intra += static_cast<int64_t>(a[i]["intra_bytes"]);
    hier_intra += static_cast<int64_t>(b[i]["intra_bytes"]);
    flat_inter += static_cast<int64_t>(a[i]["inter_bytes"]);
    inter += static_cast<int64_t>(b[i]["inter_bytes"]);
  }
  EXPECT_GT(inter, 0);
  EXPECT_LT(inter, flat_inter);
  EXPECT_GT(hier_intra, flat_intra);
  std::printf("inter-node bytes over the run: flat %lld, hierarchical %lld (ratio %.3f)\n",
              static_cast<long long>(flat_inter), static_cast<long long>(inter), double(flat_inter) / double(inter));
}

// The global rank `rank` among the launcher's children (MOE_RANK in its environment), or -1.
pid_t find_rank(pid_t launcher, int rank) {
  DIR* dir = opendir("/proc");
  if (!dir) return -1;
  pid_t found = -1;
  while (dirent* e = readdir(dir)) {
    const pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2 || ppid != launcher) continue;
    std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
    std::replace(env.begin(), env.end(), '\0', '\n');
    if (env.find("\nMOE_RANK=" + std::to_string(rank) + "\n") != std::string::npos || env.rfind("MOE_RANK=" + std::to_string(rank) + "\n", 0) == 0)
      found = pid;
  }
  closedir(dir);
  return found;
}

// kill -9 of one training rank mid-run ends the whole job within 10 s, and the run_end record
// says failed and names the rank and the signal.
// A spec the runtime cannot run is refused by the launcher before any rank starts: one error line
// naming the field (not one per rank), exit status 1.
TEST(EpFaults, AnInvalidSpecIsRefusedOnceBeforeTheRanksStart) {
  const TrainRun r = train("invalid", 4, kDropless + " --set parallel.ep=4 --set train.micro_batch=2 --set cluster.nodes.0.slots=1");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err.find("[rank"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("exceeds the cluster's 1 slots"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(EpFaults, KillNineOfATrainingRankEndsTheJob) {
  const fs::path dir = fs::temp_directory_path() / ("moe_ep_test_" + std::to_string(getpid())) / "kill9";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path metrics = dir / "metrics.jsonl";
  const std::string cmd = std::string(MOE_RUNTIME_EXE) + " train tiny-cpu" + kBase + kDropless +
                          " --set train.steps=100000 --set parallel.ep=4 --set train.micro_batch=2 --nproc-per-node 4"
                          " --master 127.0.0.1:" + std::to_string(next_port()) + " --metrics " + metrics.string() +
                          " 2>" + (dir / "stderr.txt").string();
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the first step record (training under way on every rank).
  const auto t0 = std::chrono::steady_clock::now();
  while (read_file(metrics).find("\"type\":\"step\"") == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(120)) << read_file(dir / "stderr.txt");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const pid_t victim = find_rank(launcher, 2);
  ASSERT_GT(victim, 0) << "rank 2 not found among the launcher's children";
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  int status = 0;
  while (waitpid(launcher, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - killed > std::chrono::seconds(30)) {
      kill(launcher, SIGKILL);
      waitpid(launcher, &status, 0);
      FAIL() << "the job did not end within 30 s of kill -9";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  EXPECT_LE(seconds, 10.0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  nlohmann::json end;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && nlohmann::json::parse(line).value("type", "") == "run_end") end = nlohmann::json::parse(line);
  ASSERT_FALSE(end.is_null()) << "no run_end record";
  EXPECT_EQ(end["status"], "failed");
  const std::string reason = end.value("reason", "");
  EXPECT_NE(reason.find("rank 2"), std::string::npos) << reason;
  EXPECT_NE(reason.find("signal 9"), std::string::npos) << reason;
  // Every other rank is gone too.
  for (int r : {0, 1, 3}) EXPECT_EQ(find_rank(launcher, r), -1) << "rank " << r << " survived";
}

// Overlap: 4 chunks, each chunk's experts computed while the next chunk's rows are in flight on
// the comm thread — the same training as one process; the records carry the exposed (waited) time.
TEST(EpEquivalence, OverlapFourChunksMatchesOneProcess) {
  const TrainRun many = train("overlap4", 4, kDropless + " --set parallel.ep=4 --set train.micro_batch=2 --set parallel.overlap_chunks=4");
  expect_same_training(baseline(kDropless), many);
  double us = 0, exposed = 0;
  for (const auto& r : many.of("a2a")) {
    ASSERT_EQ(r["rank_exposed_us"].size(), 4u);
    for (size_t i = 0; i < 4; ++i) us += r["rank_us"][i].get<double>(), exposed += r["rank_exposed_us"][i].get<double>();
  }
  EXPECT_GT(us, 0);
  std::printf("overlap 4 chunks: a2a %.1f ms over all ranks, %.1f ms waited (%.0f%% hidden)\n", us / 1e3, exposed / 1e3,
              100.0 * (1.0 - exposed / us));
}

// Hierarchical all-to-all with overlap (2 virtual nodes of 2 ranks, 4 token-range chunks per rank):
// the same training as one process; the records carry the routing metadata (hierarchical) and the
// exposed time (overlap).
TEST(EpEquivalence, HierarchicalOverlapFourChunksTwoVirtualNodes) {
  const TrainRun many = train("hier_overlap4", 4, kDropless + " --set parallel.ep=4 --set train.micro_batch=2 --set parallel.gpus_per_node=2"
                                                   " --set parallel.hierarchical_a2a=true --set parallel.overlap_chunks=4");
  expect_same_training(baseline(kDropless), many);
  double us = 0, exposed = 0;
  int64_t inter = 0;
  for (const auto& r : many.of("a2a")) {
    ASSERT_EQ(r["rank_exposed_us"].size(), 4u);
    if (r["phase"] == "dispatch" && r["pass"] == "fwd") {
      EXPECT_TRUE(r.contains("rank_meta_bytes"));
    }
    for (size_t i = 0; i < 4; ++i) us += r["rank_us"][i].get<double>(), exposed += r["rank_exposed_us"][i].get<double>();
    inter += r["inter_bytes"].get<int64_t>();
  }
  EXPECT_GT(us, 0);
  EXPECT_GT(inter, 0);
  std::printf("hierarchical + overlap 4 chunks: a2a %.1f ms over all ranks, %.1f ms waited (%.0f%% hidden), inter-node bytes %lld\n",
              us / 1e3, exposed / 1e3, 100.0 * (1.0 - exposed / us), static_cast<long long>(inter));
}

// Capacity mode through the hierarchical exchange with overlap chunks: only kept copies travel,
// deduplicated per (token, node) inside each token-range chunk; losses, weights and the dropped
// counts are one process's.
TEST(EpEquivalence, HierarchicalOverlapCapacityMatchesOneProcess) {
  const std::string cap = " --set routing.capacity_factor=1.0";
  const TrainRun many = train("hier_overlap_cap", 4, cap + " --set parallel.ep=4 --set train.micro_batch=2 --set parallel.gpus_per_node=2"
                                                          " --set parallel.hierarchical_a2a=true --set parallel.overlap_chunks=4");
  expect_same_training(baseline(cap), many);
}

// --resume with 4 ranks continues bit-exactly (every rank reads the gathered checkpoint and keeps
// its own experts and moments), and the same checkpoint resumes in one process too.
TEST(EpEquivalence, ResumeFromGatheredCheckpoint) {
  // 6 steps, checkpoints at 3 and 6 (the newest two are kept).
  const std::string sets = kDropless + " --set runtime.checkpoint_every=3 --set train.steps=6";
  const std::string ep4 = " --set parallel.ep=4 --set train.micro_batch=2";
  const TrainRun full = train("resume_full", 4, sets + ep4);
  ASSERT_EQ(full.rc, 0) << full.err;
  const std::string from = " --resume " + (full.dir / "ck" / "step-00000003").string();
  const TrainRun again = train("resume_ep4", 4, sets + ep4 + from);
  const TrainRun one = train("resume_one", 1, sets + " --set train.micro_batch=8" + from);
  ASSERT_EQ(again.rc, 0) << again.err;
  ASSERT_EQ(one.rc, 0) << one.err;
  const auto f = full.of("step"), a = again.of("step"), o = one.of("step");
  ASSERT_EQ(f.size(), 6u);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(o.size(), 3u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["step"], f[i + 3]["step"]);
    EXPECT_EQ(a[i]["loss"].get<double>(), f[i + 3]["loss"].get<double>()) << "step " << a[i]["step"];
    const double x = o[i]["loss"], y = f[i + 3]["loss"];
    EXPECT_LE(std::abs(x - y), 1e-5 * std::abs(y)) << "one-process resume, step " << o[i]["step"];
  }
}

// Keeps the runs' directories only when something failed (to look at).
class RemoveRunsOnSuccess : public ::testing::Environment {
 public:
  void TearDown() override {
    if (::testing::UnitTest::GetInstance()->Passed())
      fs::remove_all(fs::temp_directory_path() / ("moe_ep_test_" + std::to_string(getpid())));
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new RemoveRunsOnSuccess);

}  // namespace
