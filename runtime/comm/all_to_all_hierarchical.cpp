// The hierarchical, deduplicating exchange of AllToAllDispatcher (see all_to_all_dispatcher.h):
// a token crosses to each node holding any of its experts once, to the "forwarder" (the EP peer
// with the sender's local index there), which fans it out inside the node; on the way back the
// forwarder sums the node's weighted expert outputs so one row per (token, node) returns.
//
// Layouts, for an EP group of P = N nodes × L ranks (member p = node · L + local index), G = L·E/P
// experts per node, this rank me = (nm, lm):
//   source side, per destination node n: the distinct tokens (ascending) that have a kept copy on
//     node n, with a G-bit mask of which of the node's experts; copies in (node, token, expert) order;
//   forwarder side: what the same-index peers of every node m sent this node, and the copies they
//     imply laid out for the intra stage — per local rank l, per source node m, per local expert i
//     of l, the tokens in ascending order (which is exactly the flat exchange's row order, so the
//     expert inputs are bitwise those of the flat exchange). The intra stage is a block exchange:
//     each (source node, expert) block lands at its expert-major place, no regrouping copies.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "all_to_all_dispatcher.h"
#include "error.h"
#include "routing_ops.h"

namespace moe::rt::comm {

namespace {

using Clock = std::chrono::steady_clock;

// One all-to-all of rows of `width` elements over `comm` (counts in rows); returns the bytes sent
// to the other members (the row to oneself is a local copy).
template <typename E>
int64_t exchange_rows(Communicator& comm, const E* send, std::vector<int64_t> send_rows, E* recv,
                      std::vector<int64_t> recv_rows, int64_t width) {
  int64_t bytes = 0;
  for (size_t p = 0; p < send_rows.size(); ++p) {
    if (static_cast<int>(p) != comm.rank()) bytes += send_rows[p] * width * static_cast<int64_t>(sizeof(E));
    send_rows[p] *= width;
    recv_rows[p] *= width;
  }
  comm.all_to_all_v(send, send_rows, recv, recv_rows, sizeof(E));
  return bytes;
}

// One block all-to-all over `comm`; returns the bytes sent to the other members.
template <typename E>
int64_t exchange_blocks(Communicator& comm, const E* send, const Communicator::Blocks& send_blocks, E* recv,
                        const Communicator::Blocks& recv_blocks) {
  const size_t per_peer = send_blocks.count.size() / static_cast<size_t>(comm.size());
  int64_t bytes = 0;
  for (size_t k = 0; k < send_blocks.count.size(); ++k)
    if (static_cast<int>(k / per_peer) != comm.rank()) bytes += send_blocks.count[k] * static_cast<int64_t>(sizeof(E));
  comm.all_to_all_blocks(send, send_blocks, recv, recv_blocks, sizeof(E));
  return bytes;
}

std::vector<int64_t> diffs(const std::vector<int64_t>& offsets) {
  std::vector<int64_t> out(offsets.size() - 1);
  for (size_t i = 0; i + 1 < offsets.size(); ++i) out[i] = offsets[i + 1] - offsets[i];
  return out;
}

// Calls f(bit) for every set bit of a W-word mask, ascending.
template <typename F>
void for_each_bit(const uint64_t* mask, int64_t words, F&& f) {
  for (int64_t k = 0; k < words; ++k)
    for (uint64_t m = mask[k]; m; m &= m - 1) f(k * 64 + __builtin_ctzll(m));
}

}  // namespace

template <typename T>
int64_t AllToAllDispatcher<T>::rows_between(const Wire& w, int64_t s, int64_t q) const {
  return w.matrix[static_cast<size_t>(s * (ep_.size() + nodes_) + q)];
}

template <typename T>
int64_t AllToAllDispatcher<T>::dedup_between(const Wire& w, int64_t s, int64_t n) const {
  return w.matrix[static_cast<size_t>(s * (ep_.size() + nodes_) + ep_.size() + n)];
}

template <typename T>
void AllToAllDispatcher<T>::account(Wire& w, A2APhase phase, double us, int64_t intra, int64_t inter, int64_t meta) {
  for (A2AStat* s : {&w.times[phase], &totals_[phase]}) {
    if (w.chunk && s == &totals_[phase]) break;  // a chunk job on the comm thread: the caller adds it
    s->us += us;
    s->exposed_us += us;
    s->bytes += intra + inter;
    s->intra_bytes += intra;
    s->inter_bytes += inter;
    s->meta_bytes += meta;
  }
}

template <typename T>
void AllToAllDispatcher<T>::plan_sources(const DispatchHandle<T>& h, Wire& w) const {
  const int64_t N = nodes_, G = per_node_ * local_, W = mask_words();
  w.src_node_off.assign(static_cast<size_t>(N + 1), 0);
  w.src_copy_off.assign(static_cast<size_t>(N + 1), 0);
  w.src_token.clear();
  w.src_mask.clear();
  w.src_copy_row.clear();
  std::vector<std::pair<int64_t, int32_t>> items;  // (token · G + expert on the node, local row)
  for (int64_t n = 0; n < N; ++n) {
    items.clear();
    for (int64_t e = n * G; e < (n + 1) * G; ++e)
      for (int64_t r = h.offsets[e]; r < h.offsets[e + 1]; ++r)
        items.emplace_back(int64_t{h.row_token[r]} * G + (e - n * G), static_cast<int32_t>(r));
    std::sort(items.begin(), items.end());
    int64_t last = -1;
    for (const auto& [key, row] : items) {
      const int64_t t = key / G, b = key % G;
      if (t != last) {
        w.src_token.push_back(static_cast<int32_t>(t));
        w.src_mask.resize(w.src_mask.size() + static_cast<size_t>(W), 0);
        last = t;
      }
      w.src_mask[(w.src_token.size() - 1) * static_cast<size_t>(W) + static_cast<size_t>(b / 64)] |= uint64_t{1} << (b % 64);
      w.src_copy_row.push_back(row);
    }
    w.src_node_off[n + 1] = static_cast<int64_t>(w.src_token.size());
    w.src_copy_off[n + 1] = static_cast<int64_t>(w.src_copy_row.size());
  }
}

template <typename T>
void AllToAllDispatcher<T>::plan_forwarder(Wire& w) const {
  const int64_t N = nodes_, L = per_node_, W = mask_words(), me = ep_.rank(), nm = me / L, lm = me % L;
  // Copies per intra block (l, m, i): rank l of this node, source node m, l's local expert i.
  std::vector<int64_t> cursor(static_cast<size_t>(L * N * local_ + 1), 0);
  w.fw_copy_off.assign(static_cast<size_t>(N + 1), 0);
  for (int64_t m = 0; m < N; ++m) {
    for (int64_t r = w.fw_off[m]; r < w.fw_off[m + 1]; ++r)
      for_each_bit(w.fw_mask.data() + r * W, W, [&](int64_t b) {
        ++cursor[static_cast<size_t>((b / local_) * N * local_ + m * local_ + b % local_ + 1)];
        ++w.fw_copy_off[m + 1];
      });
    w.fw_copy_off[m + 1] += w.fw_copy_off[m];
  }
  w.intra_block.assign(cursor.begin() + 1, cursor.end());
  w.intra_send.assign(static_cast<size_t>(L), 0);
  for (int64_t l = 0; l < L; ++l)
    for (int64_t j = 0; j < N * local_; ++j) w.intra_send[l] += cursor[static_cast<size_t>(l * N * local_ + j + 1)];
  for (size_t b = 1; b < cursor.size(); ++b) cursor[b] += cursor[b - 1];
  const int64_t C = cursor.back();
  w.copy_row.resize(static_cast<size_t>(C));
  w.copy_pos.clear();
  for (int64_t m = 0; m < N; ++m)
    for (int64_t r = w.fw_off[m]; r < w.fw_off[m + 1]; ++r)
      for_each_bit(w.fw_mask.data() + r * W, W, [&](int64_t b) {
        const int64_t pos = cursor[static_cast<size_t>((b / local_) * N * local_ + m * local_ + b % local_)]++;
        w.copy_row[static_cast<size_t>(pos)] = static_cast<int32_t>(r);
        w.copy_pos.push_back(pos);
      });
  // The masks must imply what the count matrix says (a mismatch would hang or corrupt the exchange).
  for (int64_t l = 0; l < L; ++l) {
    int64_t want = 0;
    for (int64_t m = 0; m < N; ++m) want += rows_between(w, m * L + lm, nm * L + l);
    if (want != w.intra_send[l])
      throw Error("dispatcher: rank " + std::to_string(me) + " of the EP group forwards " + std::to_string(w.intra_send[l]) +
                  " copies to its local peer " + std::to_string(l) + " but the counts say " + std::to_string(want));
  }
}

template <typename T>
Communicator::Blocks AllToAllDispatcher<T>::intra_expert_blocks(const DispatchHandle<T>& h, const Wire& w) const {
  const Communicator::Blocks flat = expert_blocks(h, w);  // block p·local_ + i: member p's rows for expert i
  const int64_t L = per_node_, N = nodes_;
  Communicator::Blocks b;
  for (int64_t f = 0; f < L; ++f)
    for (int64_t m = 0; m < N; ++m)
      for (int64_t i = 0; i < local_; ++i) {
        const int64_t k = (m * L + f) * local_ + i;
        b.offset.push_back(flat.offset[k]);
        b.count.push_back(flat.count[k]);
      }
  return b;
}

template <typename T>
Communicator::Blocks AllToAllDispatcher<T>::intra_forwarder_blocks(const Wire& w, int64_t d) const {
  Communicator::Blocks b;
  int64_t at = 0;
  for (int64_t rows : w.intra_block) {
    b.offset.push_back(at * d);
    b.count.push_back(rows * d);
    at += rows;
  }
  return b;
}

template <typename T>
void AllToAllDispatcher<T>::hier_dispatch(DispatchHandle<T>& h, Wire& w, const T* x) {
  const auto t0 = Clock::now();
  const int64_t N = nodes_, L = per_node_, W = mask_words(), me = ep_.rank(), nm = me / L, lm = me % L, d = h.d;
  // Stage 1, across nodes: the expert masks, then one row per (token, node).
  const std::vector<int64_t> s_cnt = diffs(w.src_node_off);
  std::vector<int64_t> r_cnt(static_cast<size_t>(N));
  w.fw_off.assign(static_cast<size_t>(N + 1), 0);
  for (int64_t m = 0; m < N; ++m) r_cnt[m] = dedup_between(w, m * L + lm, nm), w.fw_off[m + 1] = w.fw_off[m] + r_cnt[m];
  const int64_t S = w.src_node_off[N], F = w.fw_off[N];
  w.fw_mask.assign(static_cast<size_t>(F * W), 0);
  const int64_t meta = exchange_rows(*inter_, w.src_mask.data(), s_cnt, w.fw_mask.data(), r_cnt, W);
  if (x) {  // (null: the overlap chunks gathered src_rows on the caller's thread)
    w.src_rows.resize(static_cast<size_t>(S * d));
    gather_rows(w.src_rows.data(), x, w.src_token.data(), S, d);
  }
  w.fw_rows.resize(static_cast<size_t>(F * d));
  const int64_t inter = exchange_rows(*inter_, w.src_rows.data(), s_cnt, w.fw_rows.data(), r_cnt, d);
  // Stage 2, inside the node: one copy per (token, expert) to the rank holding the expert.
  plan_forwarder(w);
  const int64_t C = static_cast<int64_t>(w.copy_row.size()), R = h.expert_rows();
  stage_send_.resize(static_cast<size_t>(C * d));
  gather_rows(stage_send_.data(), w.fw_rows.data(), w.copy_row.data(), C, d);
  h.expert_input.resize(static_cast<size_t>(R * d));
  const int64_t intra = exchange_blocks(*intra_, stage_send_.data(), intra_forwarder_blocks(w, d), h.expert_input.data(),
                                        intra_expert_blocks(h, w));
  h.returned_rows = nullptr;
  w.combined = false;
  account(w, kDispatchFwd, std::chrono::duration<double, std::micro>(Clock::now() - t0).count(), intra, inter, meta);
}

template <typename T>
void AllToAllDispatcher<T>::hier_combine(DispatchHandle<T>& h, Wire& w, const T* expert_out, const T* weight, T* y) {
  const auto t0 = Clock::now();
  const int64_t N = nodes_, d = h.d, C = static_cast<int64_t>(w.copy_row.size());
  const int64_t S = w.src_node_off[N], F = w.fw_off[N];
  // The gate weights of the copies to their forwarders (routing metadata, one value per copy).
  w.meta_send.resize(w.src_copy_row.size());
  for (size_t c = 0; c < w.src_copy_row.size(); ++c) w.meta_send[c] = weight[h.row_assignment[w.src_copy_row[c]]];
  w.meta_recv.resize(static_cast<size_t>(C));
  const int64_t meta = exchange_rows(*inter_, w.meta_send.data(), diffs(w.src_copy_off), w.meta_recv.data(), diffs(w.fw_copy_off), 1);
  w.fw_weight.resize(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) w.fw_weight[w.copy_pos[c]] = w.meta_recv[c];
  // Expert outputs back to the forwarders (inside the node), kept for combine_backward.
  w.fw_out.resize(static_cast<size_t>(C * d));
  const int64_t intra = exchange_blocks(*intra_, expert_out, intra_expert_blocks(h, w), w.fw_out.data(), intra_forwarder_blocks(w, d));
  // The forwarder sums each token's weighted outputs on this node: one row per (token, node) back.
  w.fw_acc.assign(static_cast<size_t>(F * d), T(0));
  weighted_scatter_add_rows(w.fw_acc.data(), w.fw_out.data(), w.copy_row.data(), w.fw_weight.data(), C, d);
  w.src_rows.resize(static_cast<size_t>(S * d));
  const int64_t inter = exchange_rows(*inter_, w.fw_acc.data(), diffs(w.fw_off), w.src_rows.data(), diffs(w.src_node_off), d);
  if (y) scatter_add_rows(y, w.src_rows.data(), w.src_token.data(), S, d);  // (null: the caller adds src_rows)
  w.combined = true;
  account(w, kCombineFwd, std::chrono::duration<double, std::micro>(Clock::now() - t0).count(), intra, inter, meta);
}

template <typename T>
void AllToAllDispatcher<T>::hier_combine_backward(DispatchHandle<T>& h, Wire& w, const T* dy, T* dweight, T* d_expert_out) {
  if (!w.combined) throw Error("dispatcher: combine_backward before combine");
  const auto t0 = Clock::now();
  const int64_t N = nodes_, d = h.d, C = static_cast<int64_t>(w.copy_row.size());
  const int64_t S = w.src_node_off[N], F = w.fw_off[N];
  // dy crosses once per (token, node). (dy null: the overlap chunks gathered src_rows already.)
  if (dy) {
    w.src_rows.resize(static_cast<size_t>(S * d));
    gather_rows(w.src_rows.data(), dy, w.src_token.data(), S, d);
  }
  w.fw_rows.resize(static_cast<size_t>(F * d));
  const int64_t inter = exchange_rows(*inter_, w.src_rows.data(), diffs(w.src_node_off), w.fw_rows.data(), diffs(w.fw_off), d);
  // The gate weights' gradient per copy, at the forwarder (the flat path's row_dots on the same
  // rows), returned to the source (metadata).
  w.fw_acc.resize(static_cast<size_t>(C));
  row_dots(w.fw_acc.data(), w.fw_out.data(), w.fw_rows.data(), w.copy_row.data(), C, d);
  w.meta_recv.resize(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) w.meta_recv[c] = w.fw_acc[w.copy_pos[c]];
  w.meta_send.resize(w.src_copy_row.size());
  const int64_t meta = exchange_rows(*inter_, w.meta_recv.data(), diffs(w.fw_copy_off), w.meta_send.data(), diffs(w.src_copy_off), 1);
  std::fill(dweight, dweight + h.assignment_row.size(), T(0));
  for (size_t c = 0; c < w.src_copy_row.size(); ++c) dweight[h.row_assignment[w.src_copy_row[c]]] = w.meta_send[c];
  // weight · dy fanned out to the experts inside the node.
  stage_send_.resize(static_cast<size_t>(C * d));
  weighted_gather_rows(stage_send_.data(), w.fw_rows.data(), w.copy_row.data(), w.fw_weight.data(), C, d);
  const int64_t intra = exchange_blocks(*intra_, stage_send_.data(), intra_forwarder_blocks(w, d), d_expert_out,
                                        intra_expert_blocks(h, w));
  account(w, kCombineBwd, std::chrono::duration<double, std::micro>(Clock::now() - t0).count(), intra, inter, meta);
}

template <typename T>
void AllToAllDispatcher<T>::hier_dispatch_backward(DispatchHandle<T>& h, Wire& w, const T* d_expert_in, T* dx) {
  const auto t0 = Clock::now();
  const int64_t N = nodes_, d = h.d, C = static_cast<int64_t>(w.copy_row.size());
  const int64_t S = w.src_node_off[N], F = w.fw_off[N];
  stage_recv_.resize(static_cast<size_t>(C * d));
  const int64_t intra = exchange_blocks(*intra_, d_expert_in, intra_expert_blocks(h, w), stage_recv_.data(), intra_forwarder_blocks(w, d));
  // Summed per (token, node) at the forwarder, one row back across nodes.
  w.fw_acc.assign(static_cast<size_t>(F * d), T(0));
  scatter_add_rows(w.fw_acc.data(), stage_recv_.data(), w.copy_row.data(), C, d);
  w.src_rows.resize(static_cast<size_t>(S * d));
  const int64_t inter = exchange_rows(*inter_, w.fw_acc.data(), diffs(w.fw_off), w.src_rows.data(), diffs(w.src_node_off), d);
  if (dx) scatter_add_rows(dx, w.src_rows.data(), w.src_token.data(), S, d);  // (null: the caller adds src_rows)
  account(w, kDispatchBwd, std::chrono::duration<double, std::micro>(Clock::now() - t0).count(), intra, inter, 0);
}

// The members defined here, for the dispatcher's two element types.
#define MOE_HIER_INSTANTIATE(T)                                                                                       \
  template int64_t AllToAllDispatcher<T>::rows_between(const Wire&, int64_t, int64_t) const;                          \
  template int64_t AllToAllDispatcher<T>::dedup_between(const Wire&, int64_t, int64_t) const;                         \
  template void AllToAllDispatcher<T>::account(Wire&, A2APhase, double, int64_t, int64_t, int64_t);                   \
  template void AllToAllDispatcher<T>::plan_sources(const DispatchHandle<T>&, Wire&) const;                           \
  template void AllToAllDispatcher<T>::plan_forwarder(Wire&) const;                                                   \
  template Communicator::Blocks AllToAllDispatcher<T>::intra_expert_blocks(const DispatchHandle<T>&, const Wire&) const; \
  template Communicator::Blocks AllToAllDispatcher<T>::intra_forwarder_blocks(const Wire&, int64_t) const;            \
  template void AllToAllDispatcher<T>::hier_dispatch(DispatchHandle<T>&, Wire&, const T*);                            \
  template void AllToAllDispatcher<T>::hier_combine(DispatchHandle<T>&, Wire&, const T*, const T*, T*);               \
  template void AllToAllDispatcher<T>::hier_combine_backward(DispatchHandle<T>&, Wire&, const T*, T*, T*);            \
  template void AllToAllDispatcher<T>::hier_dispatch_backward(DispatchHandle<T>&, Wire&, const T*, T*);
MOE_HIER_INSTANTIATE(float)
MOE_HIER_INSTANTIATE(double)
#undef MOE_HIER_INSTANTIATE

}  // namespace moe::rt::comm
