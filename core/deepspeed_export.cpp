// A spec as DeepSpeed settings (engine_export.h): the ds_config JSON, the arguments of
// deepspeed.moe.layer.MoE, and what the user's model code must supply, since DeepSpeed does not
// define the model. Key names as in DeepSpeed at kDeepSpeedVersion (docs/engine-export.md).
#include <algorithm>
#include <string>

#include "engine_export.h"
#include "engine_export_ledger.h"

namespace moe {
namespace {

// The sources the names were checked against (docs/engine-export.md quotes them).
constexpr const char* kDeepSpeedVersion =
    "deepspeedai/DeepSpeed master of 2025 (deepspeed/moe/layer.py at commit 639460a)";

using json = nlohmann::ordered_json;  // keys in the order written, as a person reads them

json ds_config(const JobSpec& s, ExportLedger& ledger) {
  const TrainSpec& t = s.train;
  json c;
  c["train_batch_size"] = t.global_batch(s.parallel);  // micro × accumulation × data-parallel size (dp·ep)
  c["train_micro_batch_size_per_gpu"] = t.micro_batch;
  c["gradient_accumulation_steps"] = t.grad_accum;
  c["optimizer"] = {{"type", "AdamW"},
                    {"params",
                     {{"lr", t.lr}, {"betas", {t.adam_beta1, t.adam_beta2}}, {"eps", t.adam_eps},
                      {"weight_decay", t.weight_decay}}}};
  c["scheduler"] = {{"type", "WarmupCosineLR"},
                    {"params",
                     {{"total_num_steps", t.steps}, {"warmup_num_steps", std::max<int64_t>(1, t.warmup_steps)},
                      {"warmup_type", "linear"},
                      {"warmup_min_ratio", 0.0}, {"cos_min_ratio", t.min_lr_ratio}}}};
  c["gradient_clipping"] = t.grad_clip;
  c["bf16"] = {{"enabled", s.runtime.dtype == "bf16"}};
  if (s.runtime.fp8 != "off")
    ledger.unmapped("runtime.fp8", "no FP8 key in ds_config: wrap the model's Linear layers in Transformer Engine's "
                                   "fp8_autocast (format " + s.runtime.fp8 + ") yourself");
  else
    ledger.use({"runtime.fp8"});
  if (t.recompute != "none")
    ledger.unmapped("train.recompute", t.recompute + ": DeepSpeed recomputes what the model code wraps in "
                                       "deepspeed.checkpointing.checkpoint (ds_config's activation_checkpointing only tunes it): "
                                       "wrap each layer (full) or each pipeline stage's layers (stage) yourself");
  else
    ledger.use({"train.recompute"});
  c["zero_optimization"] = {{"stage", 0}};  // the cost model assumes no optimizer sharding
  c["steps_per_print"] = s.runtime.metrics_every;
  if (t.warmup_steps < 1)
    ledger.unmapped("train.warmup_steps", "WarmupCosineLR needs at least 1 warmup step; exported as 1");
  ledger.use({"train.micro_batch", "train.grad_accum", "train.steps", "train.lr", "train.min_lr_ratio",
              "train.warmup_steps", "train.weight_decay", "train.adam_beta1", "train.adam_beta2", "train.adam_eps",
              "train.grad_clip", "runtime.dtype", "runtime.metrics_every"});
  return c;
}

json moe_layer(const JobSpec& s, ExportLedger& ledger) {
  const MoeSpec& e = s.model.moe;
  const RoutingSpec& r = s.routing;
  json m;
  m["hidden_size"] = s.model.d_model;
  m["num_experts"] = e.num_experts;
  m["ep_size"] = s.parallel.ep;
  m["k"] = e.top_k;
  ledger.use({"model.d_model", "model.moe.num_experts", "parallel.ep", "model.moe.top_k"});
  if (r.dropless()) {
    m["drop_tokens"] = false;  // capacity grows to the busiest expert's load
    m["capacity_factor"] = 1.0;
    m["eval_capacity_factor"] = 1.0;
    ledger.use({"routing.capacity_factor", "routing.drop_policy"});
  } else {
    m["drop_tokens"] = true;
    m["capacity_factor"] = r.capacity_factor;
    m["eval_capacity_factor"] = r.capacity_factor;
    ledger.use({"routing.capacity_factor"});
    // The top-1 and top-2 gates drop by position (use_rts=false) or at random; the top-k gate (k > 2)
    // by gate value, whatever it is asked.
    const bool position = e.top_k <= 2;
    if ((r.drop_policy == "probability") == position)
      ledger.unmapped("routing.drop_policy", position ? "the top-1/top-2 gates drop by position (or at random with "
                                                        "use_rts); no lowest-gate-first dropping"
                                                      : "the top-k gate (k > 2) always drops the lowest gate values first");
    else
      ledger.use({"routing.drop_policy"});
  }
  m["min_capacity"] = 0;  // no floor: the capacity is cf·T·k/E as in MoE Studio
  m["use_rts"] = false;   // random token selection would change which tokens drop
  if (e.top_k == 2) m["top2_2nd_expert_sampling"] = false;  // no Gumbel noise on the second choice
  m["use_residual"] = false;
  // DeepSpeed splits the experts over its whole tp group or not at all.
  const ParallelSpec& par = s.parallel;
  m["enable_expert_tensor_parallelism"] = par.etp > 1 && par.etp == par.tp;
  if (par.etp > 1 && par.etp < par.tp)
    ledger.unmapped("parallel.etp", "DeepSpeed splits the experts over the whole tp group (" + std::to_string(par.tp) +
                                        ") or not at all, not over " + std::to_string(par.etp) + " of its ranks");
  else
    ledger.use({"parallel.etp"});
  if (r.jitter > 0) {
    m["noisy_gate_policy"] = "Jitter";
    if (r.jitter != 0.01)
      ledger.unmapped("routing.jitter", "DeepSpeed's Jitter policy has a fixed epsilon of 0.01");
    else
      ledger.use({"routing.jitter"});
  } else {
    m["noisy_gate_policy"] = nullptr;
    ledger.use({"routing.jitter"});
  }
  return m;
}

void routing_gaps(const JobSpec& s, ExportLedger& ledger) {
  const RoutingSpec& r = s.routing;
  const MoeSpec& e = s.model.moe;
  if (r.type != "token_choice")
    ledger.unmapped("routing.type", "DeepSpeed's gates route by token choice; exported as top-k token choice");
  else
    ledger.use({"routing.type"});
  if (r.score != "softmax")
    ledger.unmapped("routing.score", "DeepSpeed's gates score with softmax only");
  else
    ledger.use({"routing.score"});
  if (e.top_k >= 2 && !r.norm_topk_prob)
    ledger.unmapped("routing.norm_topk_prob", "the top-2 gate renormalises the two gate values");
  else
    ledger.use({"routing.norm_topk_prob"});
  if (r.z_loss_coef > 0) ledger.unmapped("routing.z_loss_coef", "no router z-loss in DeepSpeed's gates");
  else ledger.use({"routing.z_loss_coef"});
  if (r.routed_scaling_factor != 1.0)
    ledger.unmapped("routing.routed_scaling_factor", "no scaling of the routed output in DeepSpeed's MoE layer");
  else
    ledger.use({"routing.routed_scaling_factor"});
  if (r.n_group > 1) ledger.unmapped("routing.n_group", "no group-limited routing in DeepSpeed's gates");
  else ledger.use({"routing.n_group"});
  ledger.use({"routing.topk_group"});
  if (r.bias_balancing.enabled)
    ledger.unmapped("routing.bias_balancing.enabled", "no aux-loss-free (expert bias) balancing in DeepSpeed's gates");
  else
    ledger.use({"routing.bias_balancing.enabled"});
  ledger.use({"routing.bias_balancing.update_rate"});
  if (r.aux_loss_coef > 0 && e.top_k == 2)
    ledger.unmapped("routing.aux_loss_coef", "the top-2 gate's l_aux counts only first choices in each expert's load "
                                             "share; MoE Studio counts all k choices (the coefficient is in training_loop)");
  else
    ledger.use({"routing.aux_loss_coef"});  // the coefficient is in training_loop
  if (e.shared_experts > 0)
    ledger.unmapped("model.moe.shared_experts",
                    "no shared experts in deepspeed.moe.layer.MoE (use_residual is PR-MoE's gated residual MLP, "
                    "not an always-on expert); add the shared expert(s) in your model code");
  else
    ledger.use({"model.moe.shared_experts"});
}

void layout_gaps(const JobSpec& s, ExportLedger& ledger) {
  const ParallelSpec& p = s.parallel;
  ledger.use({"parallel.dp", "parallel.gpus_per_node"});
  if (p.tp > 1)
    ledger.unmapped("parallel.tp", std::string("DeepSpeed itself has no tensor parallelism of attention and dense layers "
                                               "(Megatron-DeepSpeed supplies it)") +
                                       (p.etp > 1 && p.etp == p.tp ? "; the MoE layer's experts are split (enable_expert_tensor_parallelism)" : ""));
  else
    ledger.use({"parallel.tp"});
  if (p.tp > 1 && p.sequence_parallel)
    ledger.unmapped("parallel.sequence_parallel", "sequence parallelism belongs to the tensor-parallel layers, "
                                                  "which DeepSpeed itself does not have (Megatron-DeepSpeed's --sequence-parallel)");
  else
    ledger.use({"parallel.sequence_parallel"});
  if (p.pp > 1)
    ledger.unmapped("parallel.pp", "no pipeline key in ds_config: build the model as deepspeed.pipe.PipelineModule");
  else
    ledger.use({"parallel.pp"});
  if (p.vpp > 1)
    ledger.unmapped("parallel.vpp", "DeepSpeed's PipelineModule runs one stage per rank (no interleaved schedule)");
  else
    ledger.use({"parallel.vpp"});
  if (p.batch_overlap)
    ledger.unmapped("parallel.batch_overlap", "no batch-level all-to-all overlap in deepspeed.moe.layer.MoE");
  else
    ledger.use({"parallel.batch_overlap"});
  if (!p.pp_layers.empty())
    ledger.unmapped("parallel.pp_layers", "PipelineModule's partition_method balances the stages itself (\"parameters\", "
                                          "\"uniform\", or a type regex); no per-stage layer counts in ds_config");
  else
    ledger.use({"parallel.pp_layers"});
  if (p.hierarchical_a2a)
    ledger.unmapped("parallel.hierarchical_a2a", "no two-stage all-to-all in DeepSpeed's MoE layer");
  else
    ledger.use({"parallel.hierarchical_a2a"});
  if (p.overlap_chunks > 1)
    ledger.unmapped("parallel.overlap_chunks", "no chunked all-to-all/expert-compute overlap in DeepSpeed's MoE layer");
  else
    ledger.use({"parallel.overlap_chunks"});
  const PlacementSpec& pl = s.placement;
  if (pl.strategy != "uniform") ledger.unmapped("placement.strategy", "DeepSpeed places experts uniformly");
  else ledger.use({"placement.strategy"});
  if (pl.slots_per_rank > s.model.moe.num_experts / std::max<int64_t>(1, p.ep))
    ledger.unmapped("placement.slots_per_rank", "no expert replicas in DeepSpeed");
  else
    ledger.use({"placement.slots_per_rank"});
  if (!pl.map.empty()) ledger.unmapped("placement.map", "no explicit expert placement in DeepSpeed");
  else ledger.use({"placement.map"});
  if (pl.replace_every > 0) ledger.unmapped("placement.replace_every", "no expert re-placement in DeepSpeed");
  else ledger.use({"placement.replace_every"});
  ledger.use({"placement.replica_choice", "placement.stats_every"});
}

// What DeepSpeed does not define: the model around the MoE layers and the training loop.
json model_code(const JobSpec& s, ExportLedger& ledger) {
  const ModelSpec& m = s.model;
  json j = {{"vocab_size", m.vocab_size},
            {"seq_len", m.seq_len},
            {"n_layers", m.n_layers},
            {"dense_layers_first", m.moe.first_dense_layers},
            {"d_ff_dense", m.d_ff},
            {"attention", m.attention},
            {"n_heads", m.n_heads},
            {"n_kv_heads", m.n_kv_heads},
            {"head_dim", m.resolved_head_dim()},
            {"rope_theta", m.rope_theta},
            {"norm", "RMSNorm"},
            {"norm_eps", m.norm_eps},
            {"tie_embeddings", m.tie_embeddings},
            {"init_std", m.init_std},
            {"expert", {{"module", "SwiGLU MLP without biases"}, {"d_model", m.d_model}, {"d_ff", m.moe.d_expert}}}};
  if (m.moe.shared_experts > 0)
    j["shared_experts"] = {{"count", m.moe.shared_experts}, {"d_ff", m.moe.d_shared_expert}};
  if (m.attention == "mla")
    j["mla"] = {{"q_lora_rank", m.mla.q_lora_rank},
                {"kv_lora_rank", m.mla.kv_lora_rank},
                {"qk_nope_head_dim", m.mla.qk_nope_head_dim},
                {"qk_rope_head_dim", m.mla.qk_rope_head_dim},
                {"v_head_dim", m.mla.v_head_dim}};
  if (s.parallel.pp > 1) j["pipeline_stages"] = s.parallel.pp;
  if (m.moe.router_init != "normal")
    ledger.unmapped("model.moe.router_init", "DeepSpeed's gate initialises like every linear layer; exported as normal");
  else
    ledger.use({"model.moe.router_init"});
  ledger.use({"model.vocab_size", "model.seq_len", "model.n_layers", "model.moe.first_dense_layers", "model.d_ff",
              "model.attention", "model.n_heads", "model.n_kv_heads", "model.head_dim", "model.rope_theta",
              "model.norm_eps", "model.tie_embeddings", "model.init_std", "model.moe.d_expert",
              "model.moe.d_shared_expert", "model.mla.q_lora_rank", "model.mla.kv_lora_rank",
              "model.mla.qk_nope_head_dim", "model.mla.qk_rope_head_dim", "model.mla.v_head_dim"});
  return j;
}

json training_loop(const JobSpec& s, ExportLedger& ledger) {
  const TrainSpec& t = s.train;
  json j = {{"loss", "lm_loss + " + json(s.routing.aux_loss_coef).dump() +
                         " * sum of the MoE layers' l_aux (MoE.forward returns output, l_aux, exp_counts)"},
            {"optimizer_param_groups",
             "deepspeed.moe.utils.split_params_into_different_moe_groups_for_optimizer(param_groups)"},
            {"seed", t.seed}};
  if (t.eval_every > 0) j["eval_every"] = t.eval_every;
  if (s.runtime.checkpoint_every > 0) j["checkpoint_every"] = s.runtime.checkpoint_every;
  ledger.use({"train.seed", "train.eval_every", "runtime.checkpoint_every"});
  if (t.data.kind == "text")
    ledger.unmapped("train.data.kind", "MoE Studio's byte-level text corpus: supply your own dataset and tokenizer");
  else
    ledger.use({"train.data.kind"});
  ledger.use({"train.data.path", "train.data.val_fraction"});
  if (s.runtime.backend != "cuda")
    ledger.unmapped("runtime.backend", "DeepSpeed's MoE layer trains on GPUs; the export assumes them");
  else
    ledger.use({"runtime.backend"});
  if (s.runtime.deterministic)
    ledger.unmapped("runtime.deterministic", "no deterministic-arithmetic switch in ds_config; "
                                             "set torch.use_deterministic_algorithms(True) in your script");
  else
    ledger.use({"runtime.deterministic"});
  ledger.use({"runtime.threads", "cluster.hardware", "cluster.nodes"});
  // Where MoE Studio submits (moe run --slurm); the engine's own launcher decides that.
  ledger.use({"cluster.slurm.partition", "cluster.slurm.account", "cluster.slurm.time_limit"});
  return j;
}

}  // namespace

EngineExport export_deepspeed(const JobSpec& s) {
  ExportLedger ledger(s);
  ledger.use({"schema", "name", "comment"});
  json doc;
  doc["source"] = "MoE Studio spec '" + s.name + "' (moe export deepspeed); key names as in " + kDeepSpeedVersion;
  doc["ds_config"] = ds_config(s, ledger);
  doc["moe_layer"] = moe_layer(s, ledger);
  routing_gaps(s, ledger);
  layout_gaps(s, ledger);
  doc["model_code"] = model_code(s, ledger);
  doc["training_loop"] = training_loop(s, ledger);
  json gaps = json::array();
  for (const auto& g : ledger.unmapped_settings())
    gaps.push_back({{"field", g.field}, {"value", json::parse(g.value, nullptr, false)}, {"why", g.why}});
  doc["not_exported"] = gaps;
  return std::move(ledger).finish("deepspeed", doc.dump(2) + "\n");
}

}  // namespace moe
