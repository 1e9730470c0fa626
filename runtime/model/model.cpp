// The Mixtral-style decoder (see model.h): the layer loop, the residual stream and the loss.
#include "model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "cpu_support.h"
#include "cross_entropy.h"
#include "embedding.h"
#include "error.h"
#include "linear.h"
#include "param_shard.h"
#include "pipeline_schedule.h"
#include "rmsnorm.h"
#include "router_init.h"
#include "vocab_parallel_cross_entropy.h"

namespace moe::rt {

// One decoder layer's parameters, blocks and saved activations.
struct MixtralModel::Layer {
  Param input_layernorm, post_attention_layernorm;
  SelfAttention attention;
  std::unique_ptr<DenseMlp> mlp;       // dense layers
  std::unique_ptr<MoeLayer> moe;       // MoE layers
  std::vector<float> x, normed1, rstd1, attn_out, h, normed2, rstd2, ffn_out;
  std::vector<float> gathered1, gathered2;  // sequence parallelism: the blocks' all-gathered inputs

  Layer(const JobSpec& spec, int64_t i, bool dense, int64_t d_ff, const ModelOptions& options)
      : input_layernorm("model.layers." + std::to_string(i) + ".input_layernorm.weight", {spec.model.d_model}),
        post_attention_layernorm("model.layers." + std::to_string(i) + ".post_attention_layernorm.weight",
                                 {spec.model.d_model}),
        attention(spec.model, i, options.tp) {
    if (dense)
      mlp = std::make_unique<DenseMlp>(i, spec.model.d_model, d_ff, options.tp);
    else
      moe = options.make_moe_layer ? options.make_moe_layer(i) : std::make_unique<MoeLayer>(spec, i);
  }
};

namespace {

// FNV-1a: a stable hash of a parameter's name for its own random stream.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool is_norm(const Param& p) { return p.shape.size() == 1; }

bool is_router(const Param& p) {
  constexpr std::string_view suffix = "block_sparse_moe.gate.weight";
  return p.name.size() >= suffix.size() && p.name.compare(p.name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

MixtralModel::MixtralModel(const JobSpec& spec, const ModelOptions& options)
    : spec_(spec),
      d_model_(spec.model.d_model),
      vocab_(spec.model.vocab_size),
      head_dim_(spec.model.resolved_head_dim()) {
  check_model_supported(spec, static_cast<bool>(options.make_moe_layer));
  tp_ = options.tp;
  pp_ = options.pp;
  holds_embedding_ = pp_.first() || (pp_.last() && spec.model.tie_embeddings);
  // Tensor parallelism splits the vocabulary (Megatron's vocab-parallel embedding and output layer).
  if (tp_.active()) vocab_shard_ = VocabRange{tp_.rank * vocab_ / tp_.size, vocab_ / tp_.size};
  embed_tokens_ = sharded_param("model.embed_tokens.weight", {vocab_, d_model_}, 0, tp_.rank, tp_.size);
  norm_ = Param("model.norm.weight", {d_model_});
  if (!spec.model.tie_embeddings) lm_head_ = sharded_param("lm_head.weight", {vocab_, d_model_}, 0, tp_.rank, tp_.size);
  const auto& m = spec.model;
  auto is_dense = [&](int64_t i) { return options.all_dense || i < m.moe.first_dense_layers; };
  for (const StageLayers& chunk : stage_chunks(m.n_layers, pp_.stages, pp_.chunks, pp_.stage, spec.parallel.pp_layers)) {
    chunk_begin_.push_back(layers_.size());
    int64_t before = 0, after = 0;  // the other chunks' routers, for the jitter stream
    for (int64_t i = 0; i < m.n_layers; ++i)
      if (!is_dense(i)) before += i < chunk.begin, after += i >= chunk.end;
    jitter_draws_before_.push_back(before), jitter_draws_after_.push_back(after);
    for (int64_t i = chunk.begin; i < chunk.end; ++i) {
      const bool dense = is_dense(i);
      const int64_t d_ff = m.d_ff > 0 ? m.d_ff : m.moe.d_expert;
      layers_.push_back(std::make_unique<Layer>(spec, i, dense, d_ff, options));
      layer_index_.push_back(i);
      if (tp_.active() && layers_.back()->moe)  // each tp rank's gradient covers its share of the tokens
        for (Param* p : layers_.back()->moe->params())
          if (!p->shard.sharded()) p->tp_partial = true;  // (an etp slice's covers every share's rows)
    }
  }
  chunk_begin_.push_back(layers_.size());
  if (tp_.sequence_sharded())  // norms, embedding and head see the rank's share of the tokens too
    for (Param* p : named_params())
      if (!p->shard.sharded()) p->tp_partial = true;
  init_params(static_cast<uint64_t>(spec.train.seed));
}

MixtralModel::~MixtralModel() = default;

void MixtralModel::init_params(uint64_t seed) {
  for (Param* p : named_params()) {
    if (is_norm(*p)) {
      std::fill(p->value.begin(), p->value.end(), 1.0f);
      continue;
    }
    const uint64_t stream = seed ^ name_hash(p->name);
    if (spec_.model.moe.router_init == "clustered" && is_router(*p)) {
      const MoeSpec& e = spec_.model.moe;
      // Each layer its own groups and directions (the parameter's stream).
      init_clustered_router(p->value, e.num_experts, spec_.model.d_model, e.top_k, spec_.model.init_std, stream);
      continue;
    }
    std::mt19937_64 rng(stream);
    std::normal_distribution<float> normal(0.0f, static_cast<float>(spec_.model.init_std));
    if (!p->shard.sharded()) {
      for (float& v : p->value) v = normal(rng);
      continue;
    }
    std::vector<float> full(static_cast<size_t>(full_numel(*p)));  // a slice: the logical tensor's draw
    for (float& v : full) v = normal(rng);
    take_slice(*p, full.data(), p->value.data());
  }
}

std::vector<Param*> MixtralModel::named_params() {
  std::vector<Param*> out;
  if (holds_embedding_) out.push_back(&embed_tokens_);
  for (auto& layer : layers_) {
    out.push_back(&layer->input_layernorm);
    for (Param* p : layer->attention.params()) out.push_back(p);
    out.push_back(&layer->post_attention_layernorm);
    for (Param* p : layer->mlp ? layer->mlp->params() : layer->moe->params()) out.push_back(p);
  }
  if (!pp_.last()) return out;
  out.push_back(&norm_);
  if (!spec_.model.tie_embeddings) out.push_back(&lm_head_);
  return out;
}

int64_t MixtralModel::num_params() {
  int64_t n = 0;
  for (Param* p : named_params()) n += p->numel();
  return n;
}

std::vector<MoeLayer*> MixtralModel::moe_layers() {
  std::vector<MoeLayer*> out;
  for (auto& layer : layers_)
    if (layer->moe) out.push_back(layer->moe.get());
  return out;
}

std::vector<int64_t> MixtralModel::moe_layer_indices() const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i]->moe) out.push_back(layer_index_[i]);
  return out;
}

void MixtralModel::zero_grad() {
  for (Param* p : named_params()) p->zero_grad();
}

void MixtralModel::use_exact_grads() {
  for (Param* p : named_params()) p->use_exact_grad();
}

void MixtralModel::round_exact_grads() {
  for (Param* p : named_params())
    if (p->exact_grad.size() > 0) p->exact_grad.round_to(p->grad.data());
}

ForwardResult MixtralModel::forward(const int32_t* tokens, const int32_t* targets, int64_t batch,
                                    const MoeLayerOptions& options, std::mt19937_64& rng, int64_t seq,
                                    const float* stage_input, int64_t chunk) {
  if (chunk < 0 || chunk >= pp_.chunks) throw Error("model: no chunk " + std::to_string(chunk));
  last_chunk_ = chunk;
  batch_ = batch;
  seq_ = seq > 0 ? seq : spec_.model.seq_len;
  const int64_t T = batch_ * seq_, d = d_model_;
  const double eps = spec_.model.norm_eps;
  for (int64_t t = 0; t < T; ++t)
    if (tokens[t] < 0 || tokens[t] >= vocab_ || (targets && (targets[t] < 0 || targets[t] >= vocab_)))
      throw Error("model.vocab_size: token " + std::to_string(targets && (targets[t] < 0 || targets[t] >= vocab_)
                                                              ? targets[t] : tokens[t]) +
                  " at position " + std::to_string(t) + " is outside 0.." + std::to_string(vocab_ - 1));
  tokens_.assign(tokens, tokens + T);
  loss_scale_ = options.loss_scale;
  mean_tokens_ = T * std::max<int64_t>(options.data_slices, 1);
  MoeLayerOptions moe_options = options;
  moe_options.segment_tokens = seq_;
  targets_ = nullptr;
  if (targets) {
    target_copy_.assign(targets, targets + T);
    targets_ = target_copy_.data();
  }

  ForwardResult result;
  // The residual stream's rows on this rank: all T, or with sequence parallelism the rank's share.
  const bool sp = tp_.sequence_sharded();
  const TokenShare rows = residual_rows();
  const int64_t R = rows.rows;
  std::vector<float> x(R * d);
  if (pp_.starts(chunk) && !tp_.active()) {
    embedding_forward(x.data(), tokens_.data(), embed_tokens_.value.data(), T, d);
  } else if (pp_.starts(chunk)) {  // each tp rank looks up its vocabulary shard's tokens: summed over tp
    sp_partial_.resize(static_cast<size_t>(T * d));
    embedding_forward(sp_partial_.data(), tokens_.data(), embed_tokens_.value.data(), T, d, vocab_shard_);
    if (sp) {
      scatter_rows(sp_partial_, x);
    } else {
      std::copy(sp_partial_.begin(), sp_partial_.end(), x.begin());
      tp_.all_reduce(x.data(), T * d);
    }
  } else {
    if (!stage_input && R > 0) throw Error("model: pipeline stage " + std::to_string(pp_.stage) + " needs the previous stage's activations");
    if (R > 0) std::copy(stage_input, stage_input + R * d, x.begin());
  }
  // Each router draws once from `rng` when it jitters: skip the other stages' (and chunks') draws.
  const bool jitters = options.training && !options.force_dropless && spec_.routing.jitter > 0.0;
  const size_t c = static_cast<size_t>(chunk);
  if (jitters) rng.discard(static_cast<unsigned long long>(jitter_draws_before_[c]));
  for (size_t i = chunk_begin_[c]; i < chunk_begin_[c + 1]; ++i) {
    Layer& L = *layers_[i];
    L.x = std::move(x);
    L.normed1.resize(R * d), L.rstd1.resize(R), L.attn_out.resize(R * d), L.h.resize(R * d);
    L.normed2.resize(R * d), L.rstd2.resize(R), L.ffn_out.resize(R * d);
    rmsnorm_forward(L.normed1.data(), L.rstd1.data(), L.x.data(), L.input_layernorm.value.data(), R, d, eps);
    if (sp) {  // all-gather the normed shares, reduce-scatter the heads' partial sums
      gather_rows(L.normed1, L.gathered1);
      L.attention.forward(L.gathered1.data(), sp_partial_.data(), batch_, seq_);
      scatter_rows(sp_partial_, L.attn_out);
    } else {
      L.attention.forward(L.normed1.data(), L.attn_out.data(), batch_, seq_);
    }
    for (int64_t j = 0; j < R * d; ++j) L.h[j] = L.x[j] + L.attn_out[j];
    rmsnorm_forward(L.normed2.data(), L.rstd2.data(), L.h.data(), L.post_attention_layernorm.value.data(), R, d,
                    eps);
    if (L.mlp && sp) {
      gather_rows(L.normed2, L.gathered2);
      L.mlp->forward(L.gathered2.data(), sp_partial_.data(), T, seq_);
      scatter_rows(sp_partial_, L.ffn_out);
    } else if (L.mlp) {
      L.mlp->forward(L.normed2.data(), L.ffn_out.data(), T, seq_);
    } else {
      moe_forward(L, moe_options, rng);
      const RoutingStats& s = L.moe->stats();
      result.aux_loss += s.aux_loss;
      result.z_loss += s.z_loss;
      result.routing.push_back(LayerRouting{layer_index_[i], s});
    }
    x.resize(R * d);
    for (int64_t j = 0; j < R * d; ++j) x[j] = L.h[j] + L.ffn_out[j];
  }
  if (jitters) rng.discard(static_cast<unsigned long long>(jitter_draws_after_[c]));
  if (!pp_.ends(chunk)) {
    stage_output_ = std::move(x);
    result.loss = result.aux_loss + result.z_loss;
    return result;
  }
  // x is the last layer's output: keep it as the final norm's input.
  dres_ = std::move(x);
  final_norm_.resize(R * d), final_rstd_.resize(R);
  rmsnorm_forward(final_norm_.data(), final_rstd_.data(), dres_.data(), norm_.value.data(), R, d, eps);
  // The head sees every token (sequence parallelism gathers the shares) and, with tp, its
  // vocabulary shard: logits [T × vocab/tp].
  if (sp) gather_rows(final_norm_, head_input_);
  const float* head_in = sp ? head_input_.data() : final_norm_.data();
  const Param& head = spec_.model.tie_embeddings ? embed_tokens_ : lm_head_;
  const int64_t V = vocab_local();
  logits_.resize(T * V);
  linear_forward(logits_.data(), head_in, head.value.data(), T, d, V);
  if (targets_) {
    probs_.resize(T * V);
    if (!tp_.active()) {
      result.lm_loss = cross_entropy_forward(probs_.data(), logits_.data(), targets_, T, V);
    } else {  // the shards' log-sum-exps (each in its own slot) and target logits, summed over tp
      std::vector<double> stats(static_cast<size_t>((tp_.size + 1) * T), 0.0);
      shard_statistics(logits_.data(), targets_, T, V, vocab_shard_.first, stats.data() + tp_.rank * T,
                       stats.data() + tp_.size * T);
      tp_.all_reduce_f64(stats.data(), static_cast<int64_t>(stats.size()));
      std::vector<double> lse(static_cast<size_t>(T));
      combine_shard_lse(stats.data(), tp_.size, T, lse.data());
      result.lm_loss = shard_softmax(probs_.data(), logits_.data(), lse.data(), stats.data() + tp_.size * T, T, V);
    }
  }
  result.loss = result.lm_loss + result.aux_loss + result.z_loss;
  return result;
}

MixtralModel::TokenShare MixtralModel::share_of(int64_t batch, int64_t seq, int64_t rank) const {
  // Whole sequences (the unit of deterministic gradient sums), as even as the batch allows.
  const int64_t first = batch * rank / tp_.size, last = batch * (rank + 1) / tp_.size;
  return {first * seq, (last - first) * seq};
}

MixtralModel::TokenShare MixtralModel::moe_share() const { return share_of(batch_, seq_, tp_.rank); }

MixtralModel::TokenShare MixtralModel::residual_rows() const {
  return tp_.sequence_sharded() ? moe_share() : TokenShare{0, batch_ * seq_};
}

int64_t MixtralModel::boundary_rows(int64_t batch, int64_t seq) const {
  if (seq <= 0) seq = spec_.model.seq_len;
  return tp_.sequence_sharded() ? share_of(batch, seq, tp_.rank).rows : batch * seq;
}

std::vector<int64_t> MixtralModel::share_counts() const {
  std::vector<int64_t> counts;
  for (int64_t r = 0; r < tp_.size; ++r) counts.push_back(share_of(batch_, seq_, r).rows * d_model_);
  return counts;
}

void MixtralModel::gather_rows(const std::vector<float>& mine, std::vector<float>& all) {
  all.resize(static_cast<size_t>(batch_ * seq_ * d_model_));
  tp_.all_gather(mine.data(), all.data(), share_counts());
  sp_partial_.resize(all.size());  // the block's output, for scatter_rows
}

void MixtralModel::scatter_rows(const std::vector<float>& all, std::vector<float>& mine) {
  tp_.reduce_scatter(all.data(), mine.data(), share_counts());
}

void MixtralModel::moe_forward(Layer& L, const MoeLayerOptions& options, std::mt19937_64& rng) {
  const int64_t T = batch_ * seq_, d = d_model_;
  if (!tp_.active()) return L.moe->forward(L.normed2.data(), L.ffn_out.data(), T, options, rng);
  // Tensor parallelism: each tp rank routes its share of the tokens (one more data slice each to
  // the routing and the loss means); the shares' outputs are summed into every rank's copy, or
  // with sequence parallelism are already the rank's rows of the residual stream.
  MoeLayerOptions share_options = options;
  share_options.data_slices = std::max<int64_t>(options.data_slices, 1) * tp_.size;
  const TokenShare share = moe_share();
  if (tp_.sequence_sharded()) return L.moe->forward(L.normed2.data(), L.ffn_out.data(), share.rows, share_options, rng);
  std::vector<float>& out = L.ffn_out;
  moe_share_out_.resize(static_cast<size_t>(share.rows * d));
  L.moe->forward(L.normed2.data() + share.first * d, moe_share_out_.data(), share.rows, share_options, rng);
  std::fill(out.begin(), out.end(), 0.0f);
  std::copy(moe_share_out_.begin(), moe_share_out_.end(), out.begin() + share.first * d);
  tp_.reduce(out.data(), T * d);
}

void MixtralModel::moe_backward(Layer& L) {
  const int64_t T = batch_ * seq_, d = d_model_;
  if (!tp_.active() || tp_.sequence_sharded()) return L.moe->backward(dres_.data(), dnormed_.data());
  const TokenShare share = moe_share();
  moe_share_out_.resize(static_cast<size_t>(share.rows * d));
  L.moe->backward(dres_.data() + share.first * d, moe_share_out_.data());
  std::fill(dnormed_.begin(), dnormed_.end(), 0.0f);
  std::copy(moe_share_out_.begin(), moe_share_out_.end(), dnormed_.begin() + share.first * d);
  tp_.reduce(dnormed_.data(), T * d);
}

void MixtralModel::backward(const float* output_grad, int64_t chunk) {
  if (!targets_) throw Error("model: backward() needs a forward() with targets");
  if (chunk != last_chunk_) throw Error("model: backward() of chunk " + std::to_string(chunk) + " after a forward of chunk " +
                                        std::to_string(last_chunk_));
  const int64_t d = d_model_;
  const bool sp = tp_.sequence_sharded();
  const TokenShare rows = residual_rows();
  const int64_t R = rows.rows;  // the residual stream's rows on this rank (forward)
  dnormed_.resize(R * d);
  if (pp_.ends(chunk)) {
    std::vector<float> final_input = std::move(dres_);  // the last layer's output (see forward)
    Param& head = spec_.model.tie_embeddings ? embed_tokens_ : lm_head_;
    const int64_t T = batch_ * seq_, V = vocab_local();
    // The softmax buffer becomes dlogits in place (with tp: the shard's columns).
    const std::vector<int32_t> targets = tp_.active() ? shard_targets(targets_, T, V, vocab_shard_.first)
                                                      : std::vector<int32_t>(targets_, targets_ + T);
    cross_entropy_backward(probs_.data(), probs_.data(), targets.data(), T, V, loss_scale_, mean_tokens_);
    // The head's input gradient is a partial sum over the vocabulary shards: summed, or scattered.
    float* dhead_in = sp ? sp_partial_.data() : dnormed_.data();
    linear_backward(dhead_in, grad_sink(head, seq_), probs_.data(), sp ? head_input_.data() : final_norm_.data(),
                    head.value.data(), T, d, V);
    if (sp) scatter_rows(sp_partial_, dnormed_);
    else if (tp_.active()) tp_.all_reduce(dnormed_.data(), T * d);
    dres_.assign(R * d, 0.0f);
    rmsnorm_backward(dres_.data(), grad_sink(norm_, seq_), dnormed_.data(), final_input.data(), norm_.value.data(),
                     final_rstd_.data(), R, d);
  } else {
    if (!output_grad && R > 0) throw Error("model: pipeline stage " + std::to_string(pp_.stage) + " needs the next stage's gradient");
    dres_.assign(static_cast<size_t>(R * d), 0.0f);
    if (R > 0) std::copy(output_grad, output_grad + R * d, dres_.begin());
  }
  // Sequence parallelism: a block's output gradient is all-gathered, its input gradient (a partial
  // sum over the rank's heads or hidden units) reduce-scattered: the forward's conjugates.
  std::vector<float>& dy_all = sp_dy_;
  auto block_backward = [&](const std::vector<float>& dy, auto&& run) {
    if (!sp) return run(dy.data(), dnormed_.data());
    gather_rows(dy, dy_all);
    run(dy_all.data(), sp_partial_.data());
    scatter_rows(sp_partial_, dnormed_);
  };
  const size_t c = static_cast<size_t>(chunk);
  for (size_t i = chunk_begin_[c + 1]; i-- > chunk_begin_[c];) {
    Layer& L = *layers_[i];
    // out = h + ffn(norm2(h)):  dh = dout + norm2ᵀ(ffnᵀ(dout))
    if (L.mlp)
      block_backward(dres_, [&](const float* dy, float* dx) { L.mlp->backward(dy, dx); });
    else
      moe_backward(L);
    dh_ = dres_;
    rmsnorm_backward(dh_.data(), grad_sink(L.post_attention_layernorm, seq_), dnormed_.data(), L.h.data(),
                     L.post_attention_layernorm.value.data(), L.rstd2.data(), R, d);
    // h = x + attn(norm1(x)):  dx = dh + norm1ᵀ(attnᵀ(dh))
    block_backward(dh_, [&](const float* dy, float* dx) { L.attention.backward(dy, dx); });
    dres_ = dh_;
    rmsnorm_backward(dres_.data(), grad_sink(L.input_layernorm, seq_), dnormed_.data(), L.x.data(),
                     L.input_layernorm.value.data(), L.rstd1.data(), R, d);
  }
  if (pp_.starts(chunk) && sp) {  // the stream's gradient of every token, for the shard's rows
    gather_rows(dres_, sp_dy_);
    embedding_backward(grad_sink(embed_tokens_, seq_), sp_dy_.data(), tokens_.data(), batch_ * seq_, d, vocab_shard_);
  } else if (pp_.starts(chunk)) {
    embedding_backward(grad_sink(embed_tokens_, seq_), dres_.data(), tokens_.data(), R, d, vocab_shard_);
  }
  targets_ = nullptr;  // one backward per forward: the saved softmax is now dlogits
}

void add_routing_counts(const ForwardResult& r, std::vector<std::vector<int64_t>>& counts,
                        std::vector<std::vector<int64_t>>& dropped) {
  for (size_t l = 0; l < r.routing.size() && l < counts.size(); ++l)
    for (size_t e = 0; e < counts[l].size(); ++e) {
      counts[l][e] += r.routing[l].stats.counts[e];
      dropped[l][e] += r.routing[l].stats.dropped[e];
    }
}

}  // namespace moe::rt
