#pragma once
// The job spec (docs/architecture.md 3.1): what to train, how to route, how to lay it out and where.
// JSON is the source of truth for files; JobSpec is the typed view every component reads.
// Loading merges the user's JSON onto the defaults (spec_defaults.cpp), so unknown keys and wrong
// types are caught by comparing with the default document, and a save/load round trip is lossless.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

struct MlaSpec {  // DeepSeek multi-head latent attention
  int64_t q_lora_rank = 0;  // 0: queries are projected directly (no low-rank q)
  int64_t kv_lora_rank = 512;
  int64_t qk_nope_head_dim = 128;
  int64_t qk_rope_head_dim = 64;
  int64_t v_head_dim = 128;
};

struct MoeSpec {
  int64_t num_experts = 8;
  int64_t top_k = 2;
  int64_t d_expert = 256;
  int64_t shared_experts = 0;
  int64_t d_shared_expert = 0;
  int64_t first_dense_layers = 0;
  // How the router's weights start (spec_choices.h): "normal" like every matrix, or "clustered":
  // planted co-selection for placement experiments (runtime/model/router_init.h).
  std::string router_init = "normal";
};

struct ModelSpec {
  int64_t vocab_size = 256;
  int64_t seq_len = 128;
  int64_t d_model = 128;
  int64_t n_layers = 4;
  std::string attention = "gqa";  // gqa | mla
  int64_t n_heads = 4;
  int64_t n_kv_heads = 4;
  int64_t head_dim = 0;  // 0: d_model / n_heads
  MlaSpec mla;
  int64_t d_ff = 0;  // dense (non-MoE) layers' FFN width; needed when first_dense_layers > 0
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  bool tie_embeddings = false;
  double init_std = 0.02;
  MoeSpec moe;

  int64_t resolved_head_dim() const { return head_dim > 0 ? head_dim : d_model / n_heads; }
  int64_t moe_layers() const { return n_layers - moe.first_dense_layers; }
};

struct BiasBalancingSpec {
  bool enabled = false;
  double update_rate = 0.001;
};

struct RoutingSpec {
  std::string type = "token_choice";  // token_choice | expert_choice
  std::string score = "softmax";      // softmax | sigmoid
  double capacity_factor = 1.25;      // 0: dropless
  std::string drop_policy = "position";  // position | probability
  double aux_loss_coef = 0.01;
  double z_loss_coef = 0.001;
  double jitter = 0.0;
  bool norm_topk_prob = true;          // renormalise the k gate weights to sum to 1
  double routed_scaling_factor = 1.0;  // DeepSeek-V3 scales routed outputs by 2.5
  int64_t n_group = 1;                 // DeepSeek group-limited routing: groups of experts
  int64_t topk_group = 1;              // groups a token may pick from
  BiasBalancingSpec bias_balancing;

  bool dropless() const { return capacity_factor == 0.0; }
};

struct ParallelSpec {
  int64_t dp = 1, tp = 1, pp = 1, ep = 1;
  int64_t gpus_per_node = 1;
  bool hierarchical_a2a = false;
  int64_t overlap_chunks = 1;
  // Megatron's sequence parallelism (with tp > 1): the residual stream, norms, embedding and head
  // hold each tp rank's share of the tokens; all-gather and reduce-scatter replace the all-reduces.
  bool sequence_parallel = false;
  // Expert tensor parallelism (Megatron-Core's expert_tensor_parallel_size): 1, every tp rank holds
  // whole experts and routes its share of the tokens through them; a divisor of tp, each expert's
  // FFN is split over etp consecutive tp ranks, which gather each other's expert rows around the
  // experts (and the tp/etp such groups hold copies of the slices).
  int64_t etp = 1;
  // Decoder layers per pipeline stage, first stage first (pp entries summing to n_layers); empty:
  // the even split, stage s holding layers [s·L/pp, (s+1)·L/pp) (core/pipeline_schedule.h).
  std::vector<int64_t> pp_layers;
  // Virtual pipeline stages per pipeline rank (Megatron's interleaved 1F1B): each rank holds vpp
  // non-adjacent chunks of its layers, which divides the pipeline bubble by vpp. Cost model,
  // exports and moe-runtime (its interleaved schedule needs pp to divide train.grad_accum).
  int64_t vpp = 1;
  // Batch-level all-to-all overlap: one micro-batch's expert all-to-alls run while another's
  // computation does (Megatron-Core's --overlap-moe-expert-parallel-comm, DeepSeek's DualPipe).
  // Cost model and exports; moe-runtime overlaps within a micro-batch only (overlap_chunks).
  bool batch_overlap = false;

  int64_t world_size() const { return dp * tp * pp * ep; }
};

struct PlacementSpec {
  std::string strategy = "uniform";  // spec_choices.h; "explicit": `map` below
  // Physical expert slots per EP rank; 0: num_experts / ep (no replicas). More slots than that hold
  // replicas (the replicate strategy, or an explicit map that names an expert twice).
  int64_t slots_per_rank = 0;
  // strategy "explicit": per MoE layer, the logical expert of each physical slot (ep × slots_per_rank
  // entries, slot s on EP rank s / slots_per_rank); a single row applies to every MoE layer.
  std::vector<std::vector<int64_t>> map;
  std::string replica_choice = "spread";  // spec_choices.h: which replica a token goes to
  // Re-plan the placement from the loads since the last one (and the latest co-selection) every N
  // steps during training, moving the experts (0: never).
  int64_t replace_every = 0;
  // Record the co-selection counts every N steps (0: never): what data_driven plans from.
  int64_t stats_every = 10;
};

struct DataSpec {
  std::string kind = "text";  // text | synthetic
  std::string path;           // empty: the bundled corpus
  double val_fraction = 0.05;
};

struct TrainSpec {
  int64_t steps = 200;
  int64_t micro_batch = 8;
  int64_t grad_accum = 1;
  double lr = 3e-3;
  double min_lr_ratio = 0.1;  // cosine decays to lr * min_lr_ratio
  int64_t warmup_steps = 20;
  double weight_decay = 0.1;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.95;
  double adam_eps = 1e-8;
  double grad_clip = 1.0;
  int64_t seed = 1234;
  int64_t eval_every = 0;  // validation loss every N steps; 0: only at the end
  // Activation recomputation (spec_choices.h): none keeps every activation of the micro-batches in
  // flight; stage keeps one micro-batch's activations per stage (chunk) and the inputs of the
  // others, recomputing a forward before its backward when other forwards ran since (moe-runtime's
  // pipeline stages); full is Megatron's --recompute-granularity full, one layer at a time.
  std::string recompute = "none";
  DataSpec data;

  int64_t global_batch(const ParallelSpec& p) const { return micro_batch * p.dp * p.ep * grad_accum; }
};

struct RuntimeSpec {
  std::string backend = "cpu";  // cpu | cuda
  std::string dtype = "fp32";   // fp32 | bf16
  // FP8 GEMMs on bf16 weights (Transformer Engine's --fp8-format): off | e4m3 | hybrid. The
  // linear layers run at the hardware's FP8 peak; attention's score/value products and the head
  // stay in bf16. Cost model and exports; moe-runtime refuses it.
  std::string fp8 = "off";
  int64_t metrics_every = 1;
  int64_t checkpoint_every = 0;
  int64_t threads = 0;  // compute threads per rank; 0: all cores / local ranks
  // Layout-invariant arithmetic (CPU backend): the same bits for any dp × ep layout, thread count
  // and CPU kernel set, at some speed (docs/expert-parallel.md, "Deterministic arithmetic").
  bool deterministic = true;
};

struct NodeSpec {
  std::string host = "localhost";
  int64_t port = 22;
  std::string user;
  int64_t slots = 1;
};

// Where `moe run --slurm LOGIN` submits (docs/remote.md, "Slurm"); empty: the cluster's default.
struct SlurmSpec {
  std::string partition;
  std::string account;
  std::string time_limit;  // sbatch --time: "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM" or "D-HH:MM:SS"
};

struct ClusterSpec {
  std::string hardware = "H100-SXM";  // a profile of resources/hardware.json
  std::vector<NodeSpec> nodes{NodeSpec{}};
  SlurmSpec slurm;

  int64_t total_slots() const;
};

struct JobSpec {
  int64_t schema = 1;
  std::string name = "unnamed";
  std::string comment;
  ModelSpec model;
  RoutingSpec routing;
  ParallelSpec parallel;
  PlacementSpec placement;
  TrainSpec train;
  RuntimeSpec runtime;
  ClusterSpec cluster;
};

// The default spec as JSON: it defines every key and its type.
const nlohmann::json& default_spec_json();

// Merges `user` onto the defaults, checking every key and type. Throws moe::Error naming the path
// ("model.moe.top_k: expected an integer, got a string") or the unknown key with a suggestion.
nlohmann::json resolve_spec_json(const nlohmann::json& user);

// Applies "path.to.key=value" to a resolved spec JSON, type-checked against the current value.
void apply_override(nlohmann::json& resolved, const std::string& assignment);

JobSpec spec_from_json(const nlohmann::json& resolved);
nlohmann::json spec_to_json(const JobSpec& spec);

// Reads and parses a spec file (errors name the file, and line and column for malformed JSON),
// resolves defaults and applies the overrides in order.
JobSpec load_spec(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});
JobSpec parse_spec(const std::string& text, const std::vector<std::string>& overrides = {},
                   const std::string& origin = "<spec>");
void save_spec(const JobSpec& spec, const std::filesystem::path& file);

// What the store and the studio need from a recorded spec (a run_start's JSON text), read
// leniently: a spec written by another version or producer may hold keys this one does not know,
// or be no spec at all. Empty / 0 for what is absent.
struct RecordedSpec {
  std::string name;
  int64_t steps = 0;  // train.steps
  int64_t tp = 1;     // parallel.tp
  int64_t pp = 1;     // parallel.pp
};
RecordedSpec read_recorded_spec(const std::string& text);

// Reads a whole file with one-line errors for a missing file, a directory or unreadable data.
std::string read_text_file(const std::filesystem::path& file);
// Parses JSON text; a syntax error names origin, line and column. Nesting deeper than
// kMaxJsonDepth is an error too.
nlohmann::json parse_json_text(const std::string& text, const std::string& origin);

// The deepest nesting of arrays and objects the JSON readers accept (parse_json_text, metrics
// stream lines, safetensors headers). nlohmann::json parses any depth, but copying, dumping and
// comparing a value recurse once per level: a line of 200 000 '[' overflowed the stack.
inline constexpr int kMaxJsonDepth = 512;
// True when `text` nests arrays and objects deeper than `limit` (brackets in strings do not count).
bool json_nesting_exceeds(std::string_view text, int limit = kMaxJsonDepth);

}  // namespace moe
