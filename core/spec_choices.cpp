// The spec's closed value sets (see spec_choices.h).
#include "spec_choices.h"

#include <algorithm>
#include <array>

#include "error.h"

namespace moe {

namespace {

constexpr std::array kRoutingTypes = {
    Choice{"token_choice", "each token picks its top_k experts by score (top_k 1: Switch routing)"},
    Choice{"expert_choice", "each expert picks its top capacity tokens by score (Zhou et al. 2022); needs a capacity factor"},
};
constexpr std::array kScores = {
    Choice{"softmax", "gate scores are a softmax over all experts (Mixtral, Switch)"},
    Choice{"sigmoid", "each expert's score is an independent sigmoid (DeepSeek-V3), renormalised over the chosen ones"},
};
constexpr std::array kDropPolicies = {
    Choice{"position", "over capacity, an expert keeps its earliest tokens (later ones are dropped first)"},
    Choice{"probability", "over capacity, an expert keeps the tokens with the largest gate weight"},
};
constexpr std::array kPlacements = {
    Choice{"uniform", "expert e on EP rank e / (experts per rank): contiguous blocks; spare slots hold no replicas"},
    Choice{"data_driven", "experts often chosen together by one token on the same node (co-selection graph partition), balanced by load"},
    Choice{"hierarchical", "EPLB's hierarchical mode: expert groups packed onto nodes, then experts onto the node's GPUs, balanced by load"},
    Choice{"replicate", "hot experts get extra replicas in the spare slots (placement.slots_per_rank), then packed so ranks carry equal load"},
    Choice{"explicit", "placement.map: the logical expert of every physical slot, per MoE layer"},
};
constexpr std::array kReplicaChoices = {
    Choice{"spread", "a rank sends an expert's tokens round-robin to all its replicas (best balance)"},
    Choice{"local", "to the replicas on the sender's node when there are any (fewer cross-node bytes), else to all"},
};
constexpr std::array kAttention = {
    Choice{"gqa", "grouped-query attention (n_kv_heads ≤ n_heads); what moe-runtime trains"},
    Choice{"mla", "DeepSeek's multi-head latent attention (model.mla.*); cost model only"},
};
constexpr std::array kDataKinds = {
    Choice{"text", "bytes of a text file (train.data.path; empty: the bundled corpus)"},
    Choice{"synthetic", "generated multi-domain bytes (tests, balancing experiments)"},
};
constexpr std::array kRouterInits = {
    Choice{"normal", "N(0, init_std) like every other matrix"},
    Choice{"clustered", "planted co-selection: seeded groups of top_k experts share most of their router row, so a token tends to pick a whole group (placement experiments)"},
};
constexpr std::array kBackends = {
    Choice{"cpu", "moe-runtime on CPU cores: OpenBLAS or the deterministic kernels, Gloo between processes"},
    Choice{"cuda", "moe-runtime on NVIDIA GPUs: cuBLAS, NCCL"},
};
constexpr std::array kDtypes = {
    Choice{"fp32", "32-bit floats throughout"},
    Choice{"bf16", "bfloat16 activations and weights, fp32 master weights and sums (cuda)"},
};

constexpr std::array kFp8 = {
    Choice{"off", "no FP8: the GEMMs run in runtime.dtype"},
    Choice{"e4m3", "FP8 GEMMs, E4M3 for every tensor (DeepSeek-V3's choice); Transformer Engine's --fp8-format e4m3"},
    Choice{"hybrid", "FP8 GEMMs, E4M3 forward and E5M2 gradients; Transformer Engine's --fp8-format hybrid"},
};

constexpr std::array kRecompute = {
    Choice{"none", "every activation of the micro-batches in flight is kept (Megatron's default)"},
    Choice{"stage", "a pipeline stage keeps one micro-batch's activations and the inputs of the others; a forward is recomputed before its backward when other forwards ran since (moe-runtime's pipeline stages; Megatron's full recomputation of a whole chunk)"},
    Choice{"full", "every layer keeps only its input and recomputes its forward before its backward (Megatron's --recompute-granularity full, one layer at a time)"},
};

struct Field {
  std::string_view path;
  std::span<const Choice> choices;
};
constexpr std::array kFields = {
    Field{"routing.type", kRoutingTypes},     Field{"routing.score", kScores},
    Field{"routing.drop_policy", kDropPolicies}, Field{"placement.strategy", kPlacements},
    Field{"placement.replica_choice", kReplicaChoices},
    Field{"model.attention", kAttention},     Field{"train.data.kind", kDataKinds},
    Field{"model.moe.router_init", kRouterInits},
    Field{"runtime.backend", kBackends},      Field{"runtime.dtype", kDtypes},
    Field{"runtime.fp8", kFp8},               Field{"train.recompute", kRecompute},
};

// Index of `value` in the field's list, or throws naming the field.
size_t index_in(std::string_view path, const std::string& value) {
  const auto list = choices_of(path);
  const auto it = std::find_if(list.begin(), list.end(), [&](const Choice& c) { return c.name == value; });
  if (it == list.end())
    throw Error(std::string(path) + ": '" + value + "' is not one of: " + choice_names(path));
  return static_cast<size_t>(it - list.begin());
}

}  // namespace

std::span<const Choice> choices_of(std::string_view path) {
  for (const Field& f : kFields)
    if (f.path == path) return f.choices;
  return {};
}

std::string choice_names(std::string_view path) {
  std::string out;
  for (const Choice& c : choices_of(path)) out += (out.empty() ? "" : ", ") + std::string(c.name);
  return out;
}

bool is_choice(std::string_view path, std::string_view value) {
  const auto list = choices_of(path);
  return std::any_of(list.begin(), list.end(), [&](const Choice& c) { return c.name == value; });
}

RoutingType routing_type(const RoutingSpec& r) { return static_cast<RoutingType>(index_in("routing.type", r.type)); }
ScoreFn score_fn(const RoutingSpec& r) { return static_cast<ScoreFn>(index_in("routing.score", r.score)); }
DropPolicy drop_policy(const RoutingSpec& r) {
  return static_cast<DropPolicy>(index_in("routing.drop_policy", r.drop_policy));
}
Recompute recompute_mode(const TrainSpec& t) { return static_cast<Recompute>(index_in("train.recompute", t.recompute)); }
bool is_expert_choice(const RoutingSpec& r) { return r.type == name_of(RoutingType::expert_choice); }
std::string_view name_of(RoutingType t) { return kRoutingTypes[static_cast<size_t>(t)].name; }
std::string_view name_of(ScoreFn s) { return kScores[static_cast<size_t>(s)].name; }

}  // namespace moe
