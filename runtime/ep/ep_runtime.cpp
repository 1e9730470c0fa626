// One rank of an expert-parallel training job (see ep_runtime.h).
#include "ep_runtime.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <type_traits>

#include "error.h"
#include "expert_migration.h"
#include "global_routing.h"
#include "param_shard.h"
#include "pipeline_schedule.h"
#include "placed_dispatcher.h"
#include "replica_choice.h"

namespace moe::rt::ep {

namespace {

bool is_expert(const Param* p) { return p->is_expert; }

// A ring all-gather's or reduce-scatter's payload: the whole tensor, every rank's chunk (floats).
int64_t gathered_bytes(const std::vector<int64_t>& counts) {
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  return n * static_cast<int64_t>(sizeof(float));
}

// Every gradient of one kind (dense or expert) in one buffer: one all-reduce instead of one per
// param. Deterministic arithmetic reduces the ExactSums' integers (exact in any ring order) and
// rounds them into the grads; otherwise the float grads are summed.
// Returns the payload in bytes (0 when the group has one member).
template <typename Pred, typename V>
int64_t all_reduce_flat(comm::Communicator& group, const std::vector<Param*>& params, Pred&& pick, V&& view) {
  size_t n = 0;
  for (Param* p : params)
    if (pick(p)) n += view(*p).size();
  if (n == 0 || group.size() == 1) return 0;
  using Elem = typename std::decay_t<decltype(view(*params[0]))>::value_type;
  std::vector<Elem> flat;
  flat.reserve(n);
  for (Param* p : params)
    if (pick(p)) flat.insert(flat.end(), view(*p).begin(), view(*p).end());
  group.all_reduce_sum(flat.data(), flat.size());
  size_t at = 0;
  for (Param* p : params)
    if (pick(p))
      for (auto& v : view(*p)) v = flat[at++];
  return static_cast<int64_t>(n * sizeof(Elem));
}

// Every member's `mine`, in member order (lengths may differ).
std::vector<std::vector<double>> gather_each(comm::Communicator& group, const std::vector<double>& mine) {
  const int64_t n = static_cast<int64_t>(mine.size());
  std::vector<int64_t> lengths(static_cast<size_t>(group.size()));
  group.all_gather(&n, lengths.data(), sizeof(int64_t));
  const size_t most = static_cast<size_t>(*std::max_element(lengths.begin(), lengths.end()));
  std::vector<double> padded(mine), all(most * lengths.size());
  padded.resize(most, 0.0);
  if (most > 0) group.all_gather(padded.data(), all.data(), most * sizeof(double));
  std::vector<std::vector<double>> out;
  for (size_t m = 0; m < lengths.size(); ++m)
    out.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(m * most),
                     all.begin() + static_cast<std::ptrdiff_t>(m * most + static_cast<size_t>(lengths[m])));
  return out;
}

bool exact_grads(const std::vector<Param*>& params) { return !params.empty() && params[0]->exact_grad.size() > 0; }

// Sums the picked params' gradients (the ExactSums' integers under deterministic arithmetic,
// left unrounded: a later all_reduce_grads rounds them).
template <typename Pred>
int64_t all_reduce_unrounded(comm::Communicator& group, const std::vector<Param*>& params, Pred&& pick) {
  if (!exact_grads(params)) return all_reduce_flat(group, params, pick, [](Param& p) -> std::vector<float>& { return p.grad; });
  return all_reduce_flat(group, params, pick, [](Param& p) -> std::vector<int64_t>& { return p.exact_grad.limbs(); });
}

int64_t all_reduce_grads(comm::Communicator& group, const std::vector<Param*>& params, bool experts) {
  auto pick = [experts](const Param* p) { return is_expert(p) == experts; };
  const int64_t bytes = all_reduce_unrounded(group, params, pick);
  if (exact_grads(params))
    for (Param* p : params)
      if (pick(p)) p->exact_grad.round_to(p->grad.data());
  return bytes;
}

constexpr const char* kEmbedding = "model.embed_tokens.weight";

const char* const kPhaseName[4] = {"dispatch", "combine", "combine", "dispatch"};
const char* const kPassName[4] = {"fwd", "fwd", "bwd", "bwd"};

}  // namespace

EpRuntime::EpRuntime(const JobSpec& spec, const comm::RankEnv& env) : spec_(spec), env_(env) {
  const auto& p = spec.parallel;
  if (spec.model.moe.num_experts % p.ep != 0)
    throw Error("parallel.ep: " + std::to_string(p.ep) + " does not divide model.moe.num_experts (" +
                std::to_string(spec.model.moe.num_experts) + ")");
  placement_input_ = placement_input(spec);
  Placement placement = placement_for_spec(spec);
  placement_all_ = placement;
  pg_ = comm::init_process_group(env);
  layout_ = make_rank_layout(p);
  groups_ = comm::make_comm_groups(*pg_->world, layout_);
  // 1 < etp < tp: the tp group's etp groups (etp consecutive tp ranks, each splitting its experts
  // over its members) and, across them, the tp/etp ranks that hold the same slice.
  if (groups_.tp && p.etp > 1 && p.etp < p.tp) {
    const int t = groups_.tp->rank(), e = static_cast<int>(p.etp);
    std::vector<int> members, copies;
    for (int i = 0; i < e; ++i) members.push_back(t / e * e + i);
    for (int b = 0; b < groups_.tp->size() / e; ++b) copies.push_back(b * e + t % e);
    etp_group_ = groups_.tp->sub_group(members, "etp");
    etp_copies_ = groups_.tp->sub_group(copies, "etp_copies");
  }
  // A run that re-places keeps the placed dispatchers even while its placement is uniform.
  uniform_ = is_uniform(placement, spec.model.moe.num_experts) && spec.placement.replace_every == 0;
  // Pipeline stages (and their chunks with the interleaved schedule): the MoE layers each holds,
  // as ordinals among the model's MoE layers (the placement's index).
  stage_ = layout_.ranks[static_cast<size_t>(env.rank)].pp;
  std::string where;  // this stage's decoder layers, for the log line
  for (int64_t s = 0; s < p.pp; ++s) {
    stage_moe_.emplace_back();
    for (const StageLayers& chunk : stage_chunks(spec.model.n_layers, p.pp, p.vpp, s, p.pp_layers)) {
      for (int64_t i = chunk.begin; i < chunk.end; ++i)
        if (i >= spec.model.moe.first_dense_layers) stage_moe_.back().push_back(i - spec.model.moe.first_dense_layers);
      if (s == stage_) where += (where.empty() ? "" : ", ") + std::to_string(chunk.begin) + "-" + std::to_string(chunk.end - 1);
    }
    max_stage_moe_layers_ = std::max(max_stage_moe_layers_, static_cast<int64_t>(stage_moe_.back().size()));
  }
  if (p.pp > 1 && env.rank == stage_leader())  // one line per stage: where its layers are
    std::fprintf(stderr, "moe-runtime: pipeline stage %lld of %lld: decoder layers %s\n", static_cast<long long>(stage_),
                 static_cast<long long>(p.pp), where.c_str());
  replicas_ = std::make_unique<ExpertReplicas>(stage_part(placement), groups_.ep->rank());
  // Tied embeddings: the first stage's embedding and the last stage's head are one tensor.
  if (p.pp > 1 && spec.model.tie_embeddings && (stage_ == 0 || stage_ == p.pp - 1))
    tied_embedding_ = groups_.pp->sub_group({0, static_cast<int>(p.pp - 1)}, "tied_embedding");
}

EpRuntime::~EpRuntime() = default;

ModelOptions EpRuntime::model_options() {
  ModelOptions options;
  // Routing decisions span every rank that holds tokens of the MoE blocks: the data ranks, and
  // with tp each tp rank's share (the stage's ranks; its order is the tokens' order).
  auto routing = std::make_shared<GlobalRouting>(moe_group());
  std::vector<int64_t> peer_node;
  for (int r : groups_.ep->world_ranks()) peer_node.push_back(layout_.ranks[static_cast<size_t>(r)].node);
  if (groups_.tp) {
    comm::Communicator* tp = groups_.tp.get();
    options.tp.rank = tp->rank(), options.tp.size = tp->size();
    options.tp.sequence_parallel = spec_.parallel.sequence_parallel;
    // tp_bytes: each collective's whole tensor (an all-gather's output, a reduce-scatter's input).
    options.tp.all_reduce = [this, tp](float* data, int64_t count) {
      tp_bytes_ += count * static_cast<int64_t>(sizeof(float));
      tp->all_reduce_sum(data, static_cast<size_t>(count));
    };
    options.tp.all_reduce_f64 = [tp](double* data, int64_t count) { tp->all_reduce_sum(data, static_cast<size_t>(count)); };
    options.tp.all_gather = [this, tp](const float* mine, float* all, const std::vector<int64_t>& counts) {
      tp_bytes_ += gathered_bytes(counts);
      tp->all_gather_v(mine, all, counts);
    };
    options.tp.reduce_scatter = [this, tp](const float* all, float* mine, const std::vector<int64_t>& counts) {
      tp_bytes_ += gathered_bytes(counts);
      tp->reduce_scatter_sum_v(all, mine, counts);
    };
  }
  options.pp.stage = stage_, options.pp.stages = spec_.parallel.pp, options.pp.chunks = spec_.parallel.vpp;
  options.make_moe_layer = [this, routing, peer_node](int64_t layer) {
    // Layers are built in order: the MoE layer ordinal indexes the placement.
    const LayerPlacement& lp = replicas_->placement().at(dispatchers_.size());
    auto dispatcher = std::make_unique<comm::AllToAllDispatcher<float>>(*groups_.ep, lp.slots());
    dispatcher->set_peer_nodes(peer_node);
    if (spec_.parallel.hierarchical_a2a) dispatcher->set_hierarchical(*groups_.ep_intra, *groups_.ep_inter);
    dispatcher->set_overlap_chunks(spec_.parallel.overlap_chunks);
    dispatchers_.push_back(dispatcher.get());
    MoeLayerParallel parallel;
    if (uniform_) {
      parallel.dispatcher = std::move(dispatcher);
    } else {
      const ReplicaChoice choice(lp, placement_input_.node_of_member, groups_.ep->rank(), spec_.placement.replica_choice);
      auto placed = std::make_unique<PlacedDispatcher<float>>(std::move(dispatcher), lp, choice, spec_.model.seq_len);
      placed_.push_back(placed.get());
      parallel.dispatcher = std::move(placed);
    }
    parallel.routing_sync = routing;
    if (spec_.parallel.etp > 1) parallel.etp = tp_hook(etp_group(), etp_bytes_);
    if (groups_.tp && spec_.model.moe.shared_experts > 0) parallel.shared_tp = tp_hook(*groups_.tp, tp_bytes_);
    return std::make_unique<MoeLayer>(spec_, layer, std::move(parallel));
  };
  return options;
}

Placement EpRuntime::stage_part(const Placement& all) const {
  Placement out;
  for (int64_t ordinal : stage_moe_[static_cast<size_t>(stage_)]) out.push_back(all.at(static_cast<size_t>(ordinal)));
  return out;
}

comm::Communicator& EpRuntime::etp_group() const { return etp_group_ ? *etp_group_ : *groups_.tp; }

ExpertTensorParallel EpRuntime::tp_hook(comm::Communicator& group, int64_t& bytes) {
  comm::Communicator* tp = &group;
  ExpertTensorParallel etp;
  etp.rank = tp->rank(), etp.size = tp->size();
  etp.all_gather = [&bytes, tp](const float* mine, float* all, const std::vector<int64_t>& counts) {
    bytes += gathered_bytes(counts);
    tp->all_gather_v(mine, all, counts);
  };
  etp.reduce_scatter = [&bytes, tp](const float* all, float* mine, const std::vector<int64_t>& counts) {
    bytes += gathered_bytes(counts);
    tp->reduce_scatter_sum_v(all, mine, counts);
  };
  etp.gather_counts = [tp](const int64_t* mine, int64_t* all, int64_t n) {
    tp->all_gather(mine, all, static_cast<size_t>(n) * sizeof(int64_t));
  };
  return etp;
}

std::vector<metrics::PlacementRecord> EpRuntime::replace_if_due(int64_t step,
                                                                const std::vector<std::vector<int64_t>>& counts,
                                                                const std::vector<std::vector<int64_t>>& cosel,
                                                                MixtralModel& model, AdamW* optimizer,
                                                                const std::vector<int64_t>& layer_index) {
  const int64_t every = spec_.placement.replace_every, E = spec_.model.moe.num_experts;
  if (every <= 0) return {};
  window_load_.resize(counts.size(), std::vector<double>(static_cast<size_t>(E), 0.0));
  for (size_t l = 0; l < counts.size(); ++l)
    for (size_t e = 0; e < counts[l].size(); ++e) window_load_[l][e] += static_cast<double>(counts[l][e]);
  if (!cosel.empty()) {  // the strategies want the matrix symmetric
    last_cosel_.assign(cosel.size(), std::vector<double>(static_cast<size_t>(E * E), 0.0));
    for (size_t l = 0; l < cosel.size(); ++l)
      for (int64_t a = 0; a < E; ++a)
        for (int64_t b = a + 1; b < E; ++b)
          last_cosel_[l][a * E + b] = last_cosel_[l][b * E + a] = static_cast<double>(cosel[l][a * E + b]);
  }
  if (step % every != 0) return {};
  // Every rank plans every layer from the same figures, so the decision is the world's; with pp
  // each stage then moves its own layers' experts.
  Placement all = placement_for_spec(spec_, window_load_, last_cosel_);
  window_load_.clear();
  if (all == placement_all_) return {};
  Placement next = stage_part(all);
  std::vector<Param*> experts;
  for (Param* p : model.named_params())
    if (is_expert(p)) experts.push_back(p);
  Migration moved = migrate_experts(*groups_.ep, *replicas_, next, experts, optimizer);
  sum_over_pipeline(&moved.bytes, 1);  // every stage's move (rank 0's EP group in each)
  const int64_t member = groups_.ep->rank();
  for (size_t l = 0; l < placed_.size(); ++l)
    placed_[l]->set_placement(next[l], ReplicaChoice(next[l], placement_input_.node_of_member, member,
                                                     spec_.placement.replica_choice));
  replicas_ = std::make_unique<ExpertReplicas>(std::move(next), member);
  placement_all_ = std::move(all);
  // The slowest rank's move is what the step paid.
  std::vector<double> ms(static_cast<size_t>(world_size()));
  pg_->world->all_gather(&moved.ms, ms.data(), sizeof(double));
  const double worst = *std::max_element(ms.begin(), ms.end());
  std::vector<metrics::PlacementRecord> out;
  if (!is_rank0()) return out;
  for (size_t l = 0; l < placement_all_.size(); ++l) {
    metrics::PlacementRecord r;
    r.step = step + 1;  // in force from the next step
    r.layer = l < layer_index.size() ? layer_index[l] : static_cast<int64_t>(l);
    r.slots_per_rank = placement_all_[l].slots_per_rank;
    r.phy_to_log = placement_all_[l].phy_to_log;
    if (l == 0) r.migrated_bytes = moved.bytes, r.migrate_ms = std::round(worst * 1000.0) / 1000.0;
    out.push_back(std::move(r));
  }
  return out;
}

void EpRuntime::reduce_gradients(const std::vector<Param*>& params) {
  // Each rank's gradients are already scaled for the mean over all dp × ep ranks' tokens
  // (MoeLayerOptions::data_slices): the global gradient is their sum.
  GradientBytes& b = grad_bytes_;
  if (groups_.tp)  // the MoE blocks' params: every tp rank routed its share of the tokens
    b.tp += all_reduce_unrounded(*groups_.tp, params, [](const Param* p) { return p->tp_partial; });
  if (etp_copies_)  // an expert slice's copies, one per etp group, each computed from its group's rows
    b.etp_copies += all_reduce_unrounded(*etp_copies_, params, is_expert);
  if (tied_embedding_)  // the embedding's gradient plus the head's: one process's sum, unrounded
    b.tied_embedding += all_reduce_unrounded(*tied_embedding_, params, [](const Param* p) { return p->name == kEmbedding; });
  b.dense_dp += all_reduce_grads(*groups_.dense_dp, params, false);
  b.expert_dp += all_reduce_grads(*groups_.expert_dp, params, true);
  if (replicas_->has_replicas()) {
    std::vector<Param*> experts;
    for (Param* p : params)
      if (is_expert(p)) experts.push_back(p);
    b.replicas += replicas_->sum_replica_grads(*groups_.ep, experts);
  }
}

double EpRuntime::clip_grad_norm(const std::vector<Param*>& params, double max_norm) {
  // The one-process norm adds the params' squared sums in its params order, where each MoE
  // layer lists experts 0 … E−1. Here dense grads are identical on every rank and each expert
  // lives on one or more ranks of the EP group: gather the experts' sums over the EP group and add
  // everything in that same order, each logical expert once, from its primary replica (same bits).
  std::vector<double> mine, shards;
  for (Param* p : params)
    if (is_expert(p)) mine.push_back(squared_sum(*p));
    else if (p->shard.sharded()) shards.push_back(squared_sum(*p));
  // A tensor-parallel param's sum is its slices' sums added over the tp group (an expert's, with
  // etp, over its etp group: the other etp groups hold copies).
  if (groups_.tp && !shards.empty()) groups_.tp->all_reduce_sum(shards.data(), shards.size());
  if (groups_.tp && spec_.parallel.etp > 1 && !mine.empty()) etp_group().all_reduce_sum(mine.data(), mine.size());
  comm::Communicator& ep = *groups_.ep;
  std::vector<double> all(mine.size() * static_cast<size_t>(ep.size()));
  if (!mine.empty()) ep.all_gather(mine.data(), all.data(), mine.size() * sizeof(double));
  const int64_t S = replicas_->slots_per_rank();
  const size_t per_layer = static_cast<size_t>(3 * S);  // local slots × 3 weights
  // The one-process sum's terms in its order; with pp this stage's part of them, per chunk (one
  // without the interleaved schedule): the embedding is in the first, the final norm and the head
  // in the last, a layer's params in its chunk.
  const std::vector<StageLayers> chunks =
      stage_chunks(spec_.model.n_layers, spec_.parallel.pp, spec_.parallel.vpp, stage_, spec_.parallel.pp_layers);
  auto chunk_of = [&](const Param* p) -> size_t {
    if (chunks.size() == 1) return 0;
    const std::string prefix = "model.layers.";
    if (p->name.compare(0, prefix.size(), prefix) != 0) return p->name == kEmbedding ? 0 : chunks.size() - 1;
    const int64_t layer = std::stoll(p->name.substr(prefix.size()));
    for (size_t c = 0; c < chunks.size(); ++c)
      if (layer >= chunks[c].begin && layer < chunks[c].end) return c;
    throw Error("clip_grad_norm: layer " + std::to_string(layer) + " is not on this stage");
  };
  std::vector<std::vector<double>> chunk_terms(chunks.size());
  size_t seen = 0, sharded = 0;  // local expert params and tp slices passed so far
  const bool tied_head = tied_embedding_ && stage_ > 0;  // the first stage counts the tied embedding
  for (Param* p : params) {
    std::vector<double>& terms = chunk_terms[chunk_of(p)];
    if (!is_expert(p)) {
      const double term = p->shard.sharded() ? shards[sharded++] : squared_sum(*p);
      if (!(tied_head && p->name == kEmbedding)) terms.push_back(term);
      continue;
    }
    if (seen % per_layer == 0) {  // the layer's first local expert: all of the layer's experts
      const size_t layer = seen / per_layer;
      const LayerPlacement& lp = replicas_->placement().at(layer);
      for (const std::vector<int64_t>& slots : lp.log_to_phy) {
        const int64_t r = lp.rank_of_slot(slots[0]), i = slots[0] - r * S;
        for (size_t w = 0; w < 3; ++w)
          terms.push_back(all[static_cast<size_t>(r) * mine.size() + layer * per_layer + static_cast<size_t>(i) * 3 + w]);
      }
    }
    ++seen;
  }
  // Chunks hold consecutive params: their terms in virtual-stage order (chunk-major, then stage).
  std::vector<double> terms;
  for (const std::vector<double>& chunk : chunk_terms) {
    if (!groups_.pp) {
      terms.insert(terms.end(), chunk.begin(), chunk.end());
      continue;
    }
    for (const auto& stage : gather_each(*groups_.pp, chunk)) terms.insert(terms.end(), stage.begin(), stage.end());
  }
  double ss = 0.0;
  for (double t : terms) ss += t;
  const double norm = std::sqrt(ss);
  clip_to_norm(params, norm, max_norm);
  return norm;
}

void EpRuntime::sum_over_data(double* values, size_t n) { groups_.dense_dp->all_reduce_sum(values, n); }
void EpRuntime::sum_over_data(int64_t* values, size_t n) { groups_.dense_dp->all_reduce_sum(values, n); }
void EpRuntime::sum_over_moe_shares(double* values, size_t n) { moe_group().all_reduce_sum(values, n); }
void EpRuntime::sum_over_moe_shares(int64_t* values, size_t n) { moe_group().all_reduce_sum(values, n); }
comm::Communicator& EpRuntime::moe_group() const {
  if (!groups_.tp) return *groups_.dense_dp;
  return groups_.stage ? *groups_.stage : *pg_->world;
}

int64_t EpRuntime::logical_params(MixtralModel& model) {
  int64_t n = 0, expert = 0;  // expert: one expert's three weights
  size_t seen = 0;
  for (Param* p : model.named_params()) {
    if (p->is_expert) {
      if (seen++ < 3) expert += full_numel(*p);
      continue;
    }
    if (!(tied_embedding_ && stage_ > 0 && p->name == kEmbedding)) n += full_numel(*p);
  }
  n += static_cast<int64_t>(model.moe_layers().size()) * spec_.model.moe.num_experts * expert;
  sum_over_pipeline(&n, 1);
  return n;
}

uint32_t EpRuntime::pipe_tag(int kind, uint32_t& counter) {
  return (static_cast<uint32_t>(kind + 1) << 24) | (counter++ & 0xFFFFFFu);  // below: 24 bits of message number
}

EpRuntime::Part EpRuntime::tp_part(size_t n) const {
  // With sequence parallelism a boundary tensor is already the rank's share: sent whole.
  if (!groups_.tp || spec_.parallel.sequence_parallel || n % static_cast<size_t>(groups_.tp->size()) != 0) return {0, n};
  const size_t each = n / static_cast<size_t>(groups_.tp->size());
  return {static_cast<size_t>(groups_.tp->rank()) * each, each};
}

void EpRuntime::gather_tp_parts(std::vector<float>& x) const {
  const Part part = tp_part(x.size());
  if (part.count == x.size()) return;
  const std::vector<float> mine(x.begin() + static_cast<std::ptrdiff_t>(part.first),
                                x.begin() + static_cast<std::ptrdiff_t>(part.first + part.count));
  groups_.tp->all_gather(mine.data(), x.data(), part.count * sizeof(float));
}

int EpRuntime::neighbour(int offset) const {
  const int n = groups_.pp->size();  // a ring: the interleaved schedule's next chunk is on the first stage
  return (groups_.pp->rank() + offset + n) % n;
}

void EpRuntime::send(const std::vector<float>& x, int to) {
  const Part part = tp_part(x.size());
  pp_bytes_ += static_cast<int64_t>(part.count * sizeof(float));
  const int kind = to > 0 ? 0 : 1;  // forward carries activations, backward gradients
  PendingPipeSend& p = pipe_sends_.emplace_back();
  p.data.assign(x.begin() + static_cast<std::ptrdiff_t>(part.first),
                x.begin() + static_cast<std::ptrdiff_t>(part.first + part.count));
  p.send = groups_.pp->isend(p.data.data(), p.data.size() * sizeof(float), neighbour(to), pipe_tag(kind, sent_[kind]));
}

EpRuntime::PipeRecv EpRuntime::post_recv(std::vector<float>& x, int from) {
  const Part part = tp_part(x.size());
  const int kind = from < 0 ? 0 : 1;
  PipeRecv r;
  r.into = &x;
  r.op = groups_.pp->irecv(x.data() + part.first, part.count * sizeof(float), neighbour(from), pipe_tag(kind, received_[kind]));
  return r;
}

void EpRuntime::wait_recv(PipeRecv& r) {
  groups_.pp->wait(r.op);
  if (r.into) gather_tp_parts(*r.into);
  r.into = nullptr;
}

void EpRuntime::send_activations(const std::vector<float>& x) { send(x, +1); }
void EpRuntime::send_gradient(const std::vector<float>& g) { send(g, -1); }
EpRuntime::PipeRecv EpRuntime::post_recv_activations(std::vector<float>& x) { return post_recv(x, -1); }
EpRuntime::PipeRecv EpRuntime::post_recv_gradient(std::vector<float>& g) { return post_recv(g, +1); }
void EpRuntime::recv_activations(std::vector<float>& x) {
  PipeRecv r = post_recv(x, -1);
  wait_recv(r);
}
void EpRuntime::recv_gradient(std::vector<float>& g) {
  PipeRecv r = post_recv(g, +1);
  wait_recv(r);
}

void EpRuntime::finish_sends() {
  for (PendingPipeSend& p : pipe_sends_) groups_.pp->wait(p.send);
  pipe_sends_.clear();
}

void EpRuntime::sum_over_pipeline(double* values, size_t n) {
  if (groups_.pp) groups_.pp->all_reduce_sum(values, n);
}

void EpRuntime::sum_over_pipeline(int64_t* values, size_t n) {
  if (groups_.pp) groups_.pp->all_reduce_sum(values, n);
}

std::vector<std::vector<double>> EpRuntime::gather_over_pipeline(const std::vector<double>& values) {
  if (!groups_.pp) return {values};
  return gather_each(*groups_.pp, values);
}

std::vector<double> EpRuntime::gather_over_pipeline(double value) {
  if (!groups_.pp) return {value};
  std::vector<double> out(static_cast<size_t>(groups_.pp->size()));
  groups_.pp->all_gather(&value, out.data(), sizeof(double));
  return out;
}

bool EpRuntime::any(bool flag) {
  int64_t v = flag ? 1 : 0;
  pg_->world->all_reduce_sum(&v, 1);
  return v > 0;
}

void EpRuntime::discard_a2a_totals() {
  for (auto* d : dispatchers_) static_cast<void>(d->take_totals()), static_cast<void>(d->take_slot_rows());
}

std::vector<metrics::A2aRecord> EpRuntime::a2a_records(int64_t step, const std::vector<int64_t>& layer_index,
                                                       bool slot_rows) {
  // Every layer's slot rows of every rank (one all-gather), when asked for.
  // With pp every rank sends max_stage_moe_layers_ layers (a stage with fewer pads with zeros).
  const size_t L = static_cast<size_t>(std::max<int64_t>(max_stage_moe_layers_, static_cast<int64_t>(dispatchers_.size())));
  std::vector<int64_t> slots_mine, slots_all;
  size_t slots_per_layer = 0;
  for (auto* d : dispatchers_) {
    std::vector<int64_t> rows = d->take_slot_rows();
    slots_per_layer = rows.size();
    slots_mine.insert(slots_mine.end(), rows.begin(), rows.end());
  }
  if (groups_.pp) {  // a stage without MoE layers has no row count of its own
    std::vector<int64_t> each(static_cast<size_t>(world_size()));
    const int64_t n = static_cast<int64_t>(slots_per_layer);
    pg_->world->all_gather(&n, each.data(), sizeof(int64_t));
    slots_per_layer = static_cast<size_t>(*std::max_element(each.begin(), each.end()));
    slots_mine.resize(L * slots_per_layer, 0);
  }
  if (slot_rows && !slots_mine.empty()) {
    slots_all.resize(slots_mine.size() * static_cast<size_t>(world_size()));
    pg_->world->all_gather(slots_mine.data(), slots_all.data(), slots_mine.size() * sizeof(int64_t));
  }
  const size_t per = 4 * 8;  // phases × (us, bytes, intra, inter, exposed us, meta, counts us, rows)
  std::vector<double> mine(L * per, 0.0);
  for (size_t l = 0; l < dispatchers_.size(); ++l) {
    const comm::A2ATimes t = dispatchers_[l]->take_totals();
    for (size_t ph = 0; ph < 4; ++ph) {
      double* m = mine.data() + l * per + ph * 8;
      m[0] = t[ph].us, m[1] = static_cast<double>(t[ph].bytes);
      m[2] = static_cast<double>(t[ph].intra_bytes), m[3] = static_cast<double>(t[ph].inter_bytes);
      m[4] = t[ph].exposed_us;
      m[5] = static_cast<double>(t[ph].meta_bytes);
      m[6] = t[ph].count_us;
      m[7] = static_cast<double>(t[ph].rows);
    }
  }
  const int P = world_size();
  std::vector<double> all(mine.size() * static_cast<size_t>(P));
  pg_->world->all_gather(mine.data(), all.data(), mine.size() * sizeof(double));
  std::vector<metrics::A2aRecord> out;
  if (!is_rank0()) return out;
  // Global MoE layer g lives on stage stage_of[g] as its local layer local_of[g]; the ranks of the
  // other stages report zeros for it.
  std::vector<int64_t> stage_of(placement_all_.size(), 0), local_of(placement_all_.size(), 0);
  for (size_t s = 0; s < stage_moe_.size(); ++s)
    for (size_t l = 0; l < stage_moe_[s].size(); ++l) {
      stage_of[static_cast<size_t>(stage_moe_[s][l])] = static_cast<int64_t>(s);
      local_of[static_cast<size_t>(stage_moe_[s][l])] = static_cast<int64_t>(l);
    }
  for (size_t g = 0; g < stage_of.size(); ++g)
    for (size_t ph = 0; ph < 4; ++ph) {
      const size_t l = static_cast<size_t>(local_of[g]);
      metrics::A2aRecord a;
      a.step = step;
      a.layer = g < layer_index.size() ? layer_index[g] : int64_t(g);
      a.phase = kPhaseName[ph], a.pass = kPassName[ph];
      int64_t intra_sum = 0, inter_sum = 0, meta_sum = 0;
      std::vector<int64_t> meta;
      std::vector<double> counts;
      std::vector<int64_t> rows;
      const std::vector<double> none(8, 0.0);
      for (int r = 0; r < P; ++r) {
        const bool on_stage = layout_.ranks[static_cast<size_t>(r)].pp == stage_of[g];
        const double* m = on_stage ? all.data() + static_cast<size_t>(r) * mine.size() + l * per + ph * 8 : none.data();
        a.rank_us.push_back(std::round(m[0] * 10.0) / 10.0);
        a.rank_exposed_us.push_back(std::round(m[4] * 10.0) / 10.0);
        a.rank_bytes.push_back(static_cast<int64_t>(m[1]));
        a.rank_intra_bytes.push_back(static_cast<int64_t>(m[2]));
        a.rank_inter_bytes.push_back(static_cast<int64_t>(m[3]));
        intra_sum += static_cast<int64_t>(m[2]);
        inter_sum += static_cast<int64_t>(m[3]);
        meta.push_back(static_cast<int64_t>(m[5]));
        meta_sum += static_cast<int64_t>(m[5]);
        counts.push_back(std::round(m[6] * 10.0) / 10.0);
        rows.push_back(static_cast<int64_t>(m[7]));
      }
      a.intra_bytes = intra_sum, a.inter_bytes = inter_sum;
      // The hierarchical exchange's routing metadata (masks, gate weights, their gradients).
      if (meta_sum > 0) a.rank_meta_bytes = meta;
      // Of rank_us, the counts exchange (and planning) that opens the dispatch: mostly the wait for
      // the slowest rank's routing, not bandwidth.
      if (ph == comm::kDispatchFwd) a.rank_counts_us = counts;
      // And the rows each rank's experts computed: the measured load a placement balances.
      if (ph == comm::kDispatchFwd) a.rank_rows = rows;
      if (ph == comm::kDispatchFwd && !slots_all.empty())
        for (int r = 0; r < P; ++r) {
          const auto* from = slots_all.data() + static_cast<size_t>(r) * slots_mine.size() + l * slots_per_layer;
          if (layout_.ranks[static_cast<size_t>(r)].pp == stage_of[g])
            a.rank_slot_rows.insert(a.rank_slot_rows.end(), from, from + slots_per_layer);
          else
            a.rank_slot_rows.insert(a.rank_slot_rows.end(), slots_per_layer, 0);
        }
      out.push_back(std::move(a));
    }
  return out;
}

void EpRuntime::gather_tp_slices(MixtralModel& model, AdamW* optimizer) {
  tp_full_.clear();
  if (!groups_.tp || groups_.tp->world_ranks()[0] != stage_leader()) return;  // the stage leader's tp group
  comm::Communicator& tp = *groups_.tp;
  std::vector<Param*> sliced;
  for (Param* p : model.named_params())
    // (etp's expert slices: assemble_expert_slices; a tied embedding's copy on the last stage: stage 0's)
    if (p->shard.sharded() && !p->is_expert && !(tied_embedding_ && stage_ > 0 && p->name == kEmbedding)) sliced.push_back(p);
  const int parts = optimizer ? 3 : 1;  // values, exp_avg, exp_avg_sq
  const PartOf part_of = parts_of(optimizer);
  std::vector<float> pack;
  for (int part = 0; part < parts; ++part)
    for (const Param* p : sliced) pack.insert(pack.end(), part_of(p, part).begin(), part_of(p, part).end());
  if (tp.rank() != 0) {
    tp.send(pack.data(), pack.size() * sizeof(float), 0, 7002);
    return;
  }
  std::vector<std::vector<float>> peer(static_cast<size_t>(tp.size()));
  for (int r = 1; r < tp.size(); ++r) {
    peer[static_cast<size_t>(r)].resize(pack.size());
    tp.recv(peer[static_cast<size_t>(r)].data(), pack.size() * sizeof(float), r, 7002);
  }
  tp_full_.resize(sliced.size() * static_cast<size_t>(parts));  // sized once: the refs point into it
  size_t at = 0;  // offset of (part, param) in every rank's pack: the same shapes in the same order
  for (int part = 0; part < parts; ++part)
    for (size_t i = 0; i < sliced.size(); ++i) {
      const Param* p = sliced[i];
      std::vector<float>& full = tp_full_[static_cast<size_t>(part) * sliced.size() + i];
      full.resize(static_cast<size_t>(full_numel(*p)));
      put_slice(*p, part_of(p, part).data(), full.data());
      for (int r = 1; r < tp.size(); ++r) put_slice(*p, r, peer[static_cast<size_t>(r)].data() + at, full.data());
      at += p->value.size();
      const std::string name = part == 0 ? p->name : (part == 1 ? "exp_avg." : "exp_avg_sq.") + p->name;
      (part == 0 ? remote_.weights : remote_.optimizer).push_back({name, p->shard.full, full.data()});
    }
}

EpRuntime::PartOf EpRuntime::parts_of(AdamW* optimizer) {
  auto index = std::make_shared<std::map<const Param*, size_t>>();
  if (optimizer)
    for (size_t i = 0; i < optimizer->params().size(); ++i) (*index)[optimizer->params()[i]] = i;
  return [optimizer, index](const Param* p, int part) -> const std::vector<float>& {
    return part == 0 ? p->value : part == 1 ? optimizer->exp_avg()[index->at(p)] : optimizer->exp_avg_sq()[index->at(p)];
  };
}

const float* EpRuntime::assemble_expert_slices(const std::vector<Param*>& experts, const PartOf& part_of, int parts) {
  // With etp the experts are slices: the first etp group's rank 0 assembles the logical tensors,
  // which the stage's dp 0 ranks need (they are the tp ranks 0 of the leader's EP group, and their
  // first etp groups; the other etp groups hold copies).
  expert_full_.clear();
  if (layout_.ranks[static_cast<size_t>(rank())].dp != 0 || groups_.tp->rank() >= spec_.parallel.etp) return nullptr;
  comm::Communicator& tp = etp_group();
  std::vector<float> pack;
  for (int part = 0; part < parts; ++part)
    for (const Param* p : experts) pack.insert(pack.end(), part_of(p, part).begin(), part_of(p, part).end());
  if (tp.rank() != 0) {
    tp.send(pack.data(), pack.size() * sizeof(float), 0, 7006);
    return nullptr;
  }
  std::vector<float> peer(pack.size());
  size_t total = 0;
  for (const Param* p : experts) total += static_cast<size_t>(full_numel(*p));
  expert_full_.assign(total * static_cast<size_t>(parts), 0.0f);  // (part, expert) logical tensors, in order
  for (int r = 0; r < tp.size(); ++r) {
    if (r > 0) tp.recv(peer.data(), peer.size() * sizeof(float), r, 7006);
    const float* from = r == 0 ? pack.data() : peer.data();
    size_t at = 0, out = 0;
    for (int part = 0; part < parts; ++part)
      for (const Param* p : experts) {
        put_slice(*p, r, from + at, expert_full_.data() + out);
        at += p->value.size();
        out += static_cast<size_t>(full_numel(*p));
      }
  }
  return expert_full_.data();
}

const CheckpointData& EpRuntime::gather_remote_experts(MixtralModel& model, AdamW* optimizer) {
  remote_ = CheckpointData{};
  gathered_.clear();
  gather_tp_slices(model, optimizer);
  comm::Communicator& ep = *groups_.ep;
  std::vector<Param*> experts;
  for (Param* p : model.named_params())
    if (is_expert(p)) experts.push_back(p);
  // values, then exp_avg, then exp_avg_sq, in params order.
  const int parts = optimizer ? 3 : 1;
  const PartOf part_of = parts_of(optimizer);
  const bool sliced = spec_.parallel.etp > 1;
  const float* whole = sliced ? assemble_expert_slices(experts, part_of, parts) : nullptr;
  if (sliced && whole && rank() == stage_leader()) {  // the leader's own experts: in the model only as slices
    size_t at = 0;
    for (int part = 0; part < parts; ++part)
      for (const Param* p : experts) {
        const std::string name = part == 0 ? p->name : (part == 1 ? "exp_avg." : "exp_avg_sq.") + p->name;
        (part == 0 ? remote_.weights : remote_.optimizer).push_back({name, p->shard.full, whole + at});
        at += static_cast<size_t>(full_numel(*p));
      }
  }
  if (ep.world_ranks()[0] != stage_leader() || ep.size() == 1) {  // only the stage leaders' EP groups gather
    gather_pipeline_stages(model, optimizer);
    return remote_;
  }
  std::vector<float> pack;
  if (sliced && whole) {
    pack.assign(whole, whole + expert_full_.size());
  } else {
    for (int part = 0; part < parts; ++part)
      for (Param* p : experts) pack.insert(pack.end(), part_of(p, part).begin(), part_of(p, part).end());
  }
  if (ep.rank() != 0) {
    ep.send(pack.data(), pack.size() * sizeof(float), 0, 7001);
    gather_pipeline_stages(model, optimizer);
    return remote_;
  }
  const int64_t S = replicas_->slots_per_rank();
  const auto layers = model.moe_layer_indices();
  const char* const w_name[3] = {"w1", "w2", "w3"};
  gathered_.resize(static_cast<size_t>(ep.size()));
  for (int peer = 1; peer < ep.size(); ++peer) {
    std::vector<float>& buf = gathered_[static_cast<size_t>(peer)];
    buf.resize(pack.size());
    ep.recv(buf.data(), buf.size() * sizeof(float), peer, 7001);
    size_t at = 0;
    for (int part = 0; part < parts; ++part) {
      size_t k = 0;  // index into rank 0's expert params: same shapes in the same order
      for (size_t l = 0; l < layers.size(); ++l)
        for (int64_t slot = peer * S; slot < (peer + 1) * S; ++slot)
          for (const char* w : w_name) {
            const Param* like = experts[k++];
            const size_t numel = static_cast<size_t>(full_numel(*like));  // logical tensors, also with etp
            const std::vector<int64_t>& shape = like->shard.sharded() ? like->shard.full : like->shape;
            // A replicated expert is written once, from its lowest member (rank 0's own are in
            // the model's params).
            const int64_t e = replicas_->placement()[l].phy_to_log[static_cast<size_t>(slot)];
            if (replicas_->primary_member(static_cast<int64_t>(l), e) != peer) {
              at += numel;
              continue;
            }
            const std::string name = "model.layers." + std::to_string(layers[l]) + ".block_sparse_moe.experts." +
                                     std::to_string(e) + "." + w + ".weight";
            if (part == 0)
              remote_.weights.push_back({name, shape, buf.data() + at});
            else
              remote_.optimizer.push_back({(part == 1 ? "exp_avg." : "exp_avg_sq.") + name, shape, buf.data() + at});
            at += numel;
          }
    }
  }
  gather_pipeline_stages(model, optimizer);
  return remote_;
}

void EpRuntime::gather_pipeline_stages(MixtralModel& model, AdamW* optimizer) {
  stage_tensors_.clear();
  if (!groups_.pp || rank() != stage_leader()) return;
  comm::Communicator& pp = *groups_.pp;  // the stage leaders, rank 0 first
  if (pp.rank() > 0) {
    // This stage, assembled like rank 0's: the model's whole tensors, then the gathered ones.
    nlohmann::json head = {{"tensors", nlohmann::json::array()}, {"balancing_bias", nlohmann::json::object()}};
    std::vector<float> payload;
    auto add = [&](const std::string& name, const std::vector<int64_t>& shape, const float* data, size_t n) {
      head["tensors"].push_back({{"name", name}, {"shape", shape}});
      payload.insert(payload.end(), data, data + n);
    };
    const PartOf part_of = parts_of(optimizer);
    for (Param* p : model.named_params()) {
      if (p->shard.sharded() || p->name == kEmbedding) continue;  // slices: in remote_; the tied copy: stage 0's
      add(p->name, p->shape, p->value.data(), p->value.size());
      if (!optimizer) continue;
      add("exp_avg." + p->name, p->shape, part_of(p, 1).data(), p->value.size());
      add("exp_avg_sq." + p->name, p->shape, part_of(p, 2).data(), p->value.size());
    }
    for (const auto* list : {&remote_.weights, &remote_.optimizer})
      for (const TensorRef& t : *list) {
        size_t n = 1;
        for (int64_t d : t.shape) n *= static_cast<size_t>(d);
        add(t.name, t.shape, t.data, n);
      }
    const auto layers = model.moe_layers();
    const auto index = model.moe_layer_indices();
    for (size_t i = 0; i < layers.size(); ++i) head["balancing_bias"][std::to_string(index[i])] = layers[i]->balancing_bias();
    const std::string text = head.dump();
    const int64_t sizes[2] = {static_cast<int64_t>(text.size()), static_cast<int64_t>(payload.size())};
    pp.send(sizes, sizeof sizes, 0, 7003);
    pp.send(text.data(), text.size(), 0, 7004);
    pp.send(payload.data(), payload.size() * sizeof(float), 0, 7005);
    return;
  }
  nlohmann::json biases = nlohmann::json::object();
  stage_tensors_.reserve(static_cast<size_t>(pp.size()));  // the refs point into these buffers
  for (int stage = 1; stage < pp.size(); ++stage) {
    int64_t sizes[2] = {0, 0};
    pp.recv(sizes, sizeof sizes, stage, 7003);
    std::string text(static_cast<size_t>(sizes[0]), '\0');
    pp.recv(text.data(), text.size(), stage, 7004);
    std::vector<float>& payload = stage_tensors_.emplace_back(static_cast<size_t>(sizes[1]));
    pp.recv(payload.data(), payload.size() * sizeof(float), stage, 7005);
    const nlohmann::json head = nlohmann::json::parse(text);
    size_t at = 0;
    for (const auto& t : head["tensors"]) {
      TensorRef ref{t["name"].get<std::string>(), t["shape"].get<std::vector<int64_t>>(), payload.data() + at};
      size_t n = 1;
      for (int64_t d : ref.shape) n *= static_cast<size_t>(d);
      at += n;
      const bool moment = ref.name.rfind("exp_avg", 0) == 0;
      (moment ? remote_.optimizer : remote_.weights).push_back(std::move(ref));
    }
    for (const auto& [layer, bias] : head["balancing_bias"].items()) biases[layer] = bias;
  }
  remote_.trainer_state["balancing_bias"] = biases;
}
LoadedCheckpoint EpRuntime::local_part(const LoadedCheckpoint& ck, MixtralModel& model) const {
  LoadedCheckpoint out;
  out.dir = ck.dir;
  out.config = ck.config;
  out.trainer_state = ck.trainer_state;
  out.spec = ck.spec;
  for (Param* p : model.named_params()) {
    if (auto it = ck.weights.find(p->name); it != ck.weights.end()) out.weights.insert(*it);
    for (const char* prefix : {"exp_avg.", "exp_avg_sq."})
      if (auto it = ck.optimizer.find(prefix + p->name); it != ck.optimizer.end()) out.optimizer.insert(*it);
  }
  return out;
}

}  // namespace moe::rt::ep
