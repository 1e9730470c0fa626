// --resume continues bit-exactly; eval on a checkpoint equals the training loss on the same bytes;
// eval equals an independent float64 numpy implementation of Hugging Face's MixtralForCausalLM
// (tests/runtime/reference/mixtral_ref.py) to 1e-5 relative; broken checkpoints are refused.
#include <cmath>

#include <gtest/gtest.h>

#include "app_test_util.h"
#include "checkpoint.h"
#include "model.h"
#include "model_state.h"

namespace moe::rt {
namespace {

using test::run_runtime;
using test::TempDir;

double last_line_number(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return std::stod(s.substr(s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1));
}

TEST(Resume, ReproducesTheUninterruptedRunsLossesExactly) {
  TempDir dir;
  // Jitter noise (RNG), bias balancing (biases), grad_accum and warmup/cosine all take part.
  const auto spec = test::write_small_spec(dir / "s.json", {{"routing", {{"jitter", 0.05}, {"bias_balancing", {{"enabled", true}}}}},
                                                            {"runtime", {{"checkpoint_every", 4}}}})
                        .string();
  const auto full = run_runtime({"train", spec, "--checkpoint-dir", (dir / "a").string(), "--metrics", (dir / "full.jsonl").string()});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  ASSERT_TRUE(std::filesystem::exists(dir / "a" / "step-00000004"));
  const auto resumed = run_runtime({"train", spec, "--resume", (dir / "a" / "step-00000004").string(), "--checkpoint-dir",
                                    (dir / "b").string(), "--metrics", (dir / "resumed.jsonl").string()});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto a = test::of_type(test::read_stream(dir / "full.jsonl"), "step");
  const auto b = test::of_type(test::read_stream(dir / "resumed.jsonl"), "step");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(b[i]["step"], a[i + 4]["step"]);
    // Exact: the same doubles, printed the same way.
    EXPECT_EQ(b[i]["loss"].get<double>(), a[i + 4]["loss"].get<double>()) << "step " << b[i]["step"];
    EXPECT_EQ(b[i]["aux_loss"].get<double>(), a[i + 4]["aux_loss"].get<double>());
    EXPECT_EQ(b[i]["grad_norm"].get<double>(), a[i + 4]["grad_norm"].get<double>());
  }
  EXPECT_NE(a[4]["loss"].get<double>(), a[5]["loss"].get<double>());
  // The final weights agree bit for bit.
  EXPECT_EQ(test::read_file(dir / "a" / "step-00000008" / "model.safetensors"),
            test::read_file(dir / "b" / "step-00000008" / "model.safetensors"));
  // A checkpoint of another shape is refused with a one-line error.
  const auto other = run_runtime({"train", spec, "--set", "model.d_model=64", "--resume", (dir / "a").string()});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("differs"), std::string::npos) << other.err;
}

TEST(Eval, AgreesWithTheTrainingLossOnTheSameBytes) {
  TempDir dir;
  // Dropless and noise-free, as eval is: then training's forward computes eval's function.
  const auto spec_file = test::write_small_spec(dir / "s.json", {{"routing", {{"capacity_factor", 0.0}}}, {"train", {{"steps", 3}}}});
  const auto r = run_runtime({"train", spec_file.string(), "--checkpoint-dir", (dir / "ck").string(), "--metrics", (dir / "m.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const LoadedCheckpoint ck = load_checkpoint(dir / "ck", false);
  MixtralModel model(ck.spec);
  load_model_weights(ck, model);
  // One full window (seq_len + 1 bytes) through the training path: training mode, targets.
  std::string text = "ALPHA_BRAVO_CHARLIE!\nmeta kolu.\n1+2=3;";  // 37 bytes
  text.resize(33);
  std::vector<int32_t> tokens(text.begin(), text.end() - 1), targets(text.begin() + 1, text.end());
  std::mt19937_64 rng(1);
  MoeLayerOptions training;
  const ForwardResult f = model.forward(tokens.data(), targets.data(), 1, training, rng);
  const auto e = run_runtime({"eval", "--checkpoint", (dir / "ck").string(), "--text", text});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const double eval = last_line_number(e.out);
  EXPECT_NEAR(eval, f.lm_loss, 1e-6 * f.lm_loss) << "eval " << eval << " training " << f.lm_loss;
  EXPECT_GT(eval, 0.5);
}

// Trains a few steps of `extra`'s model, then compares eval with the numpy float64 reference on
// a text that spans several windows (the last one short).
void compare_with_reference(const nlohmann::json& extra) {
  TempDir dir;
  const auto spec_file = test::write_small_spec(dir / "s.json", extra);
  const auto r = run_runtime({"train", spec_file.string(), "--set", "train.steps=4", "--checkpoint-dir", (dir / "ck").string(),
                              "--metrics", (dir / "m.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string text;
  for (int i = 0; i < 5; ++i) text += "In the beginning God created the heaven and the earth. ALPHA_BRAVO! 12+7=19; ";
  text.resize(150);  // windows of 33 bytes: 4 full and a short one
  const auto e = run_runtime({"eval", "--checkpoint", (dir / "ck").string(), "--text", text});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const std::string cmd = std::string("/usr/bin/python3 ") + MOE_MIXTRAL_REF + " " + (dir / "ck").string() + " --text " +
                          test::shell_quote(text) + " > " + (dir / "ref.txt").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_file(dir / "ref.txt");
  const double ours = last_line_number(e.out), ref = last_line_number(test::read_file(dir / "ref.txt"));
  EXPECT_NEAR(ours, ref, 1e-5 * ref) << "moe-runtime eval " << ours << " numpy float64 " << ref;
  EXPECT_GT(ref, 0.5);
}

TEST(Eval, MatchesTheFloat64MixtralReference) {
  compare_with_reference({});  // Mixtral: softmax top-2, grouped KV heads, untied lm_head
}

TEST(Eval, MatchesTheFloat64ReferenceWithSharedExpertDenseLayerAndTiedEmbeddings) {
  const nlohmann::json moe = {{"top_k", 1}, {"shared_experts", 1}, {"d_shared_expert", 24}, {"first_dense_layers", 1}};
  compare_with_reference({{"model", {{"tie_embeddings", true}, {"d_ff", 40}, {"moe", moe}}},
                          {"routing", {{"aux_loss_coef", 0.0}}}});
}

TEST(Eval, BrokenCheckpointsAreOneLineErrors) {
  TempDir dir;
  const auto spec_file = test::write_small_spec(dir / "s.json", {{"train", {{"steps", 1}}}});
  ASSERT_EQ(run_runtime({"train", spec_file.string(), "--checkpoint-dir", (dir / "ck").string(), "--metrics",
                         (dir / "m.jsonl").string()}).exit_code, 0);
  const auto ckdir = dir / "ck" / "step-00000001";
  const std::string model = test::read_file(ckdir / "model.safetensors");
  test::write_file(ckdir / "model.safetensors", model.substr(0, model.size() / 2));
  auto e = run_runtime({"eval", "--checkpoint", (dir / "ck").string(), "--text", "hello world"});
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_EQ(e.err.find('\n'), e.err.size() - 1) << e.err;
  EXPECT_NE(e.err.find("model.safetensors"), std::string::npos) << e.err;
  EXPECT_NE(e.err.find("tensor "), std::string::npos) << e.err;
  // A checkpoint whose tensors are of a different shape than its config says.
  test::write_file(ckdir / "model.safetensors", model);
  auto config = nlohmann::json::parse(test::read_file(ckdir / "config.json"));
  config["intermediate_size"] = 64;
  test::write_file(ckdir / "config.json", config.dump());
  e = run_runtime({"eval", "--checkpoint", ckdir.string(), "--text", "hello world"});
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_NE(e.err.find("experts.0.w1.weight has shape [48, 32], the model expects [64, 32]"), std::string::npos) << e.err;
}

}  // namespace
}  // namespace moe::rt
