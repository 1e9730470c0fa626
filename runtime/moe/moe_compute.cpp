// The MoE block forward/backward (see moe_compute.h): the pieces called in order, each timed.
#include "moe_compute.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <type_traits>

#include "coselection.h"
#include "error.h"
#include "gemm.h"
#include "local_dispatcher.h"
#include "thread_pool.h"

namespace moe::rt {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
}  // namespace

template <typename T>
MoeCompute<T>::MoeCompute(const MoeConfig& config, std::unique_ptr<Dispatcher<T>> dispatcher)
    : config_(config),
      dispatcher_(std::move(dispatcher)),
      router_(config),
      experts_(config.d_model, config.d_expert),
      shared_(config.d_model, std::max<int64_t>(config.d_shared, 1)) {
  config_.validate();
  if (!dispatcher_) dispatcher_ = std::make_unique<LocalDispatcher<T>>(config_.num_experts);
}

template <typename T>
ExpertWeights<T> MoeCompute<T>::local_experts(const ExpertWeights<T>& all) const {
  const int64_t first = dispatcher_->first_expert(), n = dispatcher_->local_experts();
  if (static_cast<int64_t>(all.w1.size()) < first + n)
    throw Error("moe: " + std::to_string(all.w1.size()) + " expert weight sets, need experts " + std::to_string(first) +
                ".." + std::to_string(first + n - 1));
  ExpertWeights<T> local;
  local.w1.assign(all.w1.begin() + first, all.w1.begin() + first + n);
  local.w2.assign(all.w2.begin() + first, all.w2.begin() + first + n);
  local.w3.assign(all.w3.begin() + first, all.w3.begin() + first + n);
  return local;
}

template <typename T>
ExpertGrads<T> MoeCompute<T>::local_expert_grads(const ExpertGrads<T>& all) const {
  const int64_t first = dispatcher_->first_expert(), n = dispatcher_->local_experts();
  ExpertGrads<T> local;
  local.w1.assign(all.w1.begin() + first, all.w1.begin() + first + n);
  local.w2.assign(all.w2.begin() + first, all.w2.begin() + first + n);
  local.w3.assign(all.w3.begin() + first, all.w3.begin() + first + n);
  return local;
}

template <typename T>
void MoeCompute<T>::forward(const MoeWeights<T>& w, const T* x, T* y, int64_t tokens,
                            const MoeLayerOptions& options, const float* bias, std::mt19937_64& rng) {
  const int64_t d = config_.d_model;
  if (tokens < 0) throw Error("moe: negative token count " + std::to_string(tokens));
  tokens_ = tokens;
  loss_tokens_ = tokens * std::max<int64_t>(options.data_slices, 1);

  auto t0 = Clock::now();
  x_.assign(x, x + tokens * d);
  const bool jitter = options.training && !options.force_dropless;
  const int64_t offset = jitter && config_.jitter > 0.0 && sync_ ? sync_->token_offset(tokens) : 0;
  router_.forward(w.gate, x, tokens, jitter, rng, offset);
  const bool sync = sync_ && config_.type == RoutingType::token_choice;
  // Expert choice across ranks, in training and in evaluation: the ranks hold slices of one batch
  // (the trainer's validation splits every batch over the dp·ep ranks, like training).
  const bool group_choice = sync_ && config_.type == RoutingType::expert_choice &&
                            sync_->select_expert_choice(config_, router_.scores(), bias, tokens, assignments_, weight_,
                                                        loss_counts_);
  if (!group_choice)
    select_tokens(config_, router_.scores(), bias, tokens, !options.force_dropless && !sync, assignments_, weight_);
  if (group_choice) {
    router_.compute_losses(loss_counts_);
  } else if (sync) {
    sync_->decide(config_, weight_.data(), !options.force_dropless, assignments_, loss_counts_);
    router_.compute_losses(loss_counts_);
  } else {
    router_.compute_losses(assignments_.counts);
  }
  times_.router += seconds_since(t0);

  t0 = Clock::now();
  handle_.segment_tokens = deterministic() && options.training ? options.segment_tokens : 0;
  dispatcher_->dispatch(assignments_, x, d, handle_);
  times_.permute += seconds_since(t0);

  t0 = Clock::now();
  expert_out_.resize(handle_.expert_rows() * d);
  const int64_t chunks = static_cast<int64_t>(handle_.chunk_expert_offsets.size());
  if (etp_.active() && chunks == 0) {
    etp_forward(local_experts(w.experts), 0, handle_.expert_offsets, handle_.expert_input.data(), expert_out_.data());
  } else if (chunks == 0) {
    experts_.forward(local_experts(w.experts), handle_.expert_input.data(), handle_.expert_offsets, expert_out_.data());
    times_.expert_flops += experts_.forward_flops();
  } else {  // overlap: chunk c's experts run while the later chunks are in flight
    while (static_cast<int64_t>(chunk_experts_.size()) < chunks) chunk_experts_.emplace_back(config_.d_model, config_.d_expert);
    const ExpertWeights<T> local = local_experts(w.experts);
    for (int64_t c = 0; c < chunks; ++c) {
      dispatcher_->wait_dispatch_chunk(handle_, c);
      const int64_t off = handle_.chunk_offsets[c] * d;
      if (etp_.active()) {  // the group's rows of this chunk, while the later chunks are in flight
        etp_forward(local, static_cast<size_t>(c), handle_.chunk_expert_offsets[c], handle_.expert_input.data() + off,
                    expert_out_.data() + off);
      } else {
        chunk_experts_[c].forward(local, handle_.expert_input.data() + off, handle_.chunk_expert_offsets[c],
                                  expert_out_.data() + off);
        times_.expert_flops += chunk_experts_[c].forward_flops();
      }
      dispatcher_->start_combine_chunk(handle_, c, expert_out_.data(), weight_.data());
    }
  }
  times_.experts += seconds_since(t0);

  // The routed experts' weighted outputs first, then the shared expert: each token's sum then has
  // the same grouping in every layout (a hierarchical exchange adds a node's two outputs before
  // the token's row returns, which equals adding them one by one to zero; see docs).
  t0 = Clock::now();
  std::fill(y, y + tokens * d, T(0));
  dispatcher_->combine(handle_, expert_out_.data(), weight_.data(), y);
  times_.combine += seconds_since(t0);

  t0 = Clock::now();
  if (config_.d_shared > 0) {
    shared_out_.resize(static_cast<size_t>(tokens * d));
    if (shared_tp_.active())
      shared_tp_forward(w.shared);
    else
      shared_.forward(w.shared, x_.data(), {0, tokens}, shared_out_.data());
    for (int64_t i = 0; i < tokens * d; ++i) y[i] += shared_out_[i];
  }
  times_.shared += seconds_since(t0);

  stats_.counts = assignments_.counts;
  stats_.dropped = assignments_.dropped;
  stats_.aux_loss = router_.aux_loss();
  stats_.z_loss = router_.z_loss();
  stats_.tokens_without_expert = assignments_.tokens_without_expert;
  stats_.coselection.clear();
  if (options.coselection) add_coselection(assignments_, stats_.coselection);
}

template <typename T>
void MoeCompute<T>::backward(const MoeWeights<T>& w, const MoeGrads<T>& g, const T* dy, T* dx, T loss_scale) {
  const int64_t d = config_.d_model, n = tokens_, E = config_.num_experts;

  auto t0 = Clock::now();
  dweight_.resize(assignments_.size());
  d_expert_out_.resize(handle_.expert_rows() * d);
  dispatcher_->combine_backward(handle_, dy, dweight_.data(), d_expert_out_.data());
  times_.combine += seconds_since(t0);

  t0 = Clock::now();
  d_expert_in_.resize(handle_.expert_rows() * d);
  const int64_t chunks = static_cast<int64_t>(handle_.chunk_expert_offsets.size());
  const ExpertWeights<T> local = local_experts(w.experts);
  const ExpertGrads<T> local_grads = local_expert_grads(g.experts);
  // Deterministic arithmetic: the experts' weight gradients are summed per (expert, sequence)
  // after the input gradients (below), not per bank.
  // (With expert tensor parallelism each bank's sums go to the sinks as they are computed.)
  const bool per_sequence = !etp_.active() && !local_grads.w1.empty() && local_grads.w1[0].exact != nullptr;
  if (etp_.active() && chunks == 0) {
    etp_backward(local, local_grads, 0, d_expert_out_.data(), d_expert_in_.data());
  } else if (chunks == 0) {
    if (per_sequence)
      experts_.backward_inputs(local, d_expert_out_.data(), d_expert_in_.data(), false);
    else
      experts_.backward(local, local_grads, d_expert_out_.data(), d_expert_in_.data(), false);
    times_.expert_flops += 2.0 * experts_.forward_flops();
  } else {
    for (int64_t c = 0; c < chunks; ++c) {
      dispatcher_->wait_combine_backward_chunk(handle_, c);
      const int64_t off = handle_.chunk_offsets[c] * d;
      if (etp_.active()) {
        etp_backward(local, local_grads, static_cast<size_t>(c), d_expert_out_.data() + off, d_expert_in_.data() + off);
      } else {
        if (per_sequence)
          chunk_experts_[c].backward_inputs(local, d_expert_out_.data() + off, d_expert_in_.data() + off, false);
        else
          chunk_experts_[c].backward(local, local_grads, d_expert_out_.data() + off, d_expert_in_.data() + off, false);
        times_.expert_flops += 2.0 * chunk_experts_[c].forward_flops();
      }
      dispatcher_->start_dispatch_backward_chunk(handle_, c, d_expert_in_.data());
    }
  }
  if (per_sequence) add_expert_weight_grads_per_sequence(local_grads);  // overlaps the last exchange
  times_.experts += seconds_since(t0);

  t0 = Clock::now();
  std::fill(dx, dx + n * d, T(0));
  dispatcher_->dispatch_backward(handle_, d_expert_in_.data(), dx);
  times_.permute += seconds_since(t0);

  t0 = Clock::now();
  if (config_.d_shared > 0 && shared_tp_.active())
    shared_tp_backward(w.shared, g.shared, dy, dx);
  else if (config_.d_shared > 0)
    shared_.backward(w.shared, g.shared, dy, dx, true);
  times_.shared += seconds_since(t0);

  t0 = Clock::now();
  dscores_.assign(n * E, T(0));
  select_tokens_backward(config_, router_.scores(), assignments_, dweight_.data(), dscores_.data());
  router_.backward(w.gate, x_.data(), dscores_.data(), loss_scale, g.gate, dx, loss_tokens_);
  times_.router += seconds_since(t0);
}

template <typename T>
void MoeCompute<T>::etp_forward(const ExpertWeights<T>& local, size_t chunk, const std::vector<int64_t>& offsets, const T* in,
                                T* out) {
  if constexpr (std::is_same_v<T, float>) {
    const int64_t d = config_.d_model, n = dispatcher_->local_experts(), size = etp_.size;
    if (etp_chunks_.size() <= chunk) etp_chunks_.resize(chunk + 1);
    EtpChunk& ch = etp_chunks_[chunk];
    // Every rank's rows per local expert, then the rows themselves (rank-major).
    std::vector<int64_t> mine(static_cast<size_t>(n)), counts(static_cast<size_t>(size * n));
    for (int64_t i = 0; i < n; ++i) mine[static_cast<size_t>(i)] = offsets[i + 1] - offsets[i];
    etp_.gather_counts(mine.data(), counts.data(), n);
    ch.first_row.assign(static_cast<size_t>(size) + 1, 0);
    ch.offsets.assign(static_cast<size_t>(size), std::vector<int64_t>(static_cast<size_t>(n) + 1, 0));
    std::vector<int64_t> elements(static_cast<size_t>(size));
    for (int64_t r = 0; r < size; ++r) {
      std::vector<int64_t>& off = ch.offsets[static_cast<size_t>(r)];
      for (int64_t i = 0; i < n; ++i) off[i + 1] = off[i] + counts[static_cast<size_t>(r * n + i)];
      ch.first_row[r + 1] = ch.first_row[r] + off[n];
      elements[static_cast<size_t>(r)] = off[n] * d;
    }
    const size_t total = static_cast<size_t>(ch.first_row[size] * d);
    ch.in.resize(total), ch.out.resize(total);
    etp_.all_gather(in, ch.in.data(), elements);
    while (static_cast<int64_t>(ch.experts.size()) < size) ch.experts.emplace_back(config_.d_model, config_.d_expert);
    for (int64_t r = 0; r < size; ++r) {
      const int64_t at = ch.first_row[r] * d;
      ch.experts[r].forward(local, ch.in.data() + at, ch.offsets[static_cast<size_t>(r)], ch.out.data() + at);
      times_.expert_flops += ch.experts[r].forward_flops();
    }
    etp_.reduce_scatter(ch.out.data(), out, elements);
  } else {
    (void)local, (void)chunk, (void)offsets, (void)in, (void)out;
    throw Error("parallel.etp: expert tensor parallelism is float only");
  }
}

template <typename T>
void MoeCompute<T>::etp_backward(const ExpertWeights<T>& local, const ExpertGrads<T>& grads, size_t chunk, const T* dout,
                                 T* din) {
  if constexpr (std::is_same_v<T, float>) {
    const int64_t d = config_.d_model, size = etp_.size;
    EtpChunk& ch = etp_chunks_.at(chunk);
    std::vector<int64_t> elements(static_cast<size_t>(size));
    for (int64_t r = 0; r < size; ++r) elements[static_cast<size_t>(r)] = (ch.first_row[r + 1] - ch.first_row[r]) * d;
    const size_t total = static_cast<size_t>(ch.first_row[size] * d);
    ch.dout.resize(total), ch.din.resize(total);
    etp_.all_gather(dout, ch.dout.data(), elements);
    for (int64_t r = 0; r < size; ++r) {
      const int64_t at = ch.first_row[r] * d;
      ch.experts[r].backward(local, grads, ch.dout.data() + at, ch.din.data() + at, false);
      times_.expert_flops += 2.0 * ch.experts[r].forward_flops();
    }
    etp_.reduce_scatter(ch.din.data(), din, elements);
  } else {
    (void)local, (void)grads, (void)chunk, (void)dout, (void)din;
    throw Error("parallel.etp: expert tensor parallelism is float only");
  }
}

template <typename T>
void MoeCompute<T>::shared_tp_forward(const ExpertWeights<T>& w) {
  if constexpr (std::is_same_v<T, float>) {
    const int64_t d = config_.d_model, size = shared_tp_.size;
    std::vector<int64_t> rows(static_cast<size_t>(size));
    shared_tp_.gather_counts(&tokens_, rows.data(), 1);
    shared_counts_.assign(static_cast<size_t>(size), 0);
    int64_t all = 0;
    for (int64_t r = 0; r < size; ++r) shared_counts_[static_cast<size_t>(r)] = rows[static_cast<size_t>(r)] * d, all += rows[static_cast<size_t>(r)];
    shared_in_.resize(static_cast<size_t>(all * d)), shared_all_out_.resize(shared_in_.size());
    shared_tp_.all_gather(x_.data(), shared_in_.data(), shared_counts_);
    shared_.forward(w, shared_in_.data(), {0, all}, shared_all_out_.data());
    shared_tp_.reduce_scatter(shared_all_out_.data(), shared_out_.data(), shared_counts_);
  } else {
    (void)w;
    throw Error("parallel.tp: split shared experts are float only");
  }
}

template <typename T>
void MoeCompute<T>::shared_tp_backward(const ExpertWeights<T>& w, const ExpertGrads<T>& g, const T* dy, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    shared_dy_.resize(shared_in_.size()), shared_dx_.resize(shared_in_.size());
    shared_tp_.all_gather(dy, shared_dy_.data(), shared_counts_);
    shared_.backward(w, g, shared_dy_.data(), shared_dx_.data(), false);
    shared_part_.resize(static_cast<size_t>(tokens_ * config_.d_model));
    shared_tp_.reduce_scatter(shared_dx_.data(), shared_part_.data(), shared_counts_);
    for (size_t i = 0; i < shared_part_.size(); ++i) dx[i] += shared_part_[i];
  } else {
    (void)w, (void)g, (void)dy, (void)dx;
    throw Error("parallel.tp: split shared experts are float only");
  }
}

template <typename T>
void MoeCompute<T>::add_expert_weight_grads_per_sequence(const ExpertGrads<T>& g) {
  if constexpr (std::is_same_v<T, float>) {
    const DispatchHandle<T>& h = handle_;
    if (static_cast<int64_t>(h.expert_row_sequence.size()) != h.expert_rows())
      throw Error("moe: deterministic weight gradients need the dispatcher's row sequences (" +
                  std::to_string(h.expert_row_sequence.size()) + " labels for " + std::to_string(h.expert_rows()) +
                  " rows)");
    const int64_t chunks = static_cast<int64_t>(h.chunk_expert_offsets.size());
    // One expert per task: its sums are its own, so the experts run on the pool's threads.
    parallel_for(static_cast<int64_t>(g.w1.size()), gemm_threads(), [&](int64_t i) {
      std::map<int32_t, std::vector<typename SwigluExperts<T>::Row>> by_sequence;  // rows in buffer (= token) order
      if (chunks == 0) {
        for (int64_t r = h.expert_offsets[i]; r < h.expert_offsets[i + 1]; ++r)
          by_sequence[h.expert_row_sequence[r]].push_back(experts_.row(r));
      } else {
        for (int64_t c = 0; c < chunks; ++c) {
          const int64_t base = h.chunk_offsets[c];
          for (int64_t r = base + h.chunk_expert_offsets[c][i]; r < base + h.chunk_expert_offsets[c][i + 1]; ++r)
            by_sequence[h.expert_row_sequence[r]].push_back(chunk_experts_[c].row(r - base));
        }
      }
      for (const auto& [sequence, rows] : by_sequence)
        add_weight_grads(rows, config_.d_model, config_.d_expert, *g.w1[i].exact, *g.w2[i].exact, *g.w3[i].exact);
    });
  } else {
    (void)g;
    throw Error("moe: deterministic weight gradients are float only");
  }
}

template class MoeCompute<float>;
template class MoeCompute<double>;

}  // namespace moe::rt
