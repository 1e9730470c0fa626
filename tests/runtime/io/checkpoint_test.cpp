// Checkpoint directories: contents in Hugging Face form, atomic publication through `latest`,
// pruning, and one-line errors for broken checkpoints.
#include <gtest/gtest.h>

#include "checkpoint.h"
#include "hf_config.h"
#include "test_util.h"

namespace moe::rt {
namespace {

using test::expect_error;
using test::TempDir;

CheckpointData sample(std::vector<float>& w, std::vector<float>& m) {
  CheckpointData d;
  d.weights = {{"model.embed_tokens.weight", {2, 2}, w.data()}};
  d.optimizer = {{"exp_avg.model.embed_tokens.weight", {2, 2}, m.data()}};
  d.trainer_state = {{"data_position", 17}, {"rng", "1 2 3"}};
  return d;
}

TEST(Checkpoint, SaveLoadRoundTripWithHuggingFaceConfig) {
  TempDir dir;
  JobSpec spec;
  spec.model.d_model = 64;
  spec.model.moe.d_expert = 96;
  spec.model.moe.num_experts = 4;
  spec.model.moe.top_k = 1;
  spec.routing.aux_loss_coef = 0.02;
  std::vector<float> w{1, 2, 3, 4}, m{5, 6, 7, 8};
  const auto path = save_checkpoint(dir.path(), 12, spec, sample(w, m));
  EXPECT_EQ(path, dir / "step-00000012");
  EXPECT_EQ(test::read_file(dir / "latest"), "step-00000012\n");

  const LoadedCheckpoint ck = load_checkpoint(dir.path(), true);  // through `latest`
  EXPECT_EQ(ck.dir, path);
  EXPECT_EQ(ck.weights.at("model.embed_tokens.weight").data, w);
  EXPECT_EQ(ck.optimizer.at("exp_avg.model.embed_tokens.weight").data, m);
  EXPECT_EQ(ck.trainer_state["step"], 12);
  EXPECT_EQ(ck.trainer_state["data_position"], 17);
  EXPECT_EQ(ck.spec.model.d_model, 64);
  EXPECT_EQ(ck.spec.model.moe.top_k, 1);
  EXPECT_DOUBLE_EQ(ck.spec.routing.aux_loss_coef, 0.02);
  EXPECT_EQ(ck.config["architectures"][0], "MixtralForCausalLM");
  EXPECT_EQ(ck.config["hidden_size"], 64);
  EXPECT_EQ(ck.config["intermediate_size"], 96);
  EXPECT_EQ(ck.config["num_local_experts"], 4);
  EXPECT_EQ(ck.config["num_experts_per_tok"], 1);
  EXPECT_EQ(ck.config["tie_word_embeddings"], false);
  EXPECT_FALSE(ck.config.contains("n_shared_experts"));  // a plain Mixtral config
}

TEST(Checkpoint, HuggingFaceConfigRoundTripsTheModelSpec) {
  JobSpec spec;
  spec.model.n_layers = 3;
  spec.model.n_kv_heads = 2;
  spec.model.rope_theta = 5e5;
  spec.model.moe.shared_experts = 1;
  spec.model.moe.d_shared_expert = 32;
  spec.model.moe.first_dense_layers = 1;
  spec.model.d_ff = 200;
  spec.routing.score = "sigmoid";
  JobSpec back;
  apply_hf_config(hf_config_from_spec(spec), back, "config.json");
  EXPECT_EQ(spec_to_json(back)["model"], spec_to_json(spec)["model"]);
  EXPECT_EQ(back.routing.score, "sigmoid");
  expect_error([] { JobSpec s; apply_hf_config({{"hidden_size", 4}}, s, "cfg.json"); }, {"cfg.json", "missing key"});
  expect_error([] { JobSpec s; apply_hf_config({{"vocab_size", "x"}}, s, "cfg.json"); }, {"cfg.json", "vocab_size", "wrong type"});
}

TEST(Checkpoint, LatestOnlyMovesToCompleteCheckpointsAndOldOnesArePruned) {
  TempDir dir;
  JobSpec spec;
  std::vector<float> w{1, 2, 3, 4}, m{5, 6, 7, 8};
  save_checkpoint(dir.path(), 1, spec, sample(w, m));
  // A crash while writing step 2 leaves only a temporary directory: latest still names step 1.
  std::filesystem::create_directories(dir / ".tmp-step-00000002-999");
  test::write_file(dir / ".tmp-step-00000002-999" / "model.safetensors", "half");
  EXPECT_EQ(resolve_checkpoint_dir(dir.path()), dir / "step-00000001");
  EXPECT_EQ(load_checkpoint(dir.path(), false).trainer_state["step"], 1);
  for (int s = 2; s <= 4; ++s) save_checkpoint(dir.path(), s, spec, sample(w, m), 2);
  EXPECT_FALSE(std::filesystem::exists(dir / "step-00000001"));
  EXPECT_FALSE(std::filesystem::exists(dir / "step-00000002"));
  EXPECT_TRUE(std::filesystem::exists(dir / "step-00000003"));
  EXPECT_EQ(resolve_checkpoint_dir(dir.path()), dir / "step-00000004");
}

TEST(Checkpoint, BrokenCheckpointsAreOneLineErrors) {
  TempDir dir;
  JobSpec spec;
  std::vector<float> w{1, 2, 3, 4}, m{5, 6, 7, 8};
  const auto ck = save_checkpoint(dir.path(), 5, spec, sample(w, m));
  expect_error([&] { load_checkpoint(dir / "missing", false); }, {"missing", "no such directory"});
  const std::string model = test::read_file(ck / "model.safetensors");
  test::write_file(ck / "model.safetensors", model.substr(0, model.size() - 3));
  expect_error([&] { load_checkpoint(dir.path(), false); }, {"model.safetensors", "tensor model.embed_tokens.weight", "truncated"});
  test::write_file(ck / "model.safetensors", model);
  test::write_file(ck / "config.json", "{\"hidden_size\": ");
  expect_error([&] { load_checkpoint(ck, false); }, {"config.json"});
  std::filesystem::remove(ck / "config.json");
  expect_error([&] { load_checkpoint(ck, false); }, {"config.json is missing"});
  std::filesystem::remove(ck / "optimizer.safetensors");
  test::write_file(ck / "config.json", hf_config_from_spec(spec).dump());
  EXPECT_NO_THROW(load_checkpoint(ck, false));
  expect_error([&] { load_checkpoint(ck, true); }, {"optimizer.safetensors is missing"});
  test::write_file(dir / "latest", "step-00000099\n");
  expect_error([&] { load_checkpoint(dir.path(), false); }, {"step-00000099", "latest"});
}

TEST(Checkpoint, RngStateRoundTrips) {
  std::mt19937_64 rng(99);
  rng.discard(1000);
  const std::string text = rng_to_string(rng);
  std::mt19937_64 back = rng_from_string(text, "state");
  EXPECT_EQ(back(), rng());
  expect_error([] { rng_from_string("not numbers", "trainer_state.json"); }, {"trainer_state.json", "RNG"});
}

}  // namespace
}  // namespace moe::rt
