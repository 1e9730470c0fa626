// The expert-parallel dispatcher (see all_to_all_dispatcher.h).
#include "all_to_all_dispatcher.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "error.h"
#include "local_dispatcher.h"
#include "routing_ops.h"

namespace moe::rt::comm {

using Clock = std::chrono::steady_clock;

namespace {
template <typename T>
const int32_t* add_order(const DispatchHandle<T>& h) {
  return h.add_order.empty() ? nullptr : h.add_order.data();
}
}  // namespace

template <typename T>
AllToAllDispatcher<T>::AllToAllDispatcher(Communicator& ep, int64_t num_experts)
    : ep_(ep), num_experts_(num_experts) {
  if (num_experts % ep.size() != 0)
    throw Error("parallel.ep: " + std::to_string(ep.size()) + " does not divide model.moe.num_experts (" +
                std::to_string(num_experts) + ")");
  local_ = num_experts / ep.size();
  first_ = local_ * ep.rank();
}

template <typename T>
void AllToAllDispatcher<T>::set_hierarchical(Communicator& intra, Communicator& inter) {
  const int64_t P = ep_.size();
  if (static_cast<int64_t>(peer_node_.size()) != P) throw Error("dispatcher: set_hierarchical needs set_peer_nodes first");
  const int64_t L = intra.size(), N = inter.size();
  // Node-major: member p sits on node p / L at local index p % L, the same on every node.
  bool ok = L * N == P;
  for (int64_t p = 0; ok && p < P; ++p) ok = peer_node_[p] == peer_node_[(p / L) * L];
  for (int64_t n = 1; ok && n < N; ++n) ok = peer_node_[n * L] != peer_node_[(n - 1) * L];
  ok = ok && intra.rank() == ep_.rank() % L && inter.rank() == ep_.rank() / L;
  if (!ok)
    throw Error("parallel.hierarchical_a2a: the EP group must span whole nodes with the same number of its ranks on each "
                "(EP group of " + std::to_string(P) + ", " + std::to_string(L) + " per node, " + std::to_string(N) + " nodes)");
  intra_ = &intra;
  inter_ = &inter;
  per_node_ = L;
  nodes_ = N;
}

template <typename T>
typename AllToAllDispatcher<T>::Wire& AllToAllDispatcher<T>::wire(const DispatchHandle<T>& h) {
  return wires_[&h];
}

template <typename T>
const A2ATimes& AllToAllDispatcher<T>::stats(const DispatchHandle<T>& h) const {
  auto it = wires_.find(&h);
  if (it == wires_.end()) throw Error("dispatcher: no statistics for this handle yet");
  return it->second.times;
}

template <typename T>
Communicator::Blocks AllToAllDispatcher<T>::local_blocks(const DispatchHandle<T>& h, const Wire& w, int64_t chunk) const {
  Communicator::Blocks b;
  for (int64_t e = 0; e < num_experts_; ++e) {
    const bool all = chunk < 0;  // chunk c of block e: its rows [counts·c/n, counts·(c+1)/n)
    b.offset.push_back((h.offsets[e] + (all ? 0 : h.counts[e] * chunk / chunks_)) * h.d);
    b.count.push_back((all ? h.counts[e] : w.chunk_send_block[chunk][e]) * h.d);
  }
  return b;
}

template <typename T>
Communicator::Blocks AllToAllDispatcher<T>::expert_blocks(const DispatchHandle<T>& h, const Wire& w, int64_t chunk) const {
  const int64_t P = ep_.size();
  const std::vector<int64_t>& rows = chunk < 0 ? w.recv_expert : w.chunk_recv_block[chunk];
  Communicator::Blocks b;
  b.offset.resize(static_cast<size_t>(P * local_));
  b.count.resize(static_cast<size_t>(P * local_));
  for (int64_t i = 0; i < local_; ++i) {
    // Peers in order inside local expert i's rows (of the chunk, when chunked).
    int64_t at = chunk < 0 ? h.expert_offsets[i] : h.chunk_offsets[chunk] + h.chunk_expert_offsets[chunk][i];
    for (int64_t p = 0; p < P; ++p) {
      const int64_t k = p * local_ + i;
      b.offset[k] = at * h.d;
      b.count[k] = rows[k] * h.d;
      at += rows[k];
    }
  }
  return b;
}

template <typename T>
void AllToAllDispatcher<T>::count_bytes(Wire& w, A2APhase phase, const Communicator::Blocks& send_blocks) {
  const int64_t me = ep_.rank();
  int64_t off_rank = 0, intra = 0;
  for (int64_t p = 0; p < ep_.size(); ++p)
    for (int64_t i = 0; i < local_; ++i) {
      const int64_t bytes = send_blocks.count[p * local_ + i] * static_cast<int64_t>(sizeof(T));
      if (p != me) off_rank += bytes;
      if (p != me && (peer_node_.empty() || peer_node_[p] == peer_node_[me])) intra += bytes;
    }
  for (A2AStat* s : {&w.times[phase], &totals_[phase]}) {
    s->bytes += off_rank;
    s->intra_bytes += intra;
    s->inter_bytes += off_rank - intra;
  }
}

template <typename T>
void AllToAllDispatcher<T>::exchange(Wire& w, const T* send, const Communicator::Blocks& send_blocks, T* recv,
                                     const Communicator::Blocks& recv_blocks, A2APhase phase) {
  const auto t0 = Clock::now();
  ep_.all_to_all_blocks(send, send_blocks, recv, recv_blocks, sizeof(T));
  const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  for (A2AStat* s : {&w.times[phase], &totals_[phase]}) {
    s->us += us;
    s->exposed_us += us;
  }
  count_bytes(w, phase, send_blocks);
}

template <typename T>
A2ATimes AllToAllDispatcher<T>::take_totals() {
  A2ATimes out = totals_;
  totals_ = {};
  return out;
}

template <typename T>
std::vector<int64_t> AllToAllDispatcher<T>::take_slot_rows() {
  std::vector<int64_t> out(static_cast<size_t>(num_experts_), 0);
  for (size_t s = 0; s < slot_rows_.size() && s < out.size(); ++s) out[s] = slot_rows_[s];
  slot_rows_.clear();
  return out;
}

template <typename T>
void AllToAllDispatcher<T>::dispatch(const Assignments& asg, const T* x, int64_t d, DispatchHandle<T>& h) {
  dispatch_rows(asg, x, d, h);
  totals_[kDispatchFwd].rows += h.expert_rows();  // this rank's experts' load (every path)
  slot_rows_.resize(h.counts.size(), 0);
  for (size_t s = 0; s < h.counts.size(); ++s) slot_rows_[s] += h.counts[s];
}

template <typename T>
void AllToAllDispatcher<T>::dispatch_rows(const Assignments& asg, const T* x, int64_t d, DispatchHandle<T>& h) {
  if (asg.num_experts != num_experts_)
    throw Error("dispatcher: assignments name " + std::to_string(asg.num_experts) + " experts, the layer has " +
                std::to_string(num_experts_));
  if (intra_ && chunks_ > 1) return hc_dispatch(asg, x, d, h);  // all_to_all_hier_chunks.cpp
  Wire& w = wire(h);
  w.times = {};
  h.d = d;
  plan_local_permutation(asg, h);
  const int64_t P = ep_.size();
  if (!intra_) {
    // The local copy comes before the first collective, so the counts exchange absorbs the ranks'
    // skew and the row exchange starts with every rank ready.
    rows_.resize(static_cast<size_t>(h.local_rows() * d));
    gather_rows(rows_.data(), x, h.row_token.data(), h.local_rows(), d);
  }
  const auto t0 = Clock::now();
  // Per-expert counts: peer q learns how many rows of each of its local experts this rank sends.
  w.recv_expert = std::vector<int64_t>(static_cast<size_t>(P * local_), 0);
  std::vector<int64_t> per_peer(static_cast<size_t>(P), local_);
  ep_.all_to_all_v(h.counts.data(), per_peer, w.recv_expert.data(), per_peer, sizeof(int64_t));
  w.send_rows.assign(static_cast<size_t>(P), 0);
  w.recv_rows.assign(static_cast<size_t>(P), 0);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < local_; ++i) {
      w.send_rows[p] += h.counts[p * local_ + i];
      w.recv_rows[p] += w.recv_expert[p * local_ + i];
    }
  if (h.segment_tokens > 0) exchange_sequence_counts(h, w);
  double count_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  if (intra_) {  // forwarders and expert ranks need every member's row and distinct-token counts
    const auto t1 = Clock::now();
    plan_sources(h, w);
    const int64_t N = nodes_;
    std::vector<int64_t> mine(w.send_rows);
    for (int64_t n = 0; n < N; ++n) mine.push_back(w.src_node_off[n + 1] - w.src_node_off[n]);
    w.matrix.assign(static_cast<size_t>(P * (P + N)), 0);
    ep_.all_gather(mine.data(), w.matrix.data(), static_cast<size_t>(P + N) * sizeof(int64_t));
    count_us += std::chrono::duration<double, std::micro>(Clock::now() - t1).count();
  }
  for (A2AStat* s : {&w.times[kDispatchFwd], &totals_[kDispatchFwd]}) {
    s->us += count_us;
    s->exposed_us += count_us;
    s->count_us += count_us;
  }
  h.expert_counts.assign(static_cast<size_t>(local_), 0);
  for (int64_t i = 0; i < local_; ++i)
    for (int64_t p = 0; p < P; ++p) h.expert_counts[i] += w.recv_expert[p * local_ + i];
  h.expert_offsets.resize(static_cast<size_t>(local_ + 1));
  exclusive_scan(h.expert_counts.data(), local_, h.expert_offsets.data());
  h.chunk_offsets.clear();
  h.chunk_expert_offsets.clear();
  if (chunks_ > 1) {  // overlap: start every chunk's exchange; the caller waits for them one by one
    const int64_t n = chunks_, E = num_experts_;
    w.chunk_send_block.assign(static_cast<size_t>(n), std::vector<int64_t>(static_cast<size_t>(E)));
    w.chunk_recv_block.assign(static_cast<size_t>(n), std::vector<int64_t>(static_cast<size_t>(P * local_)));
    h.chunk_offsets.assign(static_cast<size_t>(n + 1), 0);
    h.chunk_expert_offsets.assign(static_cast<size_t>(n), std::vector<int64_t>(static_cast<size_t>(local_ + 1), 0));
    auto part = [n](int64_t k, int64_t c) { return k * (c + 1) / n - k * c / n; };
    for (int64_t c = 0; c < n; ++c) {
      for (int64_t e = 0; e < E; ++e) w.chunk_send_block[c][e] = part(h.counts[e], c);
      for (int64_t b = 0; b < P * local_; ++b) w.chunk_recv_block[c][b] = part(w.recv_expert[b], c);
      for (int64_t i = 0; i < local_; ++i) {
        int64_t rows = 0;
        for (int64_t p = 0; p < P; ++p) rows += w.chunk_recv_block[c][p * local_ + i];
        h.chunk_expert_offsets[c][i + 1] = h.chunk_expert_offsets[c][i] + rows;
      }
      h.chunk_offsets[c + 1] = h.chunk_offsets[c] + h.chunk_expert_offsets[c][local_];
    }
    // Every buffer a chunk lands in is sized before the first one starts (the comm thread writes
    // into them while the caller computes): the experts' input and the rows combine returns.
    h.expert_input.resize(static_cast<size_t>(h.expert_rows() * d));
    w.returned.resize(static_cast<size_t>(h.local_rows() * d));
    w.pending.assign(static_cast<size_t>(n), CommHandle{});
    label_expert_rows(h, w);
    for (int64_t c = 0; c < n; ++c)
      start_chunk(w, c, rows_.data(), local_blocks(h, w, c), h.expert_input.data(), expert_blocks(h, w, c), kDispatchFwd);
    h.returned_rows = nullptr;
    return;
  }
  label_expert_rows(h, w);
  if (intra_) {
    hier_dispatch(h, w, x);
    return;
  }
  // Local rows (gathered above) straight into the experts' expert-major rows.
  h.expert_input.resize(static_cast<size_t>(h.expert_rows() * d));
  exchange(w, rows_.data(), local_blocks(h, w), h.expert_input.data(), expert_blocks(h, w), kDispatchFwd);
  h.returned_rows = nullptr;
}

template <typename T>
void AllToAllDispatcher<T>::combine(DispatchHandle<T>& h, const T* expert_out, const T* weight, T* y) {
  if (intra_ && chunks_ > 1) return hc_combine(h, expert_out, weight, y);
  Wire& w = wire(h);
  if (intra_) return hier_combine(h, w, expert_out, weight, y);
  const int64_t d = h.d, R = h.local_rows();
  if (chunks_ > 1) {  // the chunks land in w.returned (sized by dispatch)
    for (int64_t c = 0; c < chunks_; ++c) finish_chunk(w, c, kCombineFwd);
  } else {
    w.returned.resize(static_cast<size_t>(R * d));
    exchange(w, expert_out, expert_blocks(h, w), w.returned.data(), local_blocks(h, w), kCombineFwd);
  }
  h.row_weight.resize(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) h.row_weight[r] = weight[h.row_assignment[r]];
  weighted_scatter_add_rows(y, w.returned.data(), h.row_token.data(), h.row_weight.data(), R, d, add_order(h));
  h.returned_rows = w.returned.data();
}

template <typename T>
void AllToAllDispatcher<T>::combine_backward(DispatchHandle<T>& h, const T* dy, T* dweight, T* d_expert_out) {
  if (intra_ && chunks_ > 1) return hc_combine_backward(h, dy, dweight, d_expert_out);
  Wire& w = wire(h);
  if (intra_) return hier_combine_backward(h, w, dy, dweight, d_expert_out);
  const int64_t d = h.d, R = h.local_rows();
  if (R > 0 && h.returned_rows == nullptr) throw Error("dispatcher: combine_backward before combine");
  row_dweight_.resize(static_cast<size_t>(R));
  row_dots(row_dweight_.data(), h.returned_rows, dy, h.row_token.data(), R, d);
  std::fill(dweight, dweight + h.assignment_row.size(), T(0));
  for (int64_t r = 0; r < R; ++r) dweight[h.row_assignment[r]] = row_dweight_[r];
  rows_.resize(static_cast<size_t>(R * d));
  weighted_gather_rows(rows_.data(), dy, h.row_token.data(), h.row_weight.data(), R, d);
  if (chunks_ > 1) {  // start every chunk straight into d_expert_out; the caller waits per chunk
    for (int64_t c = 0; c < chunks_; ++c)
      start_chunk(w, c, rows_.data(), local_blocks(h, w, c), d_expert_out, expert_blocks(h, w, c), kCombineBwd);
    return;
  }
  exchange(w, rows_.data(), local_blocks(h, w), d_expert_out, expert_blocks(h, w), kCombineBwd);
}

template <typename T>
void AllToAllDispatcher<T>::dispatch_backward(DispatchHandle<T>& h, const T* d_expert_in, T* dx) {
  if (intra_ && chunks_ > 1) return hc_dispatch_backward(h, d_expert_in, dx);
  Wire& w = wire(h);
  if (intra_) return hier_dispatch_backward(h, w, d_expert_in, dx);
  const int64_t d = h.d, R = h.local_rows();
  rows_.resize(static_cast<size_t>(R * d));
  if (chunks_ > 1) {  // the chunks land in rows_ (its size is R·d since combine_backward)
    for (int64_t c = 0; c < chunks_; ++c) finish_chunk(w, c, kDispatchBwd);
  } else {
    exchange(w, d_expert_in, expert_blocks(h, w), rows_.data(), local_blocks(h, w), kDispatchBwd);
  }
  scatter_add_rows(dx, rows_.data(), h.row_token.data(), R, d, add_order(h));
}

template <typename T>
int64_t AllToAllDispatcher<T>::sequences(const DispatchHandle<T>& h) const {
  return (h.num_tokens + h.segment_tokens - 1) / h.segment_tokens;
}

// [E × b]: this rank's kept rows of global expert e that come from its local sequence s.
template <typename T>
std::vector<int64_t> AllToAllDispatcher<T>::sequence_counts(const DispatchHandle<T>& h) const {
  const int64_t b = sequences(h);
  std::vector<int64_t> counts(static_cast<size_t>(num_experts_ * b), 0);
  for (int64_t e = 0; e < num_experts_; ++e)
    for (int64_t r = h.offsets[e]; r < h.offsets[e + 1]; ++r) ++counts[e * b + h.row_token[r] / h.segment_tokens];
  return counts;
}

template <typename T>
void AllToAllDispatcher<T>::exchange_sequence_counts(const DispatchHandle<T>& h, Wire& w) {
  const int64_t P = ep_.size(), b = sequences(h);
  const std::vector<int64_t> mine = sequence_counts(h);  // expert-major: peer q's experts are one block
  w.recv_sequence.assign(static_cast<size_t>(P * local_ * b), 0);
  std::vector<int64_t> per_peer(static_cast<size_t>(P), local_ * b);
  ep_.all_to_all_v(mine.data(), per_peer, w.recv_sequence.data(), per_peer, sizeof(int64_t));
}

// Block (p, i) — peer p's rows for local expert i, in p's token order — holds p's sequences
// 0 … b−1 one after another; its row j sits at its expert-major place, or, with overlap chunks,
// in the chunk that holds rows [k·c/n, k·(c+1)/n) of the block (local_blocks / expert_blocks).
template <typename T>
void AllToAllDispatcher<T>::label_expert_rows(DispatchHandle<T>& h, const Wire& w) const {
  h.expert_row_sequence.clear();
  if (h.segment_tokens <= 0) return;
  const int64_t P = ep_.size(), b = sequences(h), n = static_cast<int64_t>(h.chunk_offsets.size()) - 1;
  h.expert_row_sequence.assign(static_cast<size_t>(h.expert_rows()), -1);
  for (int64_t i = 0; i < local_; ++i)
    for (int64_t p = 0; p < P; ++p) {
      const int64_t k = w.recv_expert[p * local_ + i];
      auto place = [&](int64_t j) {
        if (n <= 0) {
          int64_t at = h.expert_offsets[i] + j;
          for (int64_t q = 0; q < p; ++q) at += w.recv_expert[q * local_ + i];
          return at;
        }
        int64_t c = 0;
        while (j >= k * (c + 1) / n) ++c;
        int64_t at = h.chunk_offsets[c] + h.chunk_expert_offsets[c][i] + (j - k * c / n);
        for (int64_t q = 0; q < p; ++q) at += w.chunk_recv_block[c][q * local_ + i];
        return at;
      };
      int64_t j = 0;
      for (int64_t s = 0; s < b; ++s)
        for (int64_t r = 0; r < w.recv_sequence[(p * local_ + i) * b + s]; ++r, ++j)
          if (j < k) h.expert_row_sequence[place(j)] = static_cast<int32_t>(p * b + s);
      if (j != k)
        throw Error("dispatcher: peer " + std::to_string(p) + " sent " + std::to_string(k) + " rows for local expert " +
                    std::to_string(i) + " but counted " + std::to_string(j) + " by sequence");
    }
}

template <typename T>
void AllToAllDispatcher<T>::set_overlap_chunks(int64_t chunks) {
  if (chunks < 1) throw Error("parallel.overlap_chunks: " + std::to_string(chunks) + " must be at least 1");
  chunks_ = chunks;
}

// Chunk c's exchange on the comm thread: blocks from `send` straight into `recv`. The bytes are
// known now; the time is taken when the chunk is waited for.
template <typename T>
void AllToAllDispatcher<T>::start_chunk(Wire& w, int64_t c, const T* send, const Communicator::Blocks& send_blocks,
                                        T* recv, const Communicator::Blocks& recv_blocks, A2APhase phase) {
  count_bytes(w, phase, send_blocks);
  w.pending[c] = ep_.all_to_all_blocks_async(send, send_blocks, recv, recv_blocks, sizeof(T));
}

template <typename T>
void AllToAllDispatcher<T>::finish_chunk(Wire& w, int64_t c, A2APhase phase) {
  double blocked = 0;
  try {
    blocked = w.pending[c].wait();
  } catch (...) {
    ep_.drain();  // the chunks queued behind it write into this dispatcher's buffers: let them end first
    throw;
  }
  const double op = w.pending[c].op_us();
  for (A2AStat* s : {&w.times[phase], &totals_[phase]}) {
    s->us += op;
    s->exposed_us += blocked;
  }
}

template <typename T>
void AllToAllDispatcher<T>::wait_dispatch_chunk(DispatchHandle<T>& h, int64_t c) {
  if (chunks_ <= 1) return;
  if (intra_) return hc_wait_dispatch(h, c);
  finish_chunk(wire(h), c, kDispatchFwd);
}

template <typename T>
void AllToAllDispatcher<T>::start_combine_chunk(DispatchHandle<T>& h, int64_t c, const T* expert_out, const T* weight) {
  if (chunks_ <= 1) return;
  if (intra_) return hc_start_combine(h, c, expert_out, weight);
  Wire& w = wire(h);
  start_chunk(w, c, expert_out, expert_blocks(h, w, c), w.returned.data(), local_blocks(h, w, c), kCombineFwd);
}

template <typename T>
void AllToAllDispatcher<T>::wait_combine_backward_chunk(DispatchHandle<T>& h, int64_t c) {
  if (chunks_ <= 1) return;
  if (intra_) return hc_wait_combine_backward(h, c);
  finish_chunk(wire(h), c, kCombineBwd);
}

template <typename T>
void AllToAllDispatcher<T>::start_dispatch_backward_chunk(DispatchHandle<T>& h, int64_t c, const T* d_expert_in) {
  if (chunks_ <= 1) return;
  if (intra_) return hc_start_dispatch_backward(h, c, d_expert_in);
  Wire& w = wire(h);
  start_chunk(w, c, d_expert_in, expert_blocks(h, w, c), rows_.data(), local_blocks(h, w, c), kDispatchBwd);
}

template class AllToAllDispatcher<float>;
template class AllToAllDispatcher<double>;

}  // namespace moe::rt::comm
