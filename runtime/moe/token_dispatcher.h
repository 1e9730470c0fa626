#pragma once
// The token dispatcher boundary (DeepEP style): dispatch() moves the kept assignments' token rows
// to the experts and fills a handle; combine() brings the expert outputs back and sums them with
// the gate weights, using the same handle; the two backward calls reverse them. The handle also
// carries the statistics (per-expert counts). The router and the experts never see how rows
// travel: LocalDispatcher permutes in memory; the all-to-all dispatcher of Runtime II (Gloo) and
// the CUDA one (NCCL) implement the same four calls.
//
// Layouts. "Local rows": this process's kept assignments in expert-major order (rows of global
// expert e at [offsets[e], offsets[e+1])). "Expert rows": what this process's experts compute on,
// rows of local expert i at [expert_offsets[i], expert_offsets[i+1]). For LocalDispatcher the two
// are the same buffer order; a communicating dispatcher exchanges local rows for expert rows.
#include <cstdint>
#include <vector>

#include "token_selection.h"

namespace moe::rt {

template <typename T>
struct DispatchHandle {
  int64_t d = 0;           // row width
  int64_t num_tokens = 0;  // rows of x / y
  // The local permutation (routing_ops: histogram → scan → sort_by_expert).
  std::vector<int64_t> counts;          // [E] kept assignments per global expert
  std::vector<int64_t> offsets;         // [E+1]
  std::vector<int32_t> row_assignment;  // [R] local row → assignment
  std::vector<int32_t> row_token;       // [R] local row → token
  std::vector<int32_t> assignment_row;  // [A] assignment → local row, -1 if dropped
  std::vector<T> row_weight;            // [R] gate weight of each local row (set by combine)
  // The experts' side: rows per local expert and the rows themselves.
  std::vector<int64_t> expert_counts;   // [local experts]
  std::vector<int64_t> expert_offsets;  // [local experts + 1]
  std::vector<T> expert_input;          // [expert rows × d]
  // Expert outputs back in local-row order, kept by combine for combine_backward. LocalDispatcher
  // points at the caller's expert output (which must outlive the backward pass); a communicating
  // dispatcher points at its own receive buffer.
  const T* returned_rows = nullptr;
  std::vector<int64_t> scratch;  // sort cursor
  // Overlap (Runtime II, parallel.overlap_chunks = n > 1): the expert rows are chunk-major — chunk c
  // holds rows [chunk_offsets[c], chunk_offsets[c+1]), local expert i's at
  // [chunk_offsets[c] + chunk_expert_offsets[c][i], … [i+1]) — so the experts of chunk c can run
  // while chunk c+1 is still in flight. Empty: one chunk, expert_offsets as above.
  std::vector<int64_t> chunk_offsets;
  std::vector<std::vector<int64_t>> chunk_expert_offsets;
  // Deterministic arithmetic (training): tokens per sequence, set by the caller before dispatch
  // (0: off). dispatch() then labels every expert row with the sequence its token came from
  // (a number unique per source rank and sequence), so the experts' weight gradients can be
  // summed per (expert, sequence) whatever the layout. A source's rows of one expert arrive in
  // token order, so a sequence's rows keep their order too.
  int64_t segment_tokens = 0;
  std::vector<int32_t> expert_row_sequence;  // [expert rows]

  // Optional [local rows]: the order in which combine and dispatch_backward add the local rows into
  // y and dx (a placement: logical expert order, so a token's outputs are summed as one process
  // sums them). Empty: row order.
  std::vector<int32_t> add_order;

  int64_t local_rows() const { return static_cast<int64_t>(row_token.size()); }
  int64_t expert_rows() const { return expert_offsets.empty() ? 0 : expert_offsets.back(); }
};

template <typename T>
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  // The experts this process computes: global experts [first_expert, first_expert + local_experts).
  virtual int64_t first_expert() const = 0;
  virtual int64_t local_experts() const = 0;
  // The logical expert held at `slot` (the dispatcher's expert index space): itself, unless a
  // placement puts experts elsewhere or replicates them (placed_dispatcher.h).
  virtual int64_t logical_expert(int64_t slot) const { return slot; }
  // Fills the handle (reused across calls to keep its buffers) from the assignments and x [T×d].
  virtual void dispatch(const Assignments& assignments, const T* x, int64_t d, DispatchHandle<T>& handle) = 0;
  // y[T×d] += Σ_a weight[a] · output row of a; expert_out is in expert-row layout.
  virtual void combine(DispatchHandle<T>& handle, const T* expert_out, const T* weight, T* y) = 0;
  // From dy [T×d]: dweight[a] = dy[token] · output row of a (0 if dropped), and d_expert_out
  // (expert-row layout) = weight · dy[token].
  virtual void combine_backward(DispatchHandle<T>& handle, const T* dy, T* dweight, T* d_expert_out) = 0;
  // dx[T×d] += the expert inputs' gradient (expert-row layout) returned to its tokens.
  virtual void dispatch_backward(DispatchHandle<T>& handle, const T* d_expert_in, T* dx) = 0;

  // Overlap (optional; handle.chunk_offsets non-empty after dispatch): dispatch() and
  // combine_backward() only start the chunks' exchanges; the caller then, per chunk c in order,
  // waits for its rows, runs the experts on them and starts sending their results back; combine()
  // and dispatch_backward() wait for what is still in flight and finish as usual. start_combine_chunk
  // gets the whole expert-row output and the gate weights combine() will get (a hierarchical
  // exchange sums a node's weighted outputs at its forwarder); both must stay valid until combine().
  virtual void wait_dispatch_chunk(DispatchHandle<T>& /*handle*/, int64_t /*chunk*/) {}
  virtual void start_combine_chunk(DispatchHandle<T>& /*handle*/, int64_t /*chunk*/, const T* /*expert_out*/,
                                   const T* /*weight*/) {}
  virtual void wait_combine_backward_chunk(DispatchHandle<T>& /*handle*/, int64_t /*chunk*/) {}
  virtual void start_dispatch_backward_chunk(DispatchHandle<T>& /*handle*/, int64_t /*chunk*/, const T* /*d_expert_in*/) {}
};

}  // namespace moe::rt
