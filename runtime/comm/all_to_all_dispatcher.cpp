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
void AllToAllDispatcher<T>::expert_to_peer(const std::vector<int64_t>& recv_expert, const T* src, T* dst, int64_t d) const {
  const int64_t P = ep_.size();
  // Offsets of block (p, i) in both layouts.
  int64_t peer_pos = 0;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < local_; ++i) {
      int64_t expert_pos = 0;  // rows before (p, i) in expert-major order
      for (int64_t j = 0; j < i; ++j)
        for (int64_t q = 0; q < P; ++q) expert_pos += recv_expert[q * local_ + j];
      for (int64_t q = 0; q < p; ++q) expert_pos += recv_expert[q * local_ + i];
      const int64_t n = recv_expert[p * local_ + i];
      if (n) std::memcpy(dst + peer_pos * d, src + expert_pos * d, static_cast<size_t>(n * d) * sizeof(T));
      peer_pos += n;
    }
}

template <typename T>
void AllToAllDispatcher<T>::peer_to_expert(const std::vector<int64_t>& recv_expert, const T* src, T* dst, int64_t d) const {
  const int64_t P = ep_.size();
  int64_t peer_pos = 0;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < local_; ++i) {
      int64_t expert_pos = 0;
      for (int64_t j = 0; j < i; ++j)
        for (int64_t q = 0; q < P; ++q) expert_pos += recv_expert[q * local_ + j];
      for (int64_t q = 0; q < p; ++q) expert_pos += recv_expert[q * local_ + i];
      const int64_t n = recv_expert[p * local_ + i];
      if (n) std::memcpy(dst + expert_pos * d, src + peer_pos * d, static_cast<size_t>(n * d) * sizeof(T));
      peer_pos += n;
    }
}

template <typename T>
void AllToAllDispatcher<T>::exchange(Wire& w, const T* send, T* recv, int64_t d, bool reverse, A2APhase phase) {
  const auto t0 = Clock::now();
  std::vector<int64_t> send_counts = reverse ? w.recv_rows : w.send_rows;
  std::vector<int64_t> recv_counts = reverse ? w.send_rows : w.recv_rows;
  int64_t off_rank = 0, intra = 0;
  const int64_t me = ep_.rank();
  for (int64_t p = 0; p < ep_.size(); ++p) {
    const int64_t bytes = send_counts[p] * d * static_cast<int64_t>(sizeof(T));
    if (p != me) off_rank += bytes;
    if (p != me && (peer_node_.empty() || peer_node_[p] == peer_node_[me])) intra += bytes;
    send_counts[p] *= d;
    recv_counts[p] *= d;
  }
  ep_.all_to_all_v(send, send_counts, recv, recv_counts, sizeof(T));
  const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  for (A2AStat* s : {&w.times[phase], &totals_[phase]}) {
    s->us += us;
    s->exposed_us += us;
    s->bytes += off_rank;
    s->intra_bytes += intra;
    s->inter_bytes += off_rank - intra;
  }
}

template <typename T>
A2ATimes AllToAllDispatcher<T>::take_totals() {
  A2ATimes out = totals_;
  totals_ = {};
  return out;
}

template <typename T>
void AllToAllDispatcher<T>::dispatch(const Assignments& asg, const T* x, int64_t d, DispatchHandle<T>& h) {
  if (asg.num_experts != num_experts_)
    throw Error("dispatcher: assignments name " + std::to_string(asg.num_experts) + " experts, the layer has " +
                std::to_string(num_experts_));
  if (intra_ && chunks_ > 1) return hc_dispatch(asg, x, d, h);  // all_to_all_hier_chunks.cpp
  Wire& w = wire(h);
  w.times = {};
  h.d = d;
  plan_local_permutation(asg, h);
  const int64_t P = ep_.size();
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
  for (A2AStat* s : {&w.times[kDispatchFwd], &totals_[kDispatchFwd]}) s->us += count_us, s->exposed_us += count_us;
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
    rows_.resize(static_cast<size_t>(h.local_rows() * d));
    gather_rows(rows_.data(), x, h.row_token.data(), h.local_rows(), d);
    w.chunk_send.resize(static_cast<size_t>(n));
    w.chunk_recv.resize(static_cast<size_t>(n));
    w.pending.assign(static_cast<size_t>(n), CommHandle{});
    for (int64_t c = 0; c < n; ++c) {
      int64_t sent = 0;
      for (int64_t e = 0; e < E; ++e) sent += w.chunk_send_block[c][e];
      w.chunk_send[c].resize(static_cast<size_t>(sent * d));
      pack_local_rows(h, w, c, rows_.data(), w.chunk_send[c].data());
      start_chunk(w, c, d, false, kDispatchFwd);
    }
    h.expert_input.resize(static_cast<size_t>(h.expert_rows() * d));
    h.returned_rows = nullptr;
    return;
  }
  if (intra_) {
    hier_dispatch(h, w, x);
    return;
  }
  // Rows in local (expert-major = peer-major, experts being contiguous per peer) order → wire.
  rows_.resize(static_cast<size_t>(h.local_rows() * d));
  gather_rows(rows_.data(), x, h.row_token.data(), h.local_rows(), d);
  w.buffer.resize(static_cast<size_t>(h.expert_rows() * d));
  exchange(w, rows_.data(), w.buffer.data(), d, false, kDispatchFwd);
  h.expert_input.resize(static_cast<size_t>(h.expert_rows() * d));
  peer_to_expert(w.recv_expert, w.buffer.data(), h.expert_input.data(), d);
  h.returned_rows = nullptr;
}

template <typename T>
void AllToAllDispatcher<T>::combine(DispatchHandle<T>& h, const T* expert_out, const T* weight, T* y) {
  if (intra_ && chunks_ > 1) return hc_combine(h, expert_out, weight, y);
  Wire& w = wire(h);
  if (intra_) return hier_combine(h, w, expert_out, weight, y);
  const int64_t d = h.d, R = h.local_rows();
  w.returned.resize(static_cast<size_t>(R * d));
  if (chunks_ > 1) {
    for (int64_t c = 0; c < chunks_; ++c) {
      finish_chunk(w, c, kCombineFwd, true, d);
      unpack_local_rows(h, w, c, w.chunk_recv[c].data(), w.returned.data());
    }
  } else {
    w.buffer.resize(static_cast<size_t>(h.expert_rows() * d));
    expert_to_peer(w.recv_expert, expert_out, w.buffer.data(), d);
    exchange(w, w.buffer.data(), w.returned.data(), d, true, kCombineFwd);
  }
  h.row_weight.resize(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) h.row_weight[r] = weight[h.row_assignment[r]];
  weighted_scatter_add_rows(y, w.returned.data(), h.row_token.data(), h.row_weight.data(), R, d);
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
  if (chunks_ > 1) {  // start every chunk; wait_combine_backward_chunk places them
    w.d_expert_out = d_expert_out;
    for (int64_t c = 0; c < chunks_; ++c) {
      int64_t sent = 0;
      for (int64_t e = 0; e < num_experts_; ++e) sent += w.chunk_send_block[c][e];
      w.chunk_send[c].resize(static_cast<size_t>(sent * d));
      pack_local_rows(h, w, c, rows_.data(), w.chunk_send[c].data());
      start_chunk(w, c, d, false, kCombineBwd);
    }
    return;
  }
  w.buffer.resize(static_cast<size_t>(h.expert_rows() * d));
  exchange(w, rows_.data(), w.buffer.data(), d, false, kCombineBwd);
  peer_to_expert(w.recv_expert, w.buffer.data(), d_expert_out, d);
}

template <typename T>
void AllToAllDispatcher<T>::dispatch_backward(DispatchHandle<T>& h, const T* d_expert_in, T* dx) {
  if (intra_ && chunks_ > 1) return hc_dispatch_backward(h, d_expert_in, dx);
  Wire& w = wire(h);
  if (intra_) return hier_dispatch_backward(h, w, d_expert_in, dx);
  const int64_t d = h.d, R = h.local_rows();
  rows_.resize(static_cast<size_t>(R * d));
  if (chunks_ > 1) {
    for (int64_t c = 0; c < chunks_; ++c) {
      finish_chunk(w, c, kDispatchBwd, true, d);
      unpack_local_rows(h, w, c, w.chunk_recv[c].data(), rows_.data());
    }
  } else {
    w.buffer.resize(static_cast<size_t>(h.expert_rows() * d));
    expert_to_peer(w.recv_expert, d_expert_in, w.buffer.data(), d);
    exchange(w, w.buffer.data(), rows_.data(), d, true, kDispatchBwd);
  }
  scatter_add_rows(dx, rows_.data(), h.row_token.data(), R, d);
}

template <typename T>
void AllToAllDispatcher<T>::set_overlap_chunks(int64_t chunks) {
  if (chunks < 1) throw Error("parallel.overlap_chunks: " + std::to_string(chunks) + " must be at least 1");
  chunks_ = chunks;
}

template <typename T>
void AllToAllDispatcher<T>::pack_local_rows(const DispatchHandle<T>& h, const Wire& w, int64_t c, const T* rows,
                                            T* packed) const {
  const int64_t d = h.d, n = chunks_;
  int64_t at = 0;
  for (int64_t e = 0; e < num_experts_; ++e) {
    const int64_t k = w.chunk_send_block[c][e];
    if (k) std::memcpy(packed + at * d, rows + (h.offsets[e] + h.counts[e] * c / n) * d, static_cast<size_t>(k * d) * sizeof(T));
    at += k;
  }
}

template <typename T>
void AllToAllDispatcher<T>::unpack_local_rows(const DispatchHandle<T>& h, const Wire& w, int64_t c, const T* packed,
                                              T* rows) const {
  const int64_t d = h.d, n = chunks_;
  int64_t at = 0;
  for (int64_t e = 0; e < num_experts_; ++e) {
    const int64_t k = w.chunk_send_block[c][e];
    if (k) std::memcpy(rows + (h.offsets[e] + h.counts[e] * c / n) * d, packed + at * d, static_cast<size_t>(k * d) * sizeof(T));
    at += k;
  }
}

// Forward direction (local rows → experts): peer p gets blocks p·L..p·L+L−1 of chunk_send_block;
// reverse (experts → local rows) swaps the two sides.
template <typename T>
void AllToAllDispatcher<T>::start_chunk(Wire& w, int64_t c, int64_t d, bool reverse, A2APhase phase) {
  const int64_t P = ep_.size(), me = ep_.rank();
  std::vector<int64_t> to_peer(static_cast<size_t>(P), 0), from_peer(static_cast<size_t>(P), 0);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < local_; ++i) {
      to_peer[p] += w.chunk_send_block[c][p * local_ + i];
      from_peer[p] += w.chunk_recv_block[c][p * local_ + i];
    }
  std::vector<int64_t>& send_counts = reverse ? from_peer : to_peer;
  std::vector<int64_t>& recv_counts = reverse ? to_peer : from_peer;
  int64_t recv_rows = 0;
  for (int64_t p = 0; p < P; ++p) recv_rows += recv_counts[p];
  w.chunk_recv[c].resize(static_cast<size_t>(recv_rows * d));
  int64_t off_rank = 0, intra = 0;
  for (int64_t p = 0; p < P; ++p) {
    const int64_t bytes = send_counts[p] * d * static_cast<int64_t>(sizeof(T));
    if (p != me) off_rank += bytes;
    if (p != me && (peer_node_.empty() || peer_node_[p] == peer_node_[me])) intra += bytes;
    send_counts[p] *= d;
    recv_counts[p] *= d;
  }
  // Bytes are known now; the time when the chunk is waited for.
  for (A2AStat* s : {&w.times[phase], &totals_[phase]}) {
    s->bytes += off_rank;
    s->intra_bytes += intra;
    s->inter_bytes += off_rank - intra;
  }
  w.pending[c] = ep_.all_to_all_v_async(w.chunk_send[c].data(), send_counts, w.chunk_recv[c].data(), recv_counts, sizeof(T));
}

template <typename T>
void AllToAllDispatcher<T>::finish_chunk(Wire& w, int64_t c, A2APhase phase, bool /*reverse*/, int64_t /*d*/) {
  const double blocked = w.pending[c].wait();
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
  Wire& w = wire(h);
  finish_chunk(w, c, kDispatchFwd, false, h.d);
  peer_to_expert(w.chunk_recv_block[c], w.chunk_recv[c].data(), h.expert_input.data() + h.chunk_offsets[c] * h.d, h.d);
}

template <typename T>
void AllToAllDispatcher<T>::start_combine_chunk(DispatchHandle<T>& h, int64_t c, const T* expert_out, const T* weight) {
  if (chunks_ <= 1) return;
  if (intra_) return hc_start_combine(h, c, expert_out, weight);
  Wire& w = wire(h);
  w.chunk_send[c].resize(static_cast<size_t>((h.chunk_offsets[c + 1] - h.chunk_offsets[c]) * h.d));
  expert_to_peer(w.chunk_recv_block[c], expert_out + h.chunk_offsets[c] * h.d, w.chunk_send[c].data(), h.d);
  start_chunk(w, c, h.d, true, kCombineFwd);
}

template <typename T>
void AllToAllDispatcher<T>::wait_combine_backward_chunk(DispatchHandle<T>& h, int64_t c) {
  if (chunks_ <= 1) return;
  if (intra_) return hc_wait_combine_backward(h, c);
  Wire& w = wire(h);
  finish_chunk(w, c, kCombineBwd, false, h.d);
  peer_to_expert(w.chunk_recv_block[c], w.chunk_recv[c].data(), w.d_expert_out + h.chunk_offsets[c] * h.d, h.d);
}

template <typename T>
void AllToAllDispatcher<T>::start_dispatch_backward_chunk(DispatchHandle<T>& h, int64_t c, const T* d_expert_in) {
  if (chunks_ <= 1) return;
  if (intra_) return hc_start_dispatch_backward(h, c, d_expert_in);
  Wire& w = wire(h);
  w.chunk_send[c].resize(static_cast<size_t>((h.chunk_offsets[c + 1] - h.chunk_offsets[c]) * h.d));
  expert_to_peer(w.chunk_recv_block[c], d_expert_in + h.chunk_offsets[c] * h.d, w.chunk_send[c].data(), h.d);
  start_chunk(w, c, h.d, true, kDispatchBwd);
}

template class AllToAllDispatcher<float>;
template class AllToAllDispatcher<double>;

}  // namespace moe::rt::comm
