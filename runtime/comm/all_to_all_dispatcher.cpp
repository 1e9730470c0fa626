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
void AllToAllDispatcher<T>::expert_to_peer(const Wire& w, const T* src, T* dst, int64_t d) const {
  const int64_t P = ep_.size();
  // Offsets of block (p, i) in both layouts.
  int64_t peer_pos = 0;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < local_; ++i) {
      int64_t expert_pos = 0;  // rows before (p, i) in expert-major order
      for (int64_t j = 0; j < i; ++j)
        for (int64_t q = 0; q < P; ++q) expert_pos += w.recv_expert[q * local_ + j];
      for (int64_t q = 0; q < p; ++q) expert_pos += w.recv_expert[q * local_ + i];
      const int64_t n = w.recv_expert[p * local_ + i];
      if (n) std::memcpy(dst + peer_pos * d, src + expert_pos * d, static_cast<size_t>(n * d) * sizeof(T));
      peer_pos += n;
    }
}

template <typename T>
void AllToAllDispatcher<T>::peer_to_expert(const Wire& w, const T* src, T* dst, int64_t d) const {
  const int64_t P = ep_.size();
  int64_t peer_pos = 0;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < local_; ++i) {
      int64_t expert_pos = 0;
      for (int64_t j = 0; j < i; ++j)
        for (int64_t q = 0; q < P; ++q) expert_pos += w.recv_expert[q * local_ + j];
      for (int64_t q = 0; q < p; ++q) expert_pos += w.recv_expert[q * local_ + i];
      const int64_t n = w.recv_expert[p * local_ + i];
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
  if (intra_) {
    int64_t inter = 0;
    exchange_hierarchical(w, send, recv, d, reverse, intra, inter);
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    for (A2AStat* s : {&w.times[phase], &totals_[phase]}) {
      s->us += us;
      s->bytes += intra + inter;
      s->intra_bytes += intra;
      s->inter_bytes += inter;
    }
    return;
  }
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
    s->bytes += off_rank;
    s->intra_bytes += intra;
    s->inter_bytes += off_rank - intra;
  }
}

template <typename T>
void AllToAllDispatcher<T>::exchange_hierarchical(const Wire& w, const T* send, T* recv, int64_t d, bool reverse,
                                                  int64_t& intra, int64_t& inter) {
  const int64_t P = ep_.size(), L = per_node_, N = nodes_, me = ep_.rank(), nm = me / L, lm = me % L;
  // rows(s, q): rows member s sends member q in this direction.
  auto rows = [&](int64_t s, int64_t q) { return reverse ? w.matrix[q * P + s] : w.matrix[s * P + q]; };
  std::vector<int64_t> send_off(static_cast<size_t>(P + 1), 0);
  for (int64_t q = 0; q < P; ++q) send_off[q + 1] = send_off[q] + rows(me, q);
  const size_t row_bytes = static_cast<size_t>(d) * sizeof(T);
  // Stage 1 (inside the node): to local peer l, for every node n, the rows for member (n, l).
  std::vector<int64_t> c1_send(static_cast<size_t>(L), 0), c1_recv(static_cast<size_t>(L), 0);
  stage_send_.resize(static_cast<size_t>(send_off[P] * d));
  int64_t at = 0;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t q = n * L + l, k = rows(me, q);
      if (k) std::memcpy(stage_send_.data() + at * d, send + send_off[q] * d, static_cast<size_t>(k) * row_bytes);
      at += k;
      c1_send[l] += k;
    }
  int64_t recv1 = 0;
  for (int64_t s = 0; s < L; ++s)
    for (int64_t n = 0; n < N; ++n) c1_recv[s] += rows(nm * L + s, n * L + lm);
  for (int64_t s = 0; s < L; ++s) recv1 += c1_recv[s];
  intra = 0;
  for (int64_t l = 0; l < L; ++l)
    if (l != lm) intra += c1_send[l] * d * static_cast<int64_t>(sizeof(T));
  stage_recv_.resize(static_cast<size_t>(recv1 * d));
  for (auto* c : {&c1_send, &c1_recv})
    for (int64_t& v : *c) v *= d;
  intra_->all_to_all_v(stage_send_.data(), c1_send, stage_recv_.data(), c1_recv, sizeof(T));
  // Stage 2 (across nodes, same local index): to node n, the rows of every local source s for (n, lm).
  std::vector<int64_t> src_off(static_cast<size_t>(L * N), 0);  // offset of block (s, n) in stage_recv_
  at = 0;
  for (int64_t s = 0; s < L; ++s)
    for (int64_t n = 0; n < N; ++n) src_off[s * N + n] = at, at += rows(nm * L + s, n * L + lm);
  stage_send_.resize(static_cast<size_t>(recv1 * d));
  std::vector<int64_t> c2_send(static_cast<size_t>(N), 0), c2_recv(static_cast<size_t>(N), 0);
  at = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < L; ++s) {
      const int64_t k = rows(nm * L + s, n * L + lm);
      if (k) std::memcpy(stage_send_.data() + at * d, stage_recv_.data() + src_off[s * N + n] * d, static_cast<size_t>(k) * row_bytes);
      at += k;
      c2_send[n] += k;
    }
  for (int64_t m = 0; m < N; ++m)
    for (int64_t s = 0; s < L; ++s) c2_recv[m] += rows(m * L + s, me);
  inter = 0;
  for (int64_t n = 0; n < N; ++n)
    if (n != nm) inter += c2_send[n] * d * static_cast<int64_t>(sizeof(T));
  for (auto* c : {&c2_send, &c2_recv})
    for (int64_t& v : *c) v *= d;
  // Arrives source-major (node m, then local s = member m·L + s): the flat exchange's order.
  inter_->all_to_all_v(stage_send_.data(), c2_send, recv, c2_recv, sizeof(T));
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
  if (intra_) {  // the stages forward other ranks' rows: every rank needs the whole count matrix
    const auto t1 = Clock::now();
    w.matrix.assign(static_cast<size_t>(P * P), 0);
    ep_.all_gather(w.send_rows.data(), w.matrix.data(), static_cast<size_t>(P) * sizeof(int64_t));
    count_us += std::chrono::duration<double, std::micro>(Clock::now() - t1).count();
  }
  w.times[kDispatchFwd].us += count_us;
  totals_[kDispatchFwd].us += count_us;
  h.expert_counts.assign(static_cast<size_t>(local_), 0);
  for (int64_t i = 0; i < local_; ++i)
    for (int64_t p = 0; p < P; ++p) h.expert_counts[i] += w.recv_expert[p * local_ + i];
  h.expert_offsets.resize(static_cast<size_t>(local_ + 1));
  exclusive_scan(h.expert_counts.data(), local_, h.expert_offsets.data());
  // Rows in local (expert-major = peer-major, experts being contiguous per peer) order → wire.
  rows_.resize(static_cast<size_t>(h.local_rows() * d));
  gather_rows(rows_.data(), x, h.row_token.data(), h.local_rows(), d);
  w.buffer.resize(static_cast<size_t>(h.expert_rows() * d));
  exchange(w, rows_.data(), w.buffer.data(), d, false, kDispatchFwd);
  h.expert_input.resize(static_cast<size_t>(h.expert_rows() * d));
  peer_to_expert(w, w.buffer.data(), h.expert_input.data(), d);
  h.returned_rows = nullptr;
}

template <typename T>
void AllToAllDispatcher<T>::combine(DispatchHandle<T>& h, const T* expert_out, const T* weight, T* y) {
  Wire& w = wire(h);
  const int64_t d = h.d, R = h.local_rows();
  w.buffer.resize(static_cast<size_t>(h.expert_rows() * d));
  expert_to_peer(w, expert_out, w.buffer.data(), d);
  w.returned.resize(static_cast<size_t>(R * d));
  exchange(w, w.buffer.data(), w.returned.data(), d, true, kCombineFwd);
  h.row_weight.resize(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) h.row_weight[r] = weight[h.row_assignment[r]];
  weighted_scatter_add_rows(y, w.returned.data(), h.row_token.data(), h.row_weight.data(), R, d);
  h.returned_rows = w.returned.data();
}

template <typename T>
void AllToAllDispatcher<T>::combine_backward(DispatchHandle<T>& h, const T* dy, T* dweight, T* d_expert_out) {
  Wire& w = wire(h);
  const int64_t d = h.d, R = h.local_rows();
  if (R > 0 && h.returned_rows == nullptr) throw Error("dispatcher: combine_backward before combine");
  row_dweight_.resize(static_cast<size_t>(R));
  row_dots(row_dweight_.data(), h.returned_rows, dy, h.row_token.data(), R, d);
  std::fill(dweight, dweight + h.assignment_row.size(), T(0));
  for (int64_t r = 0; r < R; ++r) dweight[h.row_assignment[r]] = row_dweight_[r];
  rows_.resize(static_cast<size_t>(R * d));
  weighted_gather_rows(rows_.data(), dy, h.row_token.data(), h.row_weight.data(), R, d);
  w.buffer.resize(static_cast<size_t>(h.expert_rows() * d));
  exchange(w, rows_.data(), w.buffer.data(), d, false, kCombineBwd);
  peer_to_expert(w, w.buffer.data(), d_expert_out, d);
}

template <typename T>
void AllToAllDispatcher<T>::dispatch_backward(DispatchHandle<T>& h, const T* d_expert_in, T* dx) {
  Wire& w = wire(h);
  const int64_t d = h.d, R = h.local_rows();
  w.buffer.resize(static_cast<size_t>(h.expert_rows() * d));
  expert_to_peer(w, d_expert_in, w.buffer.data(), d);
  rows_.resize(static_cast<size_t>(R * d));
  exchange(w, w.buffer.data(), rows_.data(), d, true, kDispatchBwd);
  scatter_add_rows(dx, rows_.data(), h.row_token.data(), R, d);
}

template class AllToAllDispatcher<float>;
template class AllToAllDispatcher<double>;

}  // namespace moe::rt::comm
