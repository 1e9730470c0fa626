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
  const double count_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
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
