// Hugging Face import: every supported architecture maps its MoE keys; unknown architectures,
// wrong types and missing keys fail with one line; keys it cannot map become warnings.
#include "hf_import.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "cost_model.h"
#include "error.h"
#include "spec_validation.h"
#include "test_paths.h"

using namespace moe;
using json = nlohmann::json;

namespace {

json config(const std::string& file) { return parse_json_text(read_text_file(test::hf_config(file)), file); }

bool has_warning(const HfImport& imp, const std::string& prefix) {
  return std::any_of(imp.warnings.begin(), imp.warnings.end(),
                     [&](const std::string& w) { return w.rfind(prefix, 0) == 0; });
}

std::string error_of(const json& c) {
  try {
    import_hf_config(c, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(HfImport, Mixtral) {
  HfImport imp = import_hf_config(config("mixtral-8x7b-v0.1.json"), "mixtral-8x7b-v0.1.json");
  const JobSpec& s = imp.spec;
  EXPECT_EQ(imp.architecture, "MixtralForCausalLM");
  EXPECT_EQ(s.name, "mixtral-8x7b-v0.1");
  EXPECT_EQ(s.model.d_model, 4096);
  EXPECT_EQ(s.model.n_layers, 32);
  EXPECT_EQ(s.model.n_heads, 32);
  EXPECT_EQ(s.model.n_kv_heads, 8);
  EXPECT_EQ(s.model.vocab_size, 32000);
  EXPECT_EQ(s.model.moe.num_experts, 8);
  EXPECT_EQ(s.model.moe.top_k, 2);
  EXPECT_EQ(s.model.moe.d_expert, 14336);
  EXPECT_EQ(s.model.rope_theta, 1e6);
  EXPECT_EQ(s.model.norm_eps, 1e-5);
  EXPECT_EQ(s.routing.aux_loss_coef, 0.02);
  EXPECT_EQ(s.routing.score, "softmax");
  EXPECT_TRUE(s.routing.dropless());
  EXPECT_EQ(s.runtime.dtype, "bf16");
  EXPECT_EQ(s.model.seq_len, 4096);
  EXPECT_TRUE(has_warning(imp, "max_position_embeddings: 32768 is the model's context limit"));
  EXPECT_FALSE(has_errors(validate_spec(s)));
}

TEST(HfImport, Qwen3MoeAndQwen2MoeSharedExpert) {
  HfImport q3 = import_hf_config(config("qwen3-30b-a3b.json"));
  EXPECT_EQ(q3.architecture, "Qwen3MoeForCausalLM");
  EXPECT_EQ(q3.spec.model.head_dim, 128);
  EXPECT_EQ(q3.spec.model.moe.num_experts, 128);
  EXPECT_EQ(q3.spec.model.moe.top_k, 8);
  EXPECT_EQ(q3.spec.model.moe.d_expert, 768);
  EXPECT_TRUE(q3.spec.routing.norm_topk_prob);
  EXPECT_EQ(q3.spec.routing.aux_loss_coef, 0.001);
  EXPECT_FALSE(has_errors(validate_spec(q3.spec)));

  HfImport q2 = import_hf_config(config("qwen2-57b-a14b.json"));
  EXPECT_EQ(q2.architecture, "Qwen2MoeForCausalLM");
  EXPECT_EQ(q2.spec.model.moe.shared_experts, 1);
  EXPECT_EQ(q2.spec.model.moe.d_shared_expert, 20480);
  EXPECT_FALSE(q2.spec.routing.norm_topk_prob);
  EXPECT_FALSE(has_errors(validate_spec(q2.spec)));
  // Qwen2 technical report (arXiv 2407.10671), Table 1: 57B total, 14B activated. Our count
  // lacks Qwen2's q/k/v biases and the shared-expert gate (≈ 10 M), far below the rounding.
  HardwareProfile hw;
  hw.name = "x", hw.memory_bytes = 1e12, hw.peak_flops_bf16 = hw.peak_flops_fp32 = 1e15;
  hw.intra_node_bw = hw.inter_node_bw = 1e11;
  Plan p = plan_job(q2.spec, hw);
  EXPECT_NEAR(p.params.total / 1e9, 57, 0.5);
  EXPECT_NEAR(p.params.active / 1e9, 14, 0.5);
}

TEST(HfImport, DeepSeekV3MapsMlaAndRouting) {
  HfImport imp = import_hf_config(config("deepseek-v3.json"), "deepseek-v3.json");
  const JobSpec& s = imp.spec;
  EXPECT_EQ(s.model.attention, "mla");
  EXPECT_EQ(s.model.mla.q_lora_rank, 1536);
  EXPECT_EQ(s.model.mla.kv_lora_rank, 512);
  EXPECT_EQ(s.model.mla.qk_nope_head_dim, 128);
  EXPECT_EQ(s.model.mla.qk_rope_head_dim, 64);
  EXPECT_EQ(s.model.mla.v_head_dim, 128);
  EXPECT_EQ(s.model.moe.num_experts, 256);
  EXPECT_EQ(s.model.moe.top_k, 8);
  EXPECT_EQ(s.model.moe.d_expert, 2048);
  EXPECT_EQ(s.model.moe.shared_experts, 1);
  EXPECT_EQ(s.model.moe.d_shared_expert, 2048);
  EXPECT_EQ(s.model.moe.first_dense_layers, 3);
  EXPECT_EQ(s.model.d_ff, 18432);
  EXPECT_EQ(s.routing.score, "sigmoid");
  EXPECT_EQ(s.routing.routed_scaling_factor, 2.5);
  EXPECT_EQ(s.routing.n_group, 8);
  EXPECT_EQ(s.routing.topk_group, 4);
  EXPECT_TRUE(s.routing.bias_balancing.enabled);  // topk_method noaux_tc
  EXPECT_EQ(s.model.norm_eps, 1e-6);
  // Present in the file but not modelled: listed, not dropped.
  EXPECT_TRUE(has_warning(imp, "num_nextn_predict_layers: 1 not mapped"));
  EXPECT_TRUE(has_warning(imp, "quantization_config:"));
  EXPECT_TRUE(has_warning(imp, "rope_scaling:"));
  EXPECT_FALSE(has_errors(validate_spec(s)));
}

TEST(HfImport, DeepSeekV2LiteWithoutQueryLora) {
  HfImport imp = import_hf_config(config("deepseek-v2-lite.json"));
  EXPECT_EQ(imp.spec.model.mla.q_lora_rank, 0);  // null: queries projected directly
  EXPECT_EQ(imp.spec.model.moe.shared_experts, 2);
  EXPECT_EQ(imp.spec.model.moe.first_dense_layers, 1);
  EXPECT_EQ(imp.spec.routing.aux_loss_coef, 0.001);  // aux_loss_alpha
  EXPECT_FALSE(imp.spec.routing.bias_balancing.enabled);
  EXPECT_TRUE(has_warning(imp, "seq_aux: true not mapped"));
  EXPECT_FALSE(has_errors(validate_spec(imp.spec)));
  // Model card (deepseek-ai/DeepSeek-V2-Lite): 15.7B total, 2.4B activated. DeepSeek's convention
  // (output head counted, input embedding not) gives 2.451 B, which the card truncates to 2.4 B.
  HardwareProfile hw;
  hw.name = "x", hw.memory_bytes = 1e12, hw.peak_flops_bf16 = hw.peak_flops_fp32 = 1e15;
  hw.intra_node_bw = hw.inter_node_bw = 1e11;
  Plan p = plan_job(imp.spec, hw);
  EXPECT_NEAR(p.params.total / 1e9, 15.7, 0.157);
  EXPECT_EQ(std::floor(p.params.active_with_head / 1e8) / 10, 2.4);
  EXPECT_GT(p.params.active, 2.5e9);  // counting the embedding too would not truncate to 2.4 B
}

TEST(HfImport, UnknownArchitectureListsTheSupportedOnes) {
  std::string e = error_of(config("olmoe-1b-7b-0924.json"));
  EXPECT_EQ(e, "cfg.json: architectures: 'OlmoeForCausalLM' is not supported; supported: MixtralForCausalLM, "
               "Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, DeepseekV2ForCausalLM, DeepseekV3ForCausalLM");
  EXPECT_NE(error_of(config("switch-base-32.json")).find("'SwitchTransformersForConditionalGeneration' is not supported"),
            std::string::npos);
  EXPECT_NE(error_of(json::object()).find("architectures: missing"), std::string::npos);
  EXPECT_NE(error_of(json::array()).find("expected a JSON object"), std::string::npos);
}

TEST(HfImport, WrongTypesAndMissingKeys) {
  json c = config("mixtral-8x7b-v0.1.json");
  c["hidden_size"] = "4096";
  EXPECT_EQ(error_of(c), "cfg.json: hidden_size: expected an integer, got string");
  c = config("mixtral-8x7b-v0.1.json");
  c.erase("num_local_experts");
  EXPECT_EQ(error_of(c), "cfg.json: num_local_experts: missing (required for this architecture)");
  c = config("mixtral-8x7b-v0.1.json");
  c["num_hidden_layers"] = 32.0;  // an integral float is fine
  EXPECT_EQ(error_of(c), "");
  c["num_hidden_layers"] = 32.5;
  EXPECT_EQ(error_of(c), "cfg.json: num_hidden_layers: expected an integer, got number");
  c = config("mixtral-8x7b-v0.1.json");
  c["num_hidden_layers"] = 18446744073709551615ull;
  EXPECT_EQ(error_of(c), "cfg.json: num_hidden_layers: 18446744073709551615 is too large");
}

TEST(HfImport, UnknownKeysBecomeWarnings) {
  json c = config("mixtral-8x7b-v0.1.json");
  c["my_new_feature"] = 7;
  c["sliding_window"] = 4096;
  HfImport imp = import_hf_config(c);
  EXPECT_TRUE(has_warning(imp, "my_new_feature: 7 not mapped (unknown to the importer)"));
  EXPECT_TRUE(has_warning(imp, "sliding_window: 4096 not mapped"));
  // Token ids and bookkeeping are irrelevant, not warnings.
  EXPECT_FALSE(has_warning(imp, "bos_token_id"));
  EXPECT_FALSE(has_warning(imp, "transformers_version"));
}

TEST(HfImport, QwenDensePrefixFromMlpOnlyLayers) {
  json c = config("qwen3-30b-a3b.json");
  c["mlp_only_layers"] = {0, 1};
  EXPECT_EQ(import_hf_config(c).spec.model.moe.first_dense_layers, 2);
  c["mlp_only_layers"] = {5};
  HfImport imp = import_hf_config(c);
  EXPECT_EQ(imp.spec.model.moe.first_dense_layers, 0);
  EXPECT_TRUE(has_warning(imp, "mlp_only_layers: [5] not mapped"));
}

TEST(HfImport, RoundTripsThroughTheSpecFormat) {
  HfImport imp = import_hf_config(config("deepseek-v3.json"));
  JobSpec back = parse_spec(spec_to_json(imp.spec).dump());
  EXPECT_EQ(spec_to_json(back), spec_to_json(imp.spec));
}
