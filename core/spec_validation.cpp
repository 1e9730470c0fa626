#include "spec_validation.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <regex>

#include "cost_model.h"
#include "error.h"
#include "expert_placement.h"
#include "spec_choices.h"

namespace moe {

std::string Diagnostic::text() const {
  return std::string(severity == Severity::error ? "error: " : "warning: ") + path + ": " + message;
}

bool has_errors(const std::vector<Diagnostic>& ds) {
  return std::any_of(ds.begin(), ds.end(), [](const Diagnostic& d) { return d.severity == Severity::error; });
}

void throw_if_invalid(const std::vector<Diagnostic>& ds) {
  for (const auto& d : ds)
    if (d.severity == Severity::error) throw Error(d.path + ": " + d.message);
}

namespace {

std::string str(int64_t v) { return std::to_string(v); }
std::string str(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

class Checker {
 public:
  std::vector<Diagnostic> out;

  void error(const std::string& path, const std::string& msg) { out.push_back({Severity::error, path, msg}); }
  void warning(const std::string& path, const std::string& msg) { out.push_back({Severity::warning, path, msg}); }

  // Sizes: at least `min`, at most `max` (anything larger is a typo, not a model).
  bool range(const std::string& path, int64_t v, int64_t min, int64_t max) {
    if (v < min) {
      error(path, str(v) + (min == 1 ? " must be positive" : " must be at least " + str(min)));
      return false;
    }
    if (v > max) {
      error(path, str(v) + " is absurdly large (at most " + str(max) + ")");
      return false;
    }
    return true;
  }
  bool range(const std::string& path, double v, double min, double max, bool min_exclusive = false) {
    if (v < min || (min_exclusive && v == min)) {
      error(path, str(v) + (min_exclusive ? " must be greater than " : " must be at least ") + str(min));
      return false;
    }
    if (v > max) {
      error(path, str(v) + " is out of range (at most " + str(max) + ")");
      return false;
    }
    return true;
  }
  // A field with a closed set of values (spec_choices.h).
  bool one_of(const std::string& path, const std::string& v) {
    if (is_choice(path, v)) return true;
    error(path, "'" + v + "' is not one of: " + choice_names(path));
    return false;
  }
  bool has_error_at(const std::string& prefix) const {
    for (const Diagnostic& d : out)
      if (d.severity == Severity::error && d.path.rfind(prefix, 0) == 0) return true;
    return false;
  }
};

constexpr int64_t kMaxDim = int64_t{1} << 20;  // 1M: far beyond any model's width
constexpr int64_t kMaxCount = int64_t{1} << 24;

void check_model(const ModelSpec& m, Checker& c) {
  bool ok = true;
  ok &= c.range("model.vocab_size", m.vocab_size, 1, kMaxCount);
  ok &= c.range("model.seq_len", m.seq_len, 1, kMaxCount);
  ok &= c.range("model.d_model", m.d_model, 1, kMaxDim);
  ok &= c.range("model.n_layers", m.n_layers, 1, 100000);
  ok &= c.range("model.n_heads", m.n_heads, 1, 65536);
  ok &= c.range("model.n_kv_heads", m.n_kv_heads, 1, 65536);
  ok &= c.range("model.head_dim", m.head_dim, 0, kMaxDim);
  ok &= c.range("model.d_ff", m.d_ff, 0, kMaxDim);
  c.range("model.rope_theta", m.rope_theta, 0.0, 1e12, true);
  c.range("model.norm_eps", m.norm_eps, 0.0, 1.0, true);
  c.range("model.init_std", m.init_std, 0.0, 10.0, true);
  c.one_of("model.attention", m.attention);
  if (m.attention == "mla") {
    c.range("model.mla.q_lora_rank", m.mla.q_lora_rank, 0, kMaxDim);
    c.range("model.mla.kv_lora_rank", m.mla.kv_lora_rank, 1, kMaxDim);
    c.range("model.mla.qk_nope_head_dim", m.mla.qk_nope_head_dim, 1, kMaxDim);
    c.range("model.mla.qk_rope_head_dim", m.mla.qk_rope_head_dim, 1, kMaxDim);
    c.range("model.mla.v_head_dim", m.mla.v_head_dim, 1, kMaxDim);
  }
  if (ok && m.attention == "gqa") {
    if (m.head_dim == 0 && m.d_model % m.n_heads != 0)
      c.error("model.d_model", str(m.d_model) + " is not divisible by model.n_heads (" + str(m.n_heads) +
                                   "); set model.head_dim or change the sizes");
    else if (m.resolved_head_dim() % 2 != 0)
      c.error("model.head_dim", str(m.resolved_head_dim()) + " must be even (rotary embedding rotates pairs)");
    if (m.n_heads % m.n_kv_heads != 0)
      c.error("model.n_kv_heads", str(m.n_kv_heads) + " does not divide model.n_heads (" + str(m.n_heads) + ")");
  }

  const MoeSpec& e = m.moe;
  bool moe_ok = true;
  moe_ok &= c.range("model.moe.num_experts", e.num_experts, 1, 1 << 16);
  moe_ok &= c.range("model.moe.top_k", e.top_k, 1, 1 << 16);
  moe_ok &= c.range("model.moe.d_expert", e.d_expert, 1, kMaxDim);
  moe_ok &= c.range("model.moe.shared_experts", e.shared_experts, 0, 1024);
  moe_ok &= c.range("model.moe.d_shared_expert", e.d_shared_expert, 0, kMaxDim);
  moe_ok &= c.range("model.moe.first_dense_layers", e.first_dense_layers, 0, 100000);
  c.one_of("model.moe.router_init", e.router_init);
  if (!moe_ok) return;
  if (e.top_k > e.num_experts)
    c.error("model.moe.top_k", str(e.top_k) + " exceeds model.moe.num_experts (" + str(e.num_experts) + ")");
  if (e.shared_experts > 0 && e.d_shared_expert == 0)
    c.error("model.moe.d_shared_expert", "must be positive when model.moe.shared_experts is " +
                                             str(e.shared_experts));
  if (ok && e.first_dense_layers >= m.n_layers)
    c.error("model.moe.first_dense_layers", str(e.first_dense_layers) +
                                                " leaves no MoE layer (model.n_layers is " + str(m.n_layers) + ")");
  if (e.first_dense_layers > 0 && m.d_ff == 0)
    c.error("model.d_ff", "must be positive when model.moe.first_dense_layers is " + str(e.first_dense_layers));
}

void check_routing(const JobSpec& s, Checker& c) {
  const RoutingSpec& r = s.routing;
  c.one_of("routing.type", r.type);
  c.one_of("routing.score", r.score);
  c.one_of("routing.drop_policy", r.drop_policy);
  c.range("routing.capacity_factor", r.capacity_factor, 0.0, 1e4);
  c.range("routing.aux_loss_coef", r.aux_loss_coef, 0.0, 1e3);
  c.range("routing.z_loss_coef", r.z_loss_coef, 0.0, 1e3);
  c.range("routing.jitter", r.jitter, 0.0, 1.0);
  c.range("routing.routed_scaling_factor", r.routed_scaling_factor, 0.0, 1e3, true);
  c.range("routing.bias_balancing.update_rate", r.bias_balancing.update_rate, 0.0, 10.0);
  const bool expert_choice = is_expert_choice(r);
  if (expert_choice && r.capacity_factor <= 0)
    c.error("routing.capacity_factor", "expert_choice needs a capacity factor > 0 (each expert takes "
                                       "capacity_factor · tokens · top_k / num_experts tokens)");
  if (r.capacity_factor > 0 && r.capacity_factor < 1.0 && !expert_choice)
    c.warning("routing.capacity_factor", str(r.capacity_factor) + " < 1 drops tokens even when the load is perfectly balanced");
  if (c.range("routing.n_group", r.n_group, 1, 1 << 16) && c.range("routing.topk_group", r.topk_group, 1, 1 << 16)) {
    const int64_t E = s.model.moe.num_experts;
    if (E > 0 && E % r.n_group != 0)
      c.error("routing.n_group", str(r.n_group) + " does not divide model.moe.num_experts (" + str(E) + ")");
    else if (r.topk_group > r.n_group)
      c.error("routing.topk_group", str(r.topk_group) + " exceeds routing.n_group (" + str(r.n_group) + ")");
    else if (r.n_group > 1 && E > 0 && s.model.moe.top_k > r.topk_group * (E / r.n_group))
      c.error("routing.topk_group", "the " + str(r.topk_group) + " selected group(s) hold fewer than model.moe.top_k (" +
                                        str(s.model.moe.top_k) + ") experts");
  }
  if (r.bias_balancing.enabled && r.aux_loss_coef > 0)
    c.warning("routing.bias_balancing.enabled", "aux-loss-free balancing is on together with an aux loss (" +
                                                    str(r.aux_loss_coef) + "); DeepSeek-V3 uses a tiny or zero aux loss with it");
}

void check_parallel(const JobSpec& s, Checker& c) {
  const ParallelSpec& p = s.parallel;
  bool ok = true;
  ok &= c.range("parallel.dp", p.dp, 1, kMaxCount);
  ok &= c.range("parallel.tp", p.tp, 1, 4096);
  ok &= c.range("parallel.pp", p.pp, 1, 4096);
  ok &= c.range("parallel.ep", p.ep, 1, 1 << 16);
  ok &= c.range("parallel.gpus_per_node", p.gpus_per_node, 1, 4096);
  ok &= c.range("parallel.overlap_chunks", p.overlap_chunks, 1, 1024);
  ok &= c.range("parallel.etp", p.etp, 1, 4096);
  ok &= c.range("parallel.vpp", p.vpp, 1, 4096);
  if (!ok) return;
  // In double: the int64 product of four in-range sizes can overflow (dp 2^24 · tp · pp · ep 2^16).
  const double world = double(p.dp) * double(p.tp) * double(p.pp) * double(p.ep);
  if (world > double(kMaxCount)) {
    c.error("parallel", "world size dp·tp·pp·ep = " + str(world) + " is absurdly large");
    return;
  }
  const ModelSpec& m = s.model;
  if (m.moe.num_experts > 0 && m.moe.num_experts % p.ep != 0)
    c.error("parallel.ep", str(p.ep) + " does not divide model.moe.num_experts (" + str(m.moe.num_experts) + ")");
  if (p.tp > 1) {
    if (m.n_heads > 0 && m.n_heads % p.tp != 0)
      c.error("parallel.tp", str(p.tp) + " does not divide model.n_heads (" + str(m.n_heads) + ")");
    if (p.tp > p.gpus_per_node)
      c.warning("parallel.tp", str(p.tp) + " exceeds parallel.gpus_per_node (" + str(p.gpus_per_node) +
                                   "): tensor parallelism across nodes is slow");
  }
  if (p.etp > p.tp || p.tp % p.etp != 0)
    c.error("parallel.etp", str(p.etp) + " must divide parallel.tp (" + str(p.tp) +
                                "): each expert is split over etp of the tp ranks (1: whole experts on every tp rank)");
  else if (p.etp > 1 && m.moe.d_expert > 0 && m.moe.d_expert % p.etp != 0)
    c.error("parallel.etp", str(p.etp) + " does not divide model.moe.d_expert (" + str(m.moe.d_expert) + ")");
  if (p.sequence_parallel && p.tp == 1)
    c.warning("parallel.sequence_parallel", "has no effect with parallel.tp 1: there is no tensor-parallel group to share the tokens");
  if (m.n_layers > 0) {
    if (p.pp > m.n_layers)
      c.error("parallel.pp", str(p.pp) + " exceeds model.n_layers (" + str(m.n_layers) + "): a stage would be empty");
    else if (m.n_layers % p.pp != 0 && p.pp_layers.empty())
      c.warning("parallel.pp", str(p.pp) + " does not divide model.n_layers (" + str(m.n_layers) + "): stages are uneven");
  }
  if (p.vpp > 1) {  // Megatron's interleaved schedule: vpp chunks per rank, each of ≥ 1 layer
    if (p.pp == 1)
      c.error("parallel.vpp", str(p.vpp) + " virtual stages need pipeline parallelism (parallel.pp > 1)");
    else if (!p.pp_layers.empty())
      c.error("parallel.vpp", str(p.vpp) + " virtual stages with an explicit parallel.pp_layers split: give one or the other");
    else if (m.n_layers > 0 && p.pp * p.vpp > m.n_layers)
      c.error("parallel.vpp", str(p.pp) + " stages × " + str(p.vpp) + " virtual stages exceed model.n_layers (" +
                                  str(m.n_layers) + "): a chunk would be empty");
    else if (m.n_layers > 0 && m.n_layers % (p.pp * p.vpp) != 0)
      c.warning("parallel.vpp", str(p.pp) + " × " + str(p.vpp) + " virtual stages do not divide model.n_layers (" +
                                    str(m.n_layers) + "): the chunks are uneven (Megatron needs --pipeline-model-parallel-layout)");
  }
  if (p.batch_overlap && s.train.grad_accum < 2 && p.pp == 1)
    c.warning("parallel.batch_overlap", "needs two micro-batches in flight to pair one's all-to-all with the other's "
                                        "computation; with train.grad_accum " + str(s.train.grad_accum) + " nothing overlaps");
  if (p.pp > 1 && s.train.grad_accum >= 1 && s.train.grad_accum < p.pp)
    c.warning("train.grad_accum", str(s.train.grad_accum) + " micro-batch(es) for " + str(p.pp) +
                                      " pipeline stages: under 1F1B each stage idles " +
                                      str(int64_t(std::lround(100.0 * double(p.pp - 1) / double(s.train.grad_accum + p.pp - 1)))) +
                                      "% of the step; use several micro-batches per stage");
  if (!p.pp_layers.empty()) {  // an explicit split: one count per stage, each ≥ 1, all the layers
    double sum = 0;  // double: absurd counts would overflow an int64 sum
    bool positive = true;
    for (int64_t n : p.pp_layers) sum += double(n), positive = positive && n >= 1;
    if (int64_t(p.pp_layers.size()) != p.pp)
      c.error("parallel.pp_layers", str(int64_t(p.pp_layers.size())) + " layer counts for parallel.pp " + str(p.pp) +
                                        ": give one per stage, or none for the even split");
    else if (!positive)
      c.error("parallel.pp_layers", "every stage needs at least one layer");
    else if (m.n_layers > 0 && sum != double(m.n_layers))
      c.error("parallel.pp_layers", "the stages hold " + str(sum) + " layers but model.n_layers is " + str(m.n_layers));
  }
  const double tokens = double(s.train.micro_batch) * double(m.seq_len);  // double: out-of-range sizes overflow
  if (p.overlap_chunks > 1 && tokens > 0 && double(p.overlap_chunks) > tokens)
    c.error("parallel.overlap_chunks", str(p.overlap_chunks) + " exceeds the tokens of a micro-batch (" + str(tokens) + ")");
  const int64_t nodes = (p.world_size() + p.gpus_per_node - 1) / p.gpus_per_node;
  if (p.hierarchical_a2a && (p.ep * p.tp <= p.gpus_per_node || nodes < 2))
    c.warning("parallel.hierarchical_a2a", "the EP group fits in one node, so the two-stage all-to-all saves nothing");
  // The CPU runtime refuses this; a design for another engine only hears of it.
  if (const std::string why = deterministic_conflict(s); !why.empty()) c.warning("parallel.hierarchical_a2a", why);
}

}  // namespace

// A forwarder adds a token's outputs from its node's experts before the row crosses nodes; with
// at most two outputs per token that equals adding them one by one, with more the grouping of the
// sum depends on the node layout (docs/expert-parallel.md, "Deterministic arithmetic").
std::string deterministic_conflict(const JobSpec& s) {
  const bool expert_choice = is_expert_choice(s.routing);
  const bool many_outputs = expert_choice || s.model.moe.top_k > 2;
  if (!s.parallel.hierarchical_a2a || s.parallel.ep <= 1 || !many_outputs || !s.runtime.deterministic ||
      s.runtime.backend != "cpu")
    return "";
  return std::string("with ") +
         (expert_choice ? "expert choice" : "top_k " + std::to_string(s.model.moe.top_k)) +
         " a token's expert outputs are summed per node, which no one-process run reproduces bit for bit (the CPU "
         "runtime's runtime.deterministic): use the flat exchange, or set runtime.deterministic to false";
}

namespace {

void check_train(const JobSpec& s, Checker& c) {
  const TrainSpec& t = s.train;
  c.range("train.steps", t.steps, 1, int64_t{1} << 40);
  c.range("train.micro_batch", t.micro_batch, 1, kMaxCount);
  c.range("train.grad_accum", t.grad_accum, 1, 1 << 20);
  c.range("train.lr", t.lr, 0.0, 10.0, true);
  c.range("train.min_lr_ratio", t.min_lr_ratio, 0.0, 1.0);
  c.range("train.warmup_steps", t.warmup_steps, 0, int64_t{1} << 40);
  c.range("train.weight_decay", t.weight_decay, 0.0, 10.0);
  c.range("train.adam_beta1", t.adam_beta1, 0.0, 0.999999);
  c.range("train.adam_beta2", t.adam_beta2, 0.0, 0.999999999);
  c.range("train.adam_eps", t.adam_eps, 0.0, 1.0, true);
  c.range("train.grad_clip", t.grad_clip, 0.0, 1e6);
  c.range("train.eval_every", t.eval_every, 0, int64_t{1} << 40);
  c.range("train.data.val_fraction", t.data.val_fraction, 0.0, 0.5, true);
  c.one_of("train.data.kind", t.data.kind);
  c.one_of("train.recompute", t.recompute);
  if (t.warmup_steps > t.steps)
    c.warning("train.warmup_steps", str(t.warmup_steps) + " exceeds train.steps (" + str(t.steps) + "): the run never leaves warmup");
}

void check_placement(const JobSpec& s, Checker& c) {
  const PlacementSpec& pl = s.placement;
  bool ok = c.one_of("placement.strategy", pl.strategy);
  ok &= c.one_of("placement.replica_choice", pl.replica_choice);
  ok &= c.range("placement.slots_per_rank", pl.slots_per_rank, 0, 1 << 16);
  ok &= c.range("placement.stats_every", pl.stats_every, 0, int64_t{1} << 40);
  ok &= c.range("placement.replace_every", pl.replace_every, 0, int64_t{1} << 40);
  if (pl.replace_every > 0 && (pl.strategy == "uniform" || pl.strategy == "explicit"))
    c.warning("placement.replace_every", "the " + pl.strategy + " placement does not depend on the loads: re-planning it changes nothing");
  if (!pl.map.empty() && pl.strategy != "explicit")
    c.warning("placement.map", "is ignored: placement.strategy is '" + pl.strategy + "', not 'explicit'");
  const int64_t E = s.model.moe.num_experts, ep = s.parallel.ep;
  if (pl.slots_per_rank > 0 && ep >= 1 && double(pl.slots_per_rank) * double(ep) < double(E))
    c.error("placement.slots_per_rank", str(pl.slots_per_rank) + " × parallel.ep (" + str(ep) + ") slots cannot hold " +
                                            str(E) + " experts");
  if (pl.slots_per_rank > E && E >= 1)
    c.error("placement.slots_per_rank", str(pl.slots_per_rank) + " exceeds model.moe.num_experts (" + str(E) +
                                            "): a rank would hold two replicas of one expert");
  // The sizes the placement depends on were checked above; only a sane spec is placed.
  const bool sizes_ok = E >= 1 && E <= (1 << 16) && ep >= 1 && E % ep == 0 && s.parallel.world_size() <= (1 << 20) &&
                        s.parallel.tp >= 1 && s.parallel.dp >= 1 && s.parallel.pp >= 1 && s.parallel.gpus_per_node >= 1 &&
                        s.model.n_layers >= 1 && s.model.n_layers <= 4096 && s.model.moe_layers() >= 1;
  if (!ok || !sizes_ok || c.has_error_at("placement")) return;
  try {
    (void)placement_for_spec(s);
  } catch (const Error& e) {
    const std::string what = e.what();
    const size_t colon = what.find(": ");
    if (what.rfind("placement.", 0) == 0 && colon != std::string::npos) c.error(what.substr(0, colon), what.substr(colon + 2));
    else c.error("placement", what);
  }
}

void check_runtime_and_cluster(const JobSpec& s, Checker& c) {
  c.one_of("runtime.backend", s.runtime.backend);
  c.one_of("runtime.dtype", s.runtime.dtype);
  if (c.one_of("runtime.fp8", s.runtime.fp8) && s.runtime.fp8 != "off" && s.runtime.dtype != "bf16")
    c.error("runtime.fp8", s.runtime.fp8 + " needs runtime.dtype bf16 (FP8 GEMMs on bf16 weights with fp32 master copies)");
  c.range("runtime.metrics_every", s.runtime.metrics_every, 1, int64_t{1} << 40);
  c.range("runtime.checkpoint_every", s.runtime.checkpoint_every, 0, int64_t{1} << 40);
  c.range("runtime.threads", s.runtime.threads, 0, 4096);
  if (s.runtime.backend == "cuda" && s.runtime.deterministic)
    c.warning("runtime.deterministic", "the cuda backend does not implement layout-invariant arithmetic: its runs match "
                                       "other layouts within rounding, not bit for bit (set false to silence this)");

  // Slurm fields become #SBATCH lines: a newline or a quote would inject a directive. The patterns
  // are compiled once (validation runs on every keystroke in the studio).
  static const std::regex slurm_word("[A-Za-z0-9_.,-]*");
  static const std::regex slurm_time(R"((\d+|\d+:\d\d|\d+:\d\d:\d\d|\d+-\d+|\d+-\d+:\d\d|\d+-\d+:\d\d:\d\d)?)");
  const SlurmSpec& sl = s.cluster.slurm;
  for (const auto& [path, value] : {std::pair{"cluster.slurm.partition", sl.partition}, std::pair{"cluster.slurm.account", sl.account}})
    if (!std::regex_match(value, slurm_word))
      c.error(path, "'" + value + "' may hold only letters, digits, '_', '.', ',' and '-'");
  if (!std::regex_match(sl.time_limit, slurm_time))
    c.error("cluster.slurm.time_limit", "'" + sl.time_limit + "' is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)");

  const auto& nodes = s.cluster.nodes;
  const ParallelSpec& par = s.parallel;
  const double world_d = double(par.dp) * double(par.tp) * double(par.pp) * double(par.ep);
  // Bad sizes were reported by check_parallel; skip the comparisons that would overflow.
  const bool world_ok = par.dp >= 1 && par.tp >= 1 && par.pp >= 1 && par.ep >= 1 && world_d <= double(kMaxCount);
  if (nodes.empty()) {
    c.error("cluster.nodes", "lists no node");
    return;
  }
  bool slots_ok = true;
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::string at = "cluster.nodes." + std::to_string(i);
    if (nodes[i].host.empty()) c.error(at + ".host", "must not be empty");
    c.range(at + ".port", nodes[i].port, 1, 65535);
    slots_ok &= c.range(at + ".slots", nodes[i].slots, 1, 4096);
    if (slots_ok && s.parallel.gpus_per_node > 0 && nodes[i].slots % s.parallel.gpus_per_node != 0 &&
        world_ok && nodes[i].slots < par.world_size())
      c.error(at + ".slots", str(nodes[i].slots) + " is not a multiple of parallel.gpus_per_node (" +
                                 str(s.parallel.gpus_per_node) + "): a host holds whole nodes");
  }
  if (!slots_ok || !world_ok) return;
  const int64_t world = s.parallel.world_size(), slots = s.cluster.total_slots();
  if (world > slots)
    c.error("parallel", "world size dp·tp·pp·ep = " + str(world) + " exceeds the cluster's " + str(slots) + " slots");
  else if (world < slots)
    c.warning("cluster.nodes", str(slots - world) + " of " + str(slots) + " slots stay idle (world size " + str(world) + ")");
}

}  // namespace

std::vector<Diagnostic> validate_spec(const JobSpec& spec, const HardwareProfile* hardware) {
  Checker c;
  if (spec.name.empty()) c.error("name", "must not be empty");
  check_model(spec.model, c);
  check_routing(spec, c);
  check_parallel(spec, c);
  check_train(spec, c);
  check_placement(spec, c);
  check_runtime_and_cluster(spec, c);
  if (hardware && spec.runtime.fp8 != "off" && hardware->peak_flops_fp8 <= 0)
    c.error("runtime.fp8", spec.runtime.fp8 + ": the " + hardware->name + " has no FP8 tensor cores (its profile gives no peak_tflops_fp8)");
  if (hardware && !has_errors(c.out)) add_memory_rule(spec, *hardware, c.out);  // cost_model.h
  return c.out;
}

std::vector<Diagnostic> validate_model(const ModelSpec& model) {
  Checker c;
  check_model(model, c);
  return c.out;
}

}  // namespace moe
