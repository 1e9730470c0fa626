// Hugging Face config.json import (see hf_import.h). A Reader marks each key it maps, so whatever is
// left over becomes a warning instead of being dropped silently.
#include "hf_import.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <set>

#include "error.h"
#include "spec_choices.h"

namespace moe {

namespace {

using json = nlohmann::json;

enum class Family { mixtral, qwen_moe, deepseek };

struct Arch {
  const char* name;
  Family family;
};

const Arch kArchs[] = {{"MixtralForCausalLM", Family::mixtral},
                       {"Qwen2MoeForCausalLM", Family::qwen_moe},
                       {"Qwen3MoeForCausalLM", Family::qwen_moe},
                       {"DeepseekV2ForCausalLM", Family::deepseek},
                       {"DeepseekV3ForCausalLM", Family::deepseek}};

// Keys that say nothing about training cost or numerics: token ids, library bookkeeping.
const std::set<std::string> kIrrelevant = {"architectures", "model_type", "auto_map", "bos_token_id",
                                           "eos_token_id", "pad_token_id", "transformers_version",
                                           "use_cache", "output_router_logits", "_name_or_path",
                                           "router_jitter_noise_inference", "return_dict"};

class Reader {
 public:
  Reader(const json& c, std::string origin, std::vector<std::string>& warnings)
      : c_(c), origin_(std::move(origin)), warnings_(warnings) {}

  bool has(const std::string& key) const { return c_.contains(key) && !c_[key].is_null(); }
  void used(const std::string& key) { used_.insert(key); }

  // An integer key; floats with an integral value are accepted (some configs write 4096.0).
  bool get_int(const std::string& key, int64_t& out, bool required = false) {
    used(key);
    if (!has(key)) {
      if (required) fail(key, "missing (required for this architecture)");
      return false;
    }
    const json& v = c_[key];
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(key, v.dump() + " is too large");
    if (v.is_number_integer()) {
      out = v.get<int64_t>();
      return true;
    }
    if (v.is_number_float()) {
      double x = v.get<double>();
      if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9e15) {
        out = int64_t(x);
        return true;
      }
    }
    fail(key, std::string("expected an integer, got ") + v.type_name());
    return false;
  }
  bool get_double(const std::string& key, double& out) {
    used(key);
    if (!has(key)) return false;
    const json& v = c_[key];
    if (!v.is_number()) fail(key, std::string("expected a number, got ") + v.type_name());
    out = v.get<double>();
    return true;
  }
  bool get_bool(const std::string& key, bool& out) {
    used(key);
    if (!has(key)) return false;
    if (!c_[key].is_boolean()) fail(key, std::string("expected true or false, got ") + c_[key].type_name());
    out = c_[key].get<bool>();
    return true;
  }
  bool get_string(const std::string& key, std::string& out) {
    used(key);
    if (!has(key)) return false;
    if (!c_[key].is_string()) fail(key, std::string("expected a string, got ") + c_[key].type_name());
    out = c_[key].get<std::string>();
    return true;
  }
  // A key we read only to warn when it holds anything but the value we model.
  void expect(const std::string& key, const json& modelled, const std::string& why) {
    used(key);
    if (has(key) && c_[key] != modelled) warn(key, c_[key].dump() + " not mapped (" + why + ")");
  }
  void warn(const std::string& key, const std::string& text) {
    used(key);
    warnings_.push_back(key + ": " + text);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& text) const {
    throw Error(origin_ + ": " + key + ": " + text);
  }
  void warn_unused() {
    for (auto it = c_.begin(); it != c_.end(); ++it)
      if (!used_.count(it.key()) && !kIrrelevant.count(it.key()))
        warnings_.push_back(it.key() + ": " + it.value().dump() + " not mapped (unknown to the importer)");
  }

 private:
  const json& c_;
  std::string origin_;
  std::vector<std::string>& warnings_;
  std::set<std::string> used_;
};

void read_common(Reader& r, JobSpec& s) {
  ModelSpec& m = s.model;
  r.get_int("hidden_size", m.d_model, true);
  r.get_int("num_hidden_layers", m.n_layers, true);
  r.get_int("num_attention_heads", m.n_heads, true);
  m.n_kv_heads = m.n_heads;
  r.get_int("num_key_value_heads", m.n_kv_heads);
  r.get_int("vocab_size", m.vocab_size, true);
  r.get_double("rope_theta", m.rope_theta);
  r.get_double("rms_norm_eps", m.norm_eps);
  r.get_bool("tie_word_embeddings", m.tie_embeddings);
  r.get_double("initializer_range", m.init_std);
  int64_t max_pos = 0;
  if (r.get_int("max_position_embeddings", max_pos)) {
    m.seq_len = std::min<int64_t>(max_pos, 4096);
    if (max_pos > m.seq_len)
      r.warn("max_position_embeddings", std::to_string(max_pos) + " is the model's context limit; model.seq_len set to " +
                                            std::to_string(m.seq_len) + " for training (change it with --set model.seq_len=N)");
  }
  std::string act = "silu";
  r.get_string("hidden_act", act);
  if (act != "silu") r.warn("hidden_act", "'" + act + "' not mapped (experts are SwiGLU with silu)");
  r.expect("attention_dropout", 0.0, "no dropout in the runtime");
  r.expect("attention_bias", false, "projections are bias-free");
  r.expect("rope_scaling", json(), "plain RoPE; context-extension scaling is not modelled");
  r.expect("pretraining_tp", 1, "a pretraining artefact with no effect on the model");
  std::string dtype;
  if (r.get_string("torch_dtype", dtype)) {
    if (dtype == "float32") s.runtime.dtype = "fp32";
    else if (dtype == "bfloat16") s.runtime.dtype = "bf16";
    else r.warn("torch_dtype", "'" + dtype + "' not mapped; runtime.dtype stays " + s.runtime.dtype);
  }
}

void read_mixtral(Reader& r, JobSpec& s) {
  MoeSpec& e = s.model.moe;
  r.get_int("num_local_experts", e.num_experts, true);
  r.get_int("num_experts_per_tok", e.top_k, true);
  r.get_int("intermediate_size", e.d_expert, true);
  r.get_double("router_aux_loss_coef", s.routing.aux_loss_coef);
  r.expect("router_jitter_noise", 0.0, "set routing.jitter yourself");
  r.expect("sliding_window", json(), "full causal attention");
  s.routing.norm_topk_prob = true;  // Mixtral renormalises the top-k softmax weights
}

void read_qwen(Reader& r, JobSpec& s) {
  ModelSpec& m = s.model;
  MoeSpec& e = m.moe;
  r.get_int("num_experts", e.num_experts, true);
  r.get_int("num_experts_per_tok", e.top_k, true);
  r.get_int("moe_intermediate_size", e.d_expert, true);
  r.get_int("head_dim", m.head_dim);
  r.get_int("intermediate_size", m.d_ff);  // the dense MLP of mlp_only_layers
  int64_t shared = 0;
  if (r.get_int("shared_expert_intermediate_size", shared) && shared > 0) {
    e.shared_experts = 1;
    e.d_shared_expert = shared;
  }
  r.get_bool("norm_topk_prob", s.routing.norm_topk_prob);
  r.get_double("router_aux_loss_coef", s.routing.aux_loss_coef);
  r.expect("decoder_sparse_step", 1, "only every-layer MoE is modelled");
  r.used("mlp_only_layers");  // read_mlp_only_layers maps it
  bool sliding = false;
  r.get_bool("use_sliding_window", sliding);
  if (sliding) r.warn("use_sliding_window", "true not mapped (full causal attention)");
  r.used("sliding_window");     // only used with use_sliding_window
  r.used("max_window_layers");  // likewise
}

// mlp_only_layers = [0, 1, …, n−1] is a dense prefix; anything else cannot be expressed.
void read_mlp_only_layers(const json& c, Reader& r, JobSpec& s) {
  if (!c.contains("mlp_only_layers") || c["mlp_only_layers"].is_null()) return;
  const json& v = c["mlp_only_layers"];
  if (!v.is_array()) r.fail("mlp_only_layers", std::string("expected an array, got ") + v.type_name());
  for (size_t i = 0; i < v.size(); ++i)
    if (!v[i].is_number_integer() || v[i].get<int64_t>() != int64_t(i)) {
      r.warn("mlp_only_layers", v.dump() + " not mapped (only a prefix of dense layers is modelled)");
      return;
    }
  s.model.moe.first_dense_layers = int64_t(v.size());
}

void read_deepseek(Reader& r, JobSpec& s) {
  ModelSpec& m = s.model;
  MoeSpec& e = m.moe;
  RoutingSpec& rt = s.routing;
  m.attention = "mla";
  r.get_int("n_routed_experts", e.num_experts, true);
  r.get_int("num_experts_per_tok", e.top_k, true);
  r.get_int("moe_intermediate_size", e.d_expert, true);
  r.get_int("intermediate_size", m.d_ff);
  r.get_int("first_k_dense_replace", e.first_dense_layers);
  if (r.get_int("n_shared_experts", e.shared_experts) && e.shared_experts > 0) e.d_shared_expert = e.d_expert;
  m.mla.q_lora_rank = 0;  // null in V2-Lite: queries projected directly
  r.get_int("q_lora_rank", m.mla.q_lora_rank);
  r.get_int("kv_lora_rank", m.mla.kv_lora_rank, true);
  r.get_int("qk_nope_head_dim", m.mla.qk_nope_head_dim, true);
  r.get_int("qk_rope_head_dim", m.mla.qk_rope_head_dim, true);
  r.get_int("v_head_dim", m.mla.v_head_dim, true);
  m.n_kv_heads = m.n_heads;  // MLA has no KV-head grouping
  std::string score = "softmax";
  if (r.get_string("scoring_func", score)) {
    if (!is_choice("routing.score", score))
      r.fail("scoring_func", "'" + score + "' is not one of: " + choice_names("routing.score"));
    rt.score = score;
  }
  r.get_double("routed_scaling_factor", rt.routed_scaling_factor);
  r.get_bool("norm_topk_prob", rt.norm_topk_prob);
  r.get_int("n_group", rt.n_group);
  r.get_int("topk_group", rt.topk_group);
  rt.aux_loss_coef = 0;
  r.get_double("aux_loss_alpha", rt.aux_loss_coef);
  std::string method = "greedy";
  r.get_string("topk_method", method);
  if (method == "noaux_tc") {
    rt.bias_balancing.enabled = true;  // DeepSeek-V3's auxiliary-loss-free balancing (bias γ = 0.001)
    rt.bias_balancing.update_rate = 0.001;
  } else if (method != "greedy" && method != "group_limited_greedy") {
    r.warn("topk_method", "'" + method + "' not mapped");
  }
  r.expect("moe_layer_freq", 1, "only every-layer MoE after the dense prefix is modelled");
  r.expect("seq_aux", false, "the aux loss is computed over the batch, not per sequence");
  r.expect("num_nextn_predict_layers", 0, "multi-token-prediction modules are not modelled");
  r.expect("quantization_config", json(), "FP8 weights are not modelled; training runs in runtime.dtype");
  r.expect("ep_size", 1, "an inference-time hint; choose parallel.ep");
  r.used("max_position_embeddings");
  rt.z_loss_coef = 0;
}

}  // namespace

std::vector<std::string> supported_hf_architectures() {
  std::vector<std::string> out;
  for (const auto& a : kArchs) out.push_back(a.name);
  return out;
}

HfImport import_hf_config(const json& config, const std::string& origin) {
  if (!config.is_object()) throw Error(origin + ": expected a JSON object (a Hugging Face config.json)");
  std::string list;
  for (const auto& a : kArchs) list += (list.empty() ? "" : ", ") + std::string(a.name);
  if (!config.contains("architectures") || !config["architectures"].is_array() || config["architectures"].empty() ||
      !config["architectures"][0].is_string())
    throw Error(origin + ": architectures: missing or not a list of names; supported: " + list);
  const std::string name = config["architectures"][0].get<std::string>();
  const Arch* arch = nullptr;
  for (const auto& a : kArchs)
    if (name == a.name) arch = &a;
  if (!arch) throw Error(origin + ": architectures: '" + name + "' is not supported; supported: " + list);

  HfImport out;
  out.architecture = name;
  JobSpec& s = out.spec;
  s.name = std::filesystem::path(origin).stem().string();
  if (s.name.empty() || s.name == "config") s.name = name;
  s.comment = "imported from " + origin + " (" + name + ") by moe import-hf; choose parallel and cluster";
  s.runtime.backend = "cuda";
  s.runtime.deterministic = false;  // the CPU runtime's layout-invariant arithmetic only
  s.routing.capacity_factor = 0;  // these models train dropless
  s.routing.z_loss_coef = 0;
  Reader r(config, origin, out.warnings);
  read_common(r, s);
  switch (arch->family) {
    case Family::mixtral: read_mixtral(r, s); break;
    case Family::qwen_moe:
      read_qwen(r, s);
      read_mlp_only_layers(config, r, s);
      break;
    case Family::deepseek: read_deepseek(r, s); break;
  }
  // A starting layout: the largest EP ≤ 8 dividing the expert count, on one 8-GPU node.
  const int64_t ep = std::gcd<int64_t>(s.model.moe.num_experts > 0 ? s.model.moe.num_experts : 1, 8);
  s.parallel.ep = ep;
  s.parallel.gpus_per_node = ep;
  s.cluster.nodes = {NodeSpec{"localhost", 22, "", ep}};
  r.warn_unused();
  return out;
}

}  // namespace moe
