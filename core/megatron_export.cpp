// A spec as Megatron-Core's pretrain_gpt.py command line (engine_export.h). The flag names, types
// and choices are those of Megatron-LM's megatron/training/arguments.py at the version named in
// kMegatronVersion (docs/engine-export.md cites the lines).
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine_export.h"
#include "engine_export_ledger.h"
#include "pipeline_schedule.h"

namespace moe {
namespace {

// The parser the flags were checked against (docs/engine-export.md quotes its lines).
constexpr const char* kMegatronVersion = "Megatron-LM main at commit 000c4ac (the Megatron-Core 0.14 line)";

// Twelve significant digits: 2.2e-4 × 0.1 prints as 2.2e-05, not 2.2000000000000003e-05.
std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.12g", x);
  return buf;
}
std::string num(int64_t x) { return std::to_string(x); }

// The flags of one section of the command line, with a comment heading it.
struct Section {
  std::string title;
  std::vector<std::pair<std::string, std::string>> flags;  // flag, value ("" for a switch)
  void add(std::string flag, std::string value = "") { flags.emplace_back(std::move(flag), std::move(value)); }
};

std::string joined(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

Section model_section(const JobSpec& s, ExportLedger& ledger) {
  const ModelSpec& m = s.model;
  Section sec{"model", {}};
  sec.add("--num-layers", num(m.n_layers));
  sec.add("--hidden-size", num(m.d_model));
  sec.add("--ffn-hidden-size", num(m.d_ff > 0 ? m.d_ff : m.moe.d_expert));
  sec.add("--num-attention-heads", num(m.n_heads));
  sec.add("--seq-length", num(m.seq_len));
  sec.add("--max-position-embeddings", num(m.seq_len));
  ledger.use({"model.n_layers", "model.d_model", "model.d_ff", "model.n_heads", "model.seq_len"});
  if (m.attention == "mla") {
    sec.add("--multi-latent-attention");
    if (m.mla.q_lora_rank > 0) sec.add("--q-lora-rank", num(m.mla.q_lora_rank));
    sec.add("--kv-lora-rank", num(m.mla.kv_lora_rank));
    sec.add("--qk-head-dim", num(m.mla.qk_nope_head_dim));
    sec.add("--qk-pos-emb-head-dim", num(m.mla.qk_rope_head_dim));
    sec.add("--v-head-dim", num(m.mla.v_head_dim));
    ledger.use({"model.attention", "model.mla.q_lora_rank", "model.mla.kv_lora_rank", "model.mla.qk_nope_head_dim",
                "model.mla.qk_rope_head_dim", "model.mla.v_head_dim", "model.n_kv_heads", "model.head_dim"});
  } else {
    if (m.n_kv_heads < m.n_heads) {
      sec.add("--group-query-attention");
      sec.add("--num-query-groups", num(m.n_kv_heads));
    }
    if (m.head_dim > 0 && m.head_dim != m.d_model / m.n_heads) sec.add("--kv-channels", num(m.head_dim));
    ledger.use({"model.attention", "model.n_kv_heads", "model.head_dim", "model.mla.q_lora_rank",
                "model.mla.kv_lora_rank", "model.mla.qk_nope_head_dim", "model.mla.qk_rope_head_dim",
                "model.mla.v_head_dim"});
  }
  sec.add("--position-embedding-type", "rope");
  sec.add("--rotary-base", num(static_cast<int64_t>(m.rope_theta)));
  if (static_cast<double>(static_cast<int64_t>(m.rope_theta)) != m.rope_theta)
    ledger.unmapped("model.rope_theta", "--rotary-base takes an integer; rounded down");
  sec.add("--normalization", "RMSNorm");
  sec.add("--norm-epsilon", num(m.norm_eps));
  sec.add("--swiglu");
  sec.add("--disable-bias-linear");
  if (!m.tie_embeddings) sec.add("--untie-embeddings-and-output-weights");
  sec.add("--init-method-std", num(m.init_std));
  ledger.use({"model.rope_theta", "model.norm_eps", "model.tie_embeddings", "model.init_std"});
  if (m.moe.router_init != "normal")
    ledger.unmapped("model.moe.router_init", "Megatron initialises the router like every matrix; exported as normal");
  else
    ledger.use({"model.moe.router_init"});
  return sec;
}

Section moe_section(const JobSpec& s, ExportLedger& ledger) {
  const MoeSpec& e = s.model.moe;
  const RoutingSpec& r = s.routing;
  Section sec{"mixture of experts", {}};
  sec.add("--num-experts", num(e.num_experts));
  sec.add("--moe-ffn-hidden-size", num(e.d_expert));
  sec.add("--moe-router-topk", num(e.top_k));
  ledger.use({"model.moe.num_experts", "model.moe.d_expert", "model.moe.top_k"});
  if (e.shared_experts > 0) sec.add("--moe-shared-expert-intermediate-size", num(e.shared_experts * e.d_shared_expert));
  ledger.use({"model.moe.shared_experts", "model.moe.d_shared_expert"});
  if (e.first_dense_layers > 0)  // a Python list expression, as Megatron's --moe-layer-freq accepts
    sec.add("--moe-layer-freq", "([0]*" + num(e.first_dense_layers) + "+[1]*" + num(s.model.moe_layers()) + ")");
  ledger.use({"model.moe.first_dense_layers"});

  if (r.type != "token_choice")
    ledger.unmapped("routing.type", "Megatron-Core routes by token choice only; exported as top-" +
                                        num(e.top_k) + " token choice, a different model");
  else
    ledger.use({"routing.type"});
  sec.add("--moe-router-score-function", r.score);
  ledger.use({"routing.score"});
  if (r.score == "softmax" && !r.norm_topk_prob) sec.add("--moe-router-pre-softmax");
  if (r.score == "sigmoid" && !r.norm_topk_prob && e.top_k > 1)
    ledger.unmapped("routing.norm_topk_prob",
                    "Megatron-Core always renormalises sigmoid top-k scores (k > 1); exported renormalised");
  else
    ledger.use({"routing.norm_topk_prob"});
  if (r.routed_scaling_factor != 1.0) sec.add("--moe-router-topk-scaling-factor", num(r.routed_scaling_factor));
  if (r.n_group > 1) {
    sec.add("--moe-router-num-groups", num(r.n_group));
    sec.add("--moe-router-group-topk", num(r.topk_group));
  }
  ledger.use({"routing.routed_scaling_factor", "routing.n_group", "routing.topk_group"});

  sec.add("--moe-router-load-balancing-type", r.aux_loss_coef > 0 ? "aux_loss" : "none");
  if (r.aux_loss_coef > 0) sec.add("--moe-aux-loss-coeff", num(r.aux_loss_coef));
  if (r.z_loss_coef > 0) sec.add("--moe-z-loss-coeff", num(r.z_loss_coef));
  if (r.jitter > 0) sec.add("--moe-input-jitter-eps", num(r.jitter));
  ledger.use({"routing.aux_loss_coef", "routing.z_loss_coef", "routing.jitter"});
  if (r.bias_balancing.enabled) {
    sec.add("--moe-router-enable-expert-bias");
    sec.add("--moe-router-bias-update-rate", num(r.bias_balancing.update_rate));
  }
  ledger.use({"routing.bias_balancing.enabled", "routing.bias_balancing.update_rate"});

  if (r.dropless()) {
    ledger.use({"routing.capacity_factor", "routing.drop_policy"});  // dropless: Megatron's default
  } else {
    sec.add("--moe-expert-capacity-factor", num(r.capacity_factor));
    sec.add("--moe-token-drop-policy", r.drop_policy == "probability" ? "probs" : "position");
    ledger.use({"routing.capacity_factor", "routing.drop_policy"});
  }
  sec.add("--moe-token-dispatcher-type", "alltoall");
  if (s.runtime.dtype == "bf16") sec.add("--moe-grouped-gemm");  // Megatron's grouped GEMM is bf16 only
  return sec;
}

Section parallel_section(const JobSpec& s, ExportLedger& ledger) {
  const ParallelSpec& p = s.parallel;
  Section sec{"parallelism (Megatron's data-parallel size is dp·ep = " + num(p.dp * p.ep) + ")", {}};
  sec.add("--tensor-model-parallel-size", num(p.tp));
  if (p.tp > 1 && p.sequence_parallel) sec.add("--sequence-parallel");
  sec.add("--pipeline-model-parallel-size", num(p.pp));
  sec.add("--expert-model-parallel-size", num(p.ep));
  sec.add("--expert-tensor-parallel-size", num(p.etp));  // explicit: Megatron's default is tp
  ledger.use({"parallel.dp", "parallel.tp", "parallel.pp", "parallel.ep", "parallel.gpus_per_node",
              "parallel.sequence_parallel", "parallel.etp"});
  const int64_t L = s.model.n_layers;
  // The studio's split (parallel.pp_layers, or the even one: core/pipeline_schedule.h).
  const std::vector<int64_t> ours = layers_per_stage(L, p.pp, p.pp_layers);
  if (p.pp > 1 && !p.pp_layers.empty()) {
    // Megatron takes the first and last stages' counts and splits the rest evenly.
    const int64_t first = ours.front(), last = ours.back(), middle = L - first - last;
    sec.add("--decoder-first-pipeline-num-layers", num(first));
    sec.add("--decoder-last-pipeline-num-layers", num(last));
    std::vector<int64_t> megatron = {first};
    for (int64_t i = 0; i < p.pp - 2; ++i) megatron.push_back((i + 1) * middle / (p.pp - 2) - i * middle / (p.pp - 2));
    megatron.push_back(last);
    if (megatron == ours)
      ledger.use({"parallel.pp_layers"});
    else
      ledger.unmapped("parallel.pp_layers", "Megatron splits the middle stages evenly: its first/last-stage flags give " +
                                                joined(megatron) + " for the spec's " + joined(ours));
  } else if (p.pp > 1 && L % p.pp != 0) {
    ledger.use({"parallel.pp_layers"});
    // Megatron splits evenly after the first and last stages' own counts.
    const int64_t mid = L / p.pp, rest = L - mid * (p.pp - 2);
    const int64_t first = rest / 2, last = rest - first;
    sec.add("--decoder-first-pipeline-num-layers", num(first));
    sec.add("--decoder-last-pipeline-num-layers", num(last));
    std::vector<int64_t> megatron(static_cast<size_t>(p.pp), mid);
    megatron.front() = first, megatron.back() = last;
    ledger.unmapped("model.n_layers", "MoE Studio splits " + num(L) + " layers over " + num(p.pp) + " stages as " +
                                          joined(ours) + "; Megatron's first/last-stage flags give " + joined(megatron));
  } else {
    ledger.use({"parallel.pp_layers"});
  }
  if (p.hierarchical_a2a)
    ledger.unmapped("parallel.hierarchical_a2a",
                    "no two-stage (node, then GPU) all-to-all in the alltoall dispatcher; "
                    "--moe-token-dispatcher-type flex with --moe-enable-deepep is the closest (DeepEP's NVLink/RDMA kernels)");
  else
    ledger.use({"parallel.hierarchical_a2a"});
  if (p.overlap_chunks > 1)
    ledger.unmapped("parallel.overlap_chunks", "no chunked all-to-all/expert-compute overlap flag; not exported");
  else
    ledger.use({"parallel.overlap_chunks"});
  // Interleaving: Megatron takes vpp chunks of L/(pp·vpp) layers; uneven chunks need a layout string.
  if (p.vpp > 1 && p.pp > 1 && p.pp_layers.empty() && L % (p.pp * p.vpp) == 0) {
    sec.add("--num-virtual-stages-per-pipeline-rank", num(p.vpp));
    ledger.use({"parallel.vpp"});
  } else if (p.vpp > 1) {
    ledger.unmapped("parallel.vpp", num(p.pp) + " × " + num(p.vpp) + " virtual stages do not divide " + num(L) +
                                        " layers evenly: write the chunks as --pipeline-model-parallel-layout; not exported");
  } else {
    ledger.use({"parallel.vpp"});
  }
  // Recomputation: Megatron's full granularity, uniform method, recomputes units of N layers from
  // their inputs; one layer per unit is the spec's full, one pipeline chunk per unit its stage
  // (Megatron recomputes every unit, also where the forward just ran; moe-runtime skips those).
  const int64_t chunk_layers = L / (p.pp * p.vpp);
  if (s.train.recompute == "full" || (s.train.recompute == "stage" && p.pp_layers.empty() && L % (p.pp * p.vpp) == 0)) {
    sec.add("--recompute-granularity", "full");
    sec.add("--recompute-method", "uniform");
    sec.add("--recompute-num-layers", num(s.train.recompute == "full" ? 1 : chunk_layers));
    ledger.use({"train.recompute"});
  } else if (s.train.recompute == "stage") {
    ledger.unmapped("train.recompute", "stage: the pipeline chunks are uneven, so no --recompute-num-layers unit is a chunk; "
                                       "--recompute-granularity full --recompute-method uniform --recompute-num-layers 1 "
                                       "recomputes layer by layer instead; not exported");
  } else {
    ledger.use({"train.recompute"});
  }
  // Batch-level overlap (MCore 0.14): its wgrad delay lets a backward's all-to-all hide behind the
  // paired forward; Megatron asserts expert parallelism and the alltoall/flex dispatcher.
  if (p.batch_overlap && p.ep > 1) {
    sec.add("--overlap-moe-expert-parallel-comm");
    sec.add("--delay-wgrad-compute");
    ledger.use({"parallel.batch_overlap"});
  } else if (p.batch_overlap) {
    ledger.unmapped("parallel.batch_overlap", "with parallel.ep 1 there is no all-to-all to overlap; Megatron refuses "
                                              "--overlap-moe-expert-parallel-comm without expert parallelism");
  } else {
    ledger.use({"parallel.batch_overlap"});
  }
  return sec;
}

void placement_gaps(const JobSpec& s, ExportLedger& ledger) {
  const PlacementSpec& pl = s.placement;
  const int64_t uniform_slots = s.model.moe.num_experts / std::max<int64_t>(1, s.parallel.ep);
  if (pl.strategy != "uniform")
    ledger.unmapped("placement.strategy", "Megatron-Core places experts uniformly (E/ep contiguous experts per EP rank)");
  else
    ledger.use({"placement.strategy"});
  if (pl.slots_per_rank > uniform_slots)
    ledger.unmapped("placement.slots_per_rank", "no expert replicas in Megatron-Core; each expert has one copy per EP group");
  else
    ledger.use({"placement.slots_per_rank"});
  if (!pl.map.empty()) ledger.unmapped("placement.map", "no explicit expert placement in Megatron-Core");
  else ledger.use({"placement.map"});
  if (pl.replace_every > 0)
    ledger.unmapped("placement.replace_every", "no expert re-placement during training in Megatron-Core");
  else
    ledger.use({"placement.replace_every"});
  ledger.use({"placement.replica_choice", "placement.stats_every"});  // MoE Studio's recording and replicas only
}

Section training_section(const JobSpec& s, ExportLedger& ledger) {
  const TrainSpec& t = s.train;
  Section sec{"training", {}};
  sec.add("--micro-batch-size", num(t.micro_batch));
  sec.add("--global-batch-size", num(t.global_batch(s.parallel)));
  sec.add("--train-iters", num(t.steps));
  sec.add("--optimizer", "adam");  // Megatron's adam is AdamW (decoupled weight decay)
  sec.add("--lr", num(t.lr));
  sec.add("--min-lr", num(t.lr * t.min_lr_ratio));
  sec.add("--lr-decay-style", "cosine");
  sec.add("--lr-warmup-iters", num(t.warmup_steps));
  sec.add("--lr-decay-iters", num(t.steps));
  sec.add("--weight-decay", num(t.weight_decay));
  sec.add("--adam-beta1", num(t.adam_beta1));
  sec.add("--adam-beta2", num(t.adam_beta2));
  sec.add("--adam-eps", num(t.adam_eps));
  sec.add("--clip-grad", num(t.grad_clip));
  sec.add("--seed", num(t.seed));
  ledger.use({"train.micro_batch", "train.grad_accum", "train.steps", "train.lr", "train.min_lr_ratio",
              "train.warmup_steps", "train.weight_decay", "train.adam_beta1", "train.adam_beta2", "train.adam_eps",
              "train.grad_clip", "train.seed"});
  // MoE Studio's eval_every 0 validates only at the end; Megatron's default interval is 1000.
  sec.add("--eval-interval", num(t.eval_every > 0 ? t.eval_every : t.steps));
  ledger.use({"train.eval_every"});

  sec.add("--tokenizer-type", "NullTokenizer");
  sec.add("--vocab-size", num(s.model.vocab_size - 1));  // NullTokenizer adds the end-of-document id
  ledger.use({"model.vocab_size"});
  sec.add("--mock-data");
  if (t.data.kind == "synthetic") {
    ledger.use({"train.data.kind", "train.data.path", "train.data.val_fraction"});
  } else {
    const int64_t val = static_cast<int64_t>(t.data.val_fraction * 1000 + 0.5);
    ledger.unmapped("train.data.kind", "MoE Studio's byte-level text corpus has no Megatron counterpart; exported as "
                                       "--mock-data: replace it with --data-path PREFIX (a Megatron indexed dataset), "
                                       "your tokenizer and --split " + num(1000 - val) + "," + num(val) + ",0");
    if (!t.data.path.empty()) ledger.unmapped("train.data.path", "a plain text file; Megatron reads indexed datasets");
    else ledger.use({"train.data.path"});
    ledger.use({"train.data.val_fraction"});
  }
  return sec;
}

Section runtime_section(const JobSpec& s, ExportLedger& ledger) {
  const RuntimeSpec& rt = s.runtime;
  Section sec{"precision, logging, checkpoints", {}};
  if (rt.dtype == "bf16") sec.add("--bf16");
  if (rt.fp8 != "off") sec.add("--fp8-format", rt.fp8);  // Transformer Engine's FP8 Linear layers
  ledger.use({"runtime.dtype", "runtime.fp8"});
  if (rt.backend != "cuda")
    ledger.unmapped("runtime.backend", "Megatron-Core trains on CUDA GPUs only; the export assumes GPUs");
  else
    ledger.use({"runtime.backend"});
  ledger.use({"runtime.threads", "cluster.hardware", "cluster.nodes"});  // CPU threads; the cost model's profile; hosts
  // Where MoE Studio submits (moe run --slurm); the engine's own launcher decides that.
  ledger.use({"cluster.slurm.partition", "cluster.slurm.account", "cluster.slurm.time_limit"});
  if (rt.deterministic) sec.add("--deterministic-mode");
  ledger.use({"runtime.deterministic"});
  sec.add("--log-interval", num(rt.metrics_every));
  ledger.use({"runtime.metrics_every"});
  if (rt.checkpoint_every > 0) {
    sec.add("--save-interval", num(rt.checkpoint_every));
    sec.add("--save", "checkpoints");
  }
  ledger.use({"runtime.checkpoint_every"});
  return sec;
}

std::string shell_word(const std::string& w) {
  for (char c : w)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ',' || c == '/' ||
          c == '+'))
      return "'" + w + "'";  // values here never hold a quote
  return w;
}

}  // namespace

EngineExport export_megatron(const JobSpec& s) {
  ExportLedger ledger(s);
  ledger.use({"schema", "name", "comment"});
  std::vector<Section> sections = {model_section(s, ledger), moe_section(s, ledger), parallel_section(s, ledger),
                                   training_section(s, ledger), runtime_section(s, ledger)};
  placement_gaps(s, ledger);

  const ParallelSpec& p = s.parallel;
  const int64_t world = p.world_size(), gpn = std::max<int64_t>(1, p.gpus_per_node);
  std::ostringstream out;
  out << "#!/usr/bin/env bash\n"
      << "# Megatron-Core pretrain_gpt.py for the MoE Studio spec '" << s.name << "' (moe export megatron;\n"
      << "# flag names as in " << kMegatronVersion << ", megatron/training/arguments.py).\n"
      << "# " << world << " GPUs = dp " << p.dp << " x tp " << p.tp << " x pp " << p.pp << " x ep " << p.ep
      << ", " << (world + gpn - 1) / gpn << " node(s) x " << gpn << " GPUs; rank order tp, ep, dp, pp\n"
      << "# (Megatron's default order tp-cp-ep-dp-pp).\n";
  const auto& gaps = ledger.unmapped_settings();
  if (gaps.empty()) {
    out << "# Every setting of the spec is exported.\n";
  } else {
    out << "#\n# Not exported as designed (no Megatron-Core counterpart):\n";
    for (const auto& g : gaps) out << "#   " << g.field << " = " << g.value << ": " << g.why << "\n";
  }
  out << "# Run on each node with your launcher's --node-rank/--master-addr; extra flags pass through.\n"
      << "set -euo pipefail\n";
  if (p.tp > 1) out << "export CUDA_DEVICE_MAX_CONNECTIONS=1  # Megatron requires it with tp > 1 (before Blackwell)\n";
  out
      << "args=(\n";
  for (const Section& sec : sections) {
    out << "  # " << sec.title << "\n";
    for (const auto& [flag, value] : sec.flags) {
      out << "  " << flag;
      if (!value.empty()) out << " " << shell_word(value);
      out << "\n";
    }
  }
  out << ")\n"
      << "exec torchrun --nnodes " << (world + gpn - 1) / gpn << " --nproc-per-node " << std::min(world, gpn)
      << " pretrain_gpt.py \"${args[@]}\" \"$@\"\n";
  return std::move(ledger).finish("megatron", out.str());
}

}  // namespace moe
