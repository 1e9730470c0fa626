// The hierarchical all-to-all with overlap chunks (parallel.hierarchical_a2a together with
// parallel.overlap_chunks = n > 1; see all_to_all_dispatcher.h). Chunk c is a token range of every
// source rank: tokens [c·T/n, (c+1)·T/n) of its T. A token lies in exactly one chunk, so the
// deduplication per (token, node), the rows and the routing metadata are exactly those of the
// unchunked hierarchical exchange — and so are y, dx and dweight: each token's per-node sums
// arrive in the same order (node-major), just in the chunk's batch.
//
// dispatch() plans every chunk on the caller's thread — the chunk's own local permutation (global
// token ids), plan_sources, and ONE all-gather of every chunk's per-expert counts and distinct
// tokens per node — so the chunk-major expert rows are sized up front; then it submits one job per
// chunk to the EP communicator's comm thread: the chunk's two stages (hier_dispatch on the chunk's
// sub-handle and wire). All jobs run on that one thread, submitted in the same order on every rank
// (dispatch chunks, then combine chunks; combine-backward chunks, then dispatch-backward chunks), so
// the collectives on ep_inter and ep_intra stay matched. What the caller owns (x, y, dy, dx,
// dweight) is read and written on the caller's thread only; a job touches its chunk's wire and its
// chunk's region of the expert rows (expert_out / d_expert_in must stay valid until combine() /
// dispatch_backward() return, as MoeCompute's buffers do).
#include <chrono>
#include <cstring>

#include "all_to_all_dispatcher.h"
#include "error.h"
#include "local_dispatcher.h"
#include "routing_ops.h"

namespace moe::rt::comm {

namespace {
using Clock = std::chrono::steady_clock;
const char* const kJobName[4] = {"hierarchical all-to-all chunk (dispatch fwd)", "hierarchical all-to-all chunk (combine fwd)",
                                 "hierarchical all-to-all chunk (combine bwd)", "hierarchical all-to-all chunk (dispatch bwd)"};
const char* const kCall[4] = {"wait_dispatch_chunk", "start_combine_chunk", "wait_combine_backward_chunk",
                              "start_dispatch_backward_chunk"};
}  // namespace

template <typename T>
void AllToAllDispatcher<T>::hc_submit(Wire& w, int64_t c, A2APhase phase, std::function<void()> job) {
  HierChunk& hc = w.hier[static_cast<size_t>(c)];
  hc.stage = phase;
  hc.in_flight = true;
  hc.pending = ep_.run_async_job(kJobName[phase], std::move(job));
}

// Waits for chunk c's job (if still in flight) and adds its figures on this thread: op time to us,
// the wait to exposed_us, and the bytes the job counted in the chunk's wire.
template <typename T>
void AllToAllDispatcher<T>::hc_finish(Wire& w, int64_t c) {
  HierChunk& hc = w.hier[static_cast<size_t>(c)];
  if (!hc.in_flight) return;
  hc.in_flight = false;
  double blocked = 0;
  try {
    blocked = hc.pending.wait();
  } catch (...) {
    // The jobs queued behind it use this dispatcher's buffers and groups: let them end (or fail
    // by the collectives' timeout) before the caller unwinds those.
    ep_.drain();
    throw;
  }
  const double op = hc.pending.op_us();
  const A2AStat& got = hc.w.times[hc.stage];
  for (A2AStat* s : {&w.times[hc.stage], &totals_[hc.stage]}) {
    s->us += op;
    s->exposed_us += blocked;
    s->bytes += got.bytes;
    s->intra_bytes += got.intra_bytes;
    s->inter_bytes += got.inter_bytes;
    s->meta_bytes += got.meta_bytes;
  }
}

template <typename T>
void AllToAllDispatcher<T>::hc_dispatch(const Assignments& asg, const T* x, int64_t d, DispatchHandle<T>& h) {
  Wire& w = wire(h);
  for (size_t c = 0; c < w.hier.size(); ++c) hc_finish(w, static_cast<int64_t>(c));  // a previous use left unfinished
  w.times = {};
  h.d = d;
  plan_local_permutation(asg, h);
  const auto t0 = Clock::now();
  const int64_t P = ep_.size(), L = local_, N = nodes_, E = num_experts_, n = chunks_, me = ep_.rank();
  // Deterministic arithmetic: each chunk's rows per (expert, sequence) join the all-gather.
  const int64_t b = h.segment_tokens > 0 ? sequences(h) : 0;
  const int64_t tokens = asg.num_tokens, K = E + N + E * b;
  // Split the assignments by their token's chunk, keeping their order.
  w.hier.resize(static_cast<size_t>(n));
  for (HierChunk& hc : w.hier) {
    hc.asg.num_tokens = tokens;
    hc.asg.num_experts = E;
    hc.asg.top_k = asg.top_k;
    hc.asg.capacity = asg.capacity;
    hc.asg.token.clear();
    hc.asg.expert.clear();
    hc.asg.route.clear();
    hc.to_handle.clear();
    hc.w.times = {};
    hc.w.chunk = true;
    hc.stage = kDispatchFwd;
  }
  std::vector<int32_t> chunk_of(static_cast<size_t>(tokens));
  for (int64_t c = 0; c < n; ++c)
    for (int64_t t = c * tokens / n; t < (c + 1) * tokens / n; ++t) chunk_of[static_cast<size_t>(t)] = static_cast<int32_t>(c);
  for (int64_t a = 0; a < asg.size(); ++a) {
    const int32_t t = asg.token[static_cast<size_t>(a)];
    if (t < 0 || t >= tokens) throw Error("dispatcher: assignment " + std::to_string(a) + " names token " + std::to_string(t) + " of " + std::to_string(tokens));
    HierChunk& hc = w.hier[static_cast<size_t>(chunk_of[static_cast<size_t>(t)])];
    hc.asg.token.push_back(t);
    hc.asg.expert.push_back(asg.expert[static_cast<size_t>(a)]);
    hc.asg.route.push_back(asg.route[static_cast<size_t>(a)]);
    hc.to_handle.push_back(static_cast<int32_t>(a));
  }
  // Per chunk: its local permutation and distinct tokens per node; every chunk's [E] counts and
  // [N] distinct tokens of every member in one all-gather.
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(n * K));
  for (HierChunk& hc : w.hier) {
    hc.h.d = d;
    plan_local_permutation(hc.asg, hc.h);
    plan_sources(hc.h, hc.w);
    mine.insert(mine.end(), hc.h.counts.begin(), hc.h.counts.end());
    for (int64_t m = 0; m < N; ++m) mine.push_back(hc.w.src_node_off[m + 1] - hc.w.src_node_off[m]);
    if (b > 0) {
      hc.h.segment_tokens = h.segment_tokens;
      const std::vector<int64_t> per_sequence = sequence_counts(hc.h);
      mine.insert(mine.end(), per_sequence.begin(), per_sequence.end());
    }
  }
  std::vector<int64_t> all(static_cast<size_t>(P * n * K));
  ep_.all_gather(mine.data(), all.data(), static_cast<size_t>(n * K) * sizeof(int64_t));
  auto at = [&](int64_t s, int64_t c, int64_t j) { return all[static_cast<size_t>((s * n + c) * K + j)]; };
  // Each chunk's wire as the unchunked dispatch would build it, and the chunk-major expert rows.
  h.chunk_offsets.assign(static_cast<size_t>(n + 1), 0);
  h.chunk_expert_offsets.assign(static_cast<size_t>(n), {});
  h.expert_counts.assign(static_cast<size_t>(L), 0);
  for (int64_t c = 0; c < n; ++c) {
    HierChunk& hc = w.hier[static_cast<size_t>(c)];
    Wire& cw = hc.w;
    cw.recv_expert.assign(static_cast<size_t>(P * L), 0);
    cw.send_rows.assign(static_cast<size_t>(P), 0);
    cw.recv_rows.assign(static_cast<size_t>(P), 0);
    cw.matrix.assign(static_cast<size_t>(P * (P + N)), 0);
    for (int64_t s = 0; s < P; ++s) {
      for (int64_t q = 0; q < P; ++q)
        for (int64_t i = 0; i < L; ++i) cw.matrix[static_cast<size_t>(s * (P + N) + q)] += at(s, c, q * L + i);
      for (int64_t m = 0; m < N; ++m) cw.matrix[static_cast<size_t>(s * (P + N) + P + m)] = at(s, c, E + m);
    }
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < L; ++i) {
        cw.recv_expert[static_cast<size_t>(p * L + i)] = at(p, c, me * L + i);
        cw.recv_rows[static_cast<size_t>(p)] += at(p, c, me * L + i);
        cw.send_rows[static_cast<size_t>(p)] += at(me, c, p * L + i);
      }
    hc.h.expert_counts.assign(static_cast<size_t>(L), 0);
    for (int64_t i = 0; i < L; ++i)
      for (int64_t p = 0; p < P; ++p) hc.h.expert_counts[static_cast<size_t>(i)] += cw.recv_expert[static_cast<size_t>(p * L + i)];
    hc.h.expert_offsets.resize(static_cast<size_t>(L + 1));
    exclusive_scan(hc.h.expert_counts.data(), L, hc.h.expert_offsets.data());
    h.chunk_expert_offsets[static_cast<size_t>(c)] = hc.h.expert_offsets;
    h.chunk_offsets[static_cast<size_t>(c + 1)] = h.chunk_offsets[static_cast<size_t>(c)] + hc.h.expert_rows();
    for (int64_t i = 0; i < L; ++i) h.expert_counts[static_cast<size_t>(i)] += hc.h.expert_counts[static_cast<size_t>(i)];
  }
  h.expert_offsets.resize(static_cast<size_t>(L + 1));
  exclusive_scan(h.expert_counts.data(), L, h.expert_offsets.data());
  // Labels: chunk c's block (p, i) holds p's rows of expert i from the chunk's token range, in
  // token order, so sequence by sequence; blocks sit member after member in the chunk's rows.
  h.expert_row_sequence.clear();
  if (b > 0) {
    h.expert_row_sequence.assign(static_cast<size_t>(h.expert_rows()), -1);
    for (int64_t c = 0; c < n; ++c) {
      const HierChunk& hc = w.hier[static_cast<size_t>(c)];
      for (int64_t i = 0; i < L; ++i) {
        int64_t pos = h.chunk_offsets[static_cast<size_t>(c)] + hc.h.expert_offsets[static_cast<size_t>(i)];
        for (int64_t p = 0; p < P; ++p)
          for (int64_t s = 0; s < b; ++s)
            for (int64_t r = 0; r < at(p, c, E + N + (me * L + i) * b + s); ++r)
              h.expert_row_sequence[static_cast<size_t>(pos++)] = static_cast<int32_t>(p * b + s);
      }
    }
  }
  h.expert_input.resize(static_cast<size_t>(h.expert_rows() * d));
  h.returned_rows = nullptr;
  w.combined = false;
  const double plan_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  for (A2AStat* s : {&w.times[kDispatchFwd], &totals_[kDispatchFwd]}) {
    s->us += plan_us;
    s->exposed_us += plan_us;
    s->count_us += plan_us;  // the planning's all-gather is the dispatch's first collective
  }
  // Start the chunks in order: this thread gathers chunk c's rows from x, the job moves them.
  for (int64_t c = 0; c < n; ++c) {
    HierChunk& hc = w.hier[static_cast<size_t>(c)];
    const int64_t S = hc.w.src_node_off[static_cast<size_t>(N)];
    hc.w.src_rows.resize(static_cast<size_t>(S * d));
    gather_rows(hc.w.src_rows.data(), x, hc.w.src_token.data(), S, d);
    T* dst = h.expert_input.data() + h.chunk_offsets[static_cast<size_t>(c)] * d;
    hc_submit(w, c, kDispatchFwd, [this, &hc, dst] {
      hier_dispatch(hc.h, hc.w, nullptr);
      if (!hc.h.expert_input.empty()) std::memcpy(dst, hc.h.expert_input.data(), hc.h.expert_input.size() * sizeof(T));
    });
  }
}

// The chunk calls check the order MoeCompute follows (a misuse would desynchronise the ranks).
template <typename T>
void AllToAllDispatcher<T>::hc_wait_dispatch(DispatchHandle<T>& h, int64_t c) {
  Wire& w = wire(h);
  if (c < 0 || c >= static_cast<int64_t>(w.hier.size()) || w.hier[static_cast<size_t>(c)].stage != kDispatchFwd)
    throw Error(std::string("dispatcher: ") + kCall[kDispatchFwd] + "(" + std::to_string(c) + ") out of order");
  hc_finish(w, c);
}

template <typename T>
void AllToAllDispatcher<T>::hc_start_combine(DispatchHandle<T>& h, int64_t c, const T* expert_out, const T* weight) {
  Wire& w = wire(h);
  if (c < 0 || c >= static_cast<int64_t>(w.hier.size()) || w.hier[static_cast<size_t>(c)].stage != kDispatchFwd)
    throw Error(std::string("dispatcher: ") + kCall[kCombineFwd] + "(" + std::to_string(c) + ") out of order");
  hc_finish(w, c);  // its rows must have arrived before its outputs can exist
  HierChunk& hc = w.hier[static_cast<size_t>(c)];
  hc.weight.resize(hc.to_handle.size());
  for (size_t a = 0; a < hc.to_handle.size(); ++a) hc.weight[a] = weight[hc.to_handle[a]];
  const T* out = expert_out + h.chunk_offsets[static_cast<size_t>(c)] * h.d;
  hc_submit(w, c, kCombineFwd, [this, &hc, out] { hier_combine(hc.h, hc.w, out, hc.weight.data(), nullptr); });
}

template <typename T>
void AllToAllDispatcher<T>::hc_combine(DispatchHandle<T>& h, const T* expert_out, const T* weight, T* y) {
  Wire& w = wire(h);
  const int64_t n = static_cast<int64_t>(w.hier.size());
  for (int64_t c = 0; c < n; ++c)  // chunks the caller did not start (it may leave them all to combine)
    if (w.hier[static_cast<size_t>(c)].stage == kDispatchFwd) hc_start_combine(h, c, expert_out, weight);
  for (int64_t c = 0; c < n; ++c) {
    hc_finish(w, c);
    const Wire& cw = w.hier[static_cast<size_t>(c)].w;
    scatter_add_rows(y, cw.src_rows.data(), cw.src_token.data(), cw.src_node_off[static_cast<size_t>(nodes_)], h.d);
  }
  w.combined = true;
}

template <typename T>
void AllToAllDispatcher<T>::hc_combine_backward(DispatchHandle<T>& h, const T* dy, T* dweight, T* d_expert_out) {
  Wire& w = wire(h);
  if (!w.combined) throw Error("dispatcher: combine_backward before combine");
  std::fill(dweight, dweight + h.assignment_row.size(), T(0));
  w.dweight = dweight;
  const int64_t d = h.d;
  for (int64_t c = 0; c < static_cast<int64_t>(w.hier.size()); ++c) {
    HierChunk& hc = w.hier[static_cast<size_t>(c)];
    const int64_t S = hc.w.src_node_off[static_cast<size_t>(nodes_)];
    hc.w.src_rows.resize(static_cast<size_t>(S * d));
    gather_rows(hc.w.src_rows.data(), dy, hc.w.src_token.data(), S, d);
    hc.dweight.resize(hc.to_handle.size());
    T* dst = d_expert_out + h.chunk_offsets[static_cast<size_t>(c)] * d;
    hc_submit(w, c, kCombineBwd, [this, &hc, dst] { hier_combine_backward(hc.h, hc.w, nullptr, hc.dweight.data(), dst); });
  }
}

template <typename T>
void AllToAllDispatcher<T>::hc_wait_combine_backward(DispatchHandle<T>& h, int64_t c) {
  Wire& w = wire(h);
  if (c < 0 || c >= static_cast<int64_t>(w.hier.size()) || w.hier[static_cast<size_t>(c)].stage != kCombineBwd)
    throw Error(std::string("dispatcher: ") + kCall[kCombineBwd] + "(" + std::to_string(c) + ") out of order");
  HierChunk& hc = w.hier[static_cast<size_t>(c)];
  if (!hc.in_flight) return;  // waited already
  hc_finish(w, c);
  for (size_t a = 0; a < hc.to_handle.size(); ++a) w.dweight[hc.to_handle[a]] = hc.dweight[a];
}

template <typename T>
void AllToAllDispatcher<T>::hc_start_dispatch_backward(DispatchHandle<T>& h, int64_t c, const T* d_expert_in) {
  Wire& w = wire(h);
  if (c < 0 || c >= static_cast<int64_t>(w.hier.size()) || w.hier[static_cast<size_t>(c)].stage != kCombineBwd)
    throw Error(std::string("dispatcher: ") + kCall[kDispatchBwd] + "(" + std::to_string(c) + ") out of order");
  hc_wait_combine_backward(h, c);
  HierChunk& hc = w.hier[static_cast<size_t>(c)];
  const T* src = d_expert_in + h.chunk_offsets[static_cast<size_t>(c)] * h.d;
  hc_submit(w, c, kDispatchBwd, [this, &hc, src] { hier_dispatch_backward(hc.h, hc.w, src, nullptr); });
}

template <typename T>
void AllToAllDispatcher<T>::hc_dispatch_backward(DispatchHandle<T>& h, const T* d_expert_in, T* dx) {
  Wire& w = wire(h);
  const int64_t n = static_cast<int64_t>(w.hier.size());
  for (int64_t c = 0; c < n; ++c)
    if (w.hier[static_cast<size_t>(c)].stage == kCombineBwd) hc_start_dispatch_backward(h, c, d_expert_in);
  for (int64_t c = 0; c < n; ++c) {
    if (w.hier[static_cast<size_t>(c)].stage != kDispatchBwd) throw Error("dispatcher: dispatch_backward before combine_backward");
    hc_finish(w, c);
    const Wire& cw = w.hier[static_cast<size_t>(c)].w;
    scatter_add_rows(dx, cw.src_rows.data(), cw.src_token.data(), cw.src_node_off[static_cast<size_t>(nodes_)], h.d);
  }
}

// The members defined here, for the dispatcher's two element types.
#define MOE_HIER_CHUNKS_INSTANTIATE(T)                                                                          \
  template void AllToAllDispatcher<T>::hc_submit(Wire&, int64_t, A2APhase, std::function<void()>);             \
  template void AllToAllDispatcher<T>::hc_finish(Wire&, int64_t);                                              \
  template void AllToAllDispatcher<T>::hc_dispatch(const Assignments&, const T*, int64_t, DispatchHandle<T>&); \
  template void AllToAllDispatcher<T>::hc_wait_dispatch(DispatchHandle<T>&, int64_t);                          \
  template void AllToAllDispatcher<T>::hc_start_combine(DispatchHandle<T>&, int64_t, const T*, const T*);      \
  template void AllToAllDispatcher<T>::hc_combine(DispatchHandle<T>&, const T*, const T*, T*);                 \
  template void AllToAllDispatcher<T>::hc_combine_backward(DispatchHandle<T>&, const T*, T*, T*);              \
  template void AllToAllDispatcher<T>::hc_wait_combine_backward(DispatchHandle<T>&, int64_t);                  \
  template void AllToAllDispatcher<T>::hc_start_dispatch_backward(DispatchHandle<T>&, int64_t, const T*);      \
  template void AllToAllDispatcher<T>::hc_dispatch_backward(DispatchHandle<T>&, const T*, T*);
MOE_HIER_CHUNKS_INSTANTIATE(float)
MOE_HIER_CHUNKS_INSTANTIATE(double)
#undef MOE_HIER_CHUNKS_INSTANTIATE

}  // namespace moe::rt::comm
