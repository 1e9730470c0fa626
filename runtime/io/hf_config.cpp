// Job spec ⇄ Hugging Face Mixtral config.json.
#include "hf_config.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "error.h"

namespace moe::rt {

nlohmann::json hf_config_from_spec(const JobSpec& spec) {
  const ModelSpec& m = spec.model;
  nlohmann::json c = {
      {"architectures", {"MixtralForCausalLM"}},
      {"model_type", "mixtral"},
      {"vocab_size", m.vocab_size},
      {"hidden_size", m.d_model},
      {"intermediate_size", m.moe.d_expert},
      {"num_hidden_layers", m.n_layers},
      {"num_attention_heads", m.n_heads},
      {"num_key_value_heads", m.n_kv_heads},
      {"head_dim", m.resolved_head_dim()},
      {"hidden_act", "silu"},
      {"max_position_embeddings", m.seq_len},
      {"initializer_range", m.init_std},
      {"rms_norm_eps", m.norm_eps},
      {"rope_theta", m.rope_theta},
      {"tie_word_embeddings", m.tie_embeddings},
      {"num_local_experts", m.moe.num_experts},
      {"num_experts_per_tok", m.moe.top_k},
      {"router_aux_loss_coef", spec.routing.aux_loss_coef},
      {"router_jitter_noise", spec.routing.jitter},
      {"output_router_logits", false},
      {"sliding_window", nullptr},
      {"attention_dropout", 0.0},
      {"use_cache", true},
      {"torch_dtype", "float32"},
      {"bos_token_id", nullptr},
      {"eos_token_id", nullptr},
  };
  // Extensions beyond Mixtral (DeepSeek-V3 key names); a plain Mixtral spec writes none of them.
  if (m.moe.shared_experts > 0) {
    c["n_shared_experts"] = m.moe.shared_experts;
    c["shared_expert_intermediate_size"] = m.moe.d_shared_expert;
  }
  if (m.moe.first_dense_layers > 0) {
    c["first_k_dense_replace"] = m.moe.first_dense_layers;
    c["dense_intermediate_size"] = m.d_ff;
  }
  if (spec.routing.score != "softmax") c["scoring_func"] = spec.routing.score;
  if (!spec.routing.norm_topk_prob) c["norm_topk_prob"] = false;
  if (spec.routing.routed_scaling_factor != 1.0) c["routed_scaling_factor"] = spec.routing.routed_scaling_factor;
  return c;
}

namespace {

template <typename T>
T get(const nlohmann::json& c, const char* key, const std::string& origin) {
  if (!c.contains(key)) throw Error(origin + ": missing key " + key);
  if constexpr (std::is_same_v<T, int64_t>) {
    // nlohmann converts any number to int64_t, a float out of range with undefined behaviour.
    // The rule of core's importer: an integer, or a float with an integral value (4096.0).
    const nlohmann::json& v = c.at(key);
    if (!v.is_number()) throw Error(origin + ": key " + std::string(key) + " has the wrong type (" + v.dump() + ")");
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      throw Error(origin + ": key " + std::string(key) + " is out of range (" + v.dump() + ")");
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
      const double x = v.get<double>();
      if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9e15) return static_cast<int64_t>(x);
    }
    throw Error(origin + ": key " + std::string(key) + " must be an integer (" + v.dump() + ")");
  }
  try {
    return c.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(origin + ": key " + std::string(key) + " has the wrong type (" + c.at(key).dump() + ")");
  }
}

template <typename T>
T get_or(const nlohmann::json& c, const char* key, T fallback, const std::string& origin) {
  return c.contains(key) && !c.at(key).is_null() ? get<T>(c, key, origin) : fallback;
}

}  // namespace

void apply_hf_config(const nlohmann::json& c, JobSpec& spec, const std::string& origin) {
  if (!c.is_object()) throw Error(origin + ": not a JSON object");
  ModelSpec& m = spec.model;
  m.vocab_size = get<int64_t>(c, "vocab_size", origin);
  m.d_model = get<int64_t>(c, "hidden_size", origin);
  m.moe.d_expert = get<int64_t>(c, "intermediate_size", origin);
  m.n_layers = get<int64_t>(c, "num_hidden_layers", origin);
  m.n_heads = get<int64_t>(c, "num_attention_heads", origin);
  m.n_kv_heads = get_or<int64_t>(c, "num_key_value_heads", m.n_heads, origin);
  // head_dim equal to d_model / n_heads is written as 0 ("derived") unless the spec spelled it out
  // (an imported Qwen3 spec does; resume compares the whole model). n_heads <= 0 is left to
  // validation: dividing by it would crash or overflow.
  const bool explicit_head_dim = m.head_dim != 0;
  m.head_dim = get_or<int64_t>(c, "head_dim", 0, origin);
  if (!explicit_head_dim && m.n_heads > 0 && m.head_dim == m.d_model / m.n_heads) m.head_dim = 0;
  m.seq_len = get_or<int64_t>(c, "max_position_embeddings", m.seq_len, origin);
  m.norm_eps = get_or<double>(c, "rms_norm_eps", 1e-5, origin);
  m.rope_theta = get_or<double>(c, "rope_theta", 1e6, origin);  // Mixtral's default
  m.tie_embeddings = get_or<bool>(c, "tie_word_embeddings", false, origin);
  m.init_std = get_or<double>(c, "initializer_range", m.init_std, origin);
  m.moe.num_experts = get<int64_t>(c, "num_local_experts", origin);
  m.moe.top_k = get<int64_t>(c, "num_experts_per_tok", origin);
  m.moe.shared_experts = get_or<int64_t>(c, "n_shared_experts", 0, origin);
  // Widths that hf_config_from_spec writes only when their layers exist: absent, keep the spec's
  // (an imported Qwen2-MoE spec has d_ff without dense layers; resume compares the whole model).
  m.moe.d_shared_expert = get_or<int64_t>(c, "shared_expert_intermediate_size", m.moe.d_shared_expert, origin);
  m.moe.first_dense_layers = get_or<int64_t>(c, "first_k_dense_replace", 0, origin);
  m.d_ff = get_or<int64_t>(c, "dense_intermediate_size", m.d_ff, origin);
  spec.routing.aux_loss_coef = get_or<double>(c, "router_aux_loss_coef", spec.routing.aux_loss_coef, origin);
  spec.routing.score = get_or<std::string>(c, "scoring_func", "softmax", origin);
  spec.routing.norm_topk_prob = get_or<bool>(c, "norm_topk_prob", true, origin);
  spec.routing.routed_scaling_factor = get_or<double>(c, "routed_scaling_factor", 1.0, origin);
}

}  // namespace moe::rt
