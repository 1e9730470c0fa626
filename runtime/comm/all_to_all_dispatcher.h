#pragma once
// The expert-parallel token dispatcher (issue 4) behind runtime/moe's Dispatcher boundary:
//   dispatch: local permutation (plan_local_permutation) → exchange of per-expert counts inside the
//             EP group → all-to-all of the token rows → rows regrouped per local expert;
//   combine:  expert outputs regrouped per source rank → all-to-all back → weighted scatter-add.
// The backward calls run the same two exchanges in the opposite direction. Rank p of the EP group
// of size P holds global experts [p·E/P, (p+1)·E/P) (uniform placement). A rank with zero tokens,
// or an expert that receives none, is an ordinary case (zero counts are skipped on the wire).
// Per handle it records the all-to-all microseconds and bytes sent of each (phase, pass), for the
// `a2a` metrics record.
#include <array>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "communicator.h"
#include "token_dispatcher.h"

namespace moe::rt::comm {

struct A2AStat {
  double us = 0;       // wall time of the exchanges of this (phase, pass), counts included
  double exposed_us = 0;  // of it, time the caller waited (= us unless chunks overlap compute)
  // Of `us`, the counts exchange that opens a dispatch (dispatch fwd only). It is the first
  // collective after the routing and the local permutation, so it mostly measures waiting for the
  // slowest rank of the group (load imbalance), not bandwidth.
  double count_us = 0;
  int64_t bytes = 0;   // bytes this rank sent to other ranks
  int64_t intra_bytes = 0;  // of those, to ranks on this rank's node (set_peer_nodes)
  int64_t inter_bytes = 0;  // to ranks on other nodes
  // Routing metadata sent besides the rows (hierarchical only: the expert bitmasks with dispatch,
  // the gate weights with combine, their gradients with combine backward); not in `bytes`.
  int64_t meta_bytes = 0;
  // Dispatch fwd, in the totals: the rows this rank's experts received to compute (its load).
  int64_t rows = 0;
};

// Index into A2ATimes: dispatch/combine × fwd/bwd.
enum A2APhase { kDispatchFwd = 0, kCombineFwd = 1, kCombineBwd = 2, kDispatchBwd = 3 };
using A2ATimes = std::array<A2AStat, 4>;

template <typename T>
class AllToAllDispatcher final : public moe::rt::Dispatcher<T> {
 public:
  // `ep` is the EP group communicator; `num_experts` the layer's global expert count (divisible by
  // ep.size()).
  AllToAllDispatcher(Communicator& ep, int64_t num_experts);

  int64_t first_expert() const override { return first_; }
  int64_t local_experts() const override { return local_; }
  void dispatch(const Assignments& assignments, const T* x, int64_t d, DispatchHandle<T>& handle) override;
  void combine(DispatchHandle<T>& handle, const T* expert_out, const T* weight, T* y) override;
  void combine_backward(DispatchHandle<T>& handle, const T* dy, T* dweight, T* d_expert_out) override;
  void dispatch_backward(DispatchHandle<T>& handle, const T* d_expert_in, T* dx) override;

  // The a2a figures of the last forward/backward with this handle.
  const A2ATimes& stats(const DispatchHandle<T>& handle) const;
  // The figures summed over every handle since the last call (a training step's a2a records).
  A2ATimes take_totals();
  // The rows this rank sent to each expert slot (its own included) by dispatch since the last call
  // (a step's, for the trace simulator: docs/placement.md), [num_experts].
  std::vector<int64_t> take_slot_rows();
  // Node of each EP peer (by position in the group), for the intra/inter split of the bytes;
  // without it every off-rank byte counts as intra-node.
  void set_peer_nodes(std::vector<int64_t> node_of_peer) { peer_node_ = std::move(node_of_peer); }
  // Hierarchical all-to-all (parallel.hierarchical_a2a, Tutel 2DH / DeepEP RDMA→NVLink forwarding)
  // with token deduplication: dispatch sends each token ONCE to every node that holds any of its
  // kept experts — stage 1 across nodes (`inter`: to the EP peer with this rank's local index on
  // that node, the "forwarder"), with a bitmask of the node's experts it goes to — then stage 2
  // inside the destination node (`intra`): the forwarder fans the row out, one copy per (token,
  // expert), to the ranks holding those experts. Combine reverses it: the experts' outputs go back
  // to the forwarder (intra), which sums them weighted (the gate weights reach it in a small
  // exchange at combine time) and sends ONE row per (token, node) back across nodes. The backward
  // calls mirror this (dy crosses once per (token, node) and fans out; the expert-input gradients
  // are summed at the forwarder). Expert inputs and gate-weight gradients are bitwise those of the
  // flat exchange (with token-major assignments, as token choice makes them, even in the same row
  // order; expert choice's rows of one source and expert come in token order instead of selection
  // order); y and dx differ only by the order of the additions (partial sums per node).
  // Needs set_peer_nodes first and node-major EP groups with the same number of members on every
  // node. The masks have ⌈G/64⌉ words per token for G experts per node.
  void set_hierarchical(Communicator& intra, Communicator& inter);
  // Overlap (parallel.overlap_chunks = n > 1): every (peer, local expert) block of rows is split in
  // n near-equal parts; chunk c's exchange runs on the communicator's comm thread while the caller
  // computes the experts of chunk c−1 (token_dispatcher.h's chunk calls). y, dx and dweight are
  // bitwise those of one chunk (rows return to the same local rows, summed in the same order).
  // With the hierarchical exchange the chunks are token ranges of each source rank instead (chunk c:
  // tokens [c·T/n, (c+1)·T/n)), so deduplication per (token, node) and the bytes are unchanged; each
  // chunk's two stages run as one job on the EP communicator's comm thread
  // (all_to_all_hier_chunks.cpp).
  void set_overlap_chunks(int64_t chunks);
  void wait_dispatch_chunk(DispatchHandle<T>& handle, int64_t chunk) override;
  void start_combine_chunk(DispatchHandle<T>& handle, int64_t chunk, const T* expert_out, const T* weight) override;
  void wait_combine_backward_chunk(DispatchHandle<T>& handle, int64_t chunk) override;
  void start_dispatch_backward_chunk(DispatchHandle<T>& handle, int64_t chunk, const T* d_expert_in) override;

 private:
  // dispatch() without the load accounting (the flat, hierarchical and chunked paths).
  void dispatch_rows(const Assignments& assignments, const T* x, int64_t d, DispatchHandle<T>& handle);
  struct HierChunk;
  // What one handle needs beyond DispatchHandle: the wire layout and the returned rows.
  struct Wire {
    std::vector<int64_t> send_rows;       // [P] rows this rank sends to each peer
    std::vector<int64_t> recv_rows;       // [P] rows it receives from each peer
    std::vector<int64_t> recv_expert;     // [P × L] rows from peer p for local expert i
    std::vector<int64_t> recv_sequence;   // [P × L × b] of those, from each of p's b sequences (deterministic arithmetic)
    std::vector<int64_t> matrix;          // [P × (P+N)] per member s: rows to each peer q, distinct tokens to each node n (hierarchical only)
    std::vector<T> returned;              // [R × d] expert outputs back in local-row order
    A2ATimes times{};
    // Overlap: per chunk, rows of each local-row block e (= peer·L + i) and of each received block.
    std::vector<std::vector<int64_t>> chunk_send_block, chunk_recv_block;
    std::vector<CommHandle> pending;
    // Hierarchical with deduplication. Source side (this rank's tokens), per destination node n:
    std::vector<int64_t> src_node_off;   // [N+1] distinct tokens bound for node n (ascending)
    std::vector<int32_t> src_token;      // [S] those tokens
    std::vector<uint64_t> src_mask;      // [S × W] which of node n's experts each goes to
    std::vector<int64_t> src_copy_off;   // [N+1] copies (token, expert) per node
    std::vector<int32_t> src_copy_row;   // [copies] in (node, token, expert) order: the local row
    // Forwarder side (rows of the same-index peers of every node m, for this node's experts):
    std::vector<int64_t> fw_off;         // [N+1] distinct tokens received from node m
    std::vector<uint64_t> fw_mask;       // [F × W]
    std::vector<int64_t> fw_copy_off;    // [N+1] copies implied by node m's masks
    std::vector<int32_t> copy_row;       // [C] copy in intra-send layout → its received token row
    std::vector<int64_t> copy_pos;       // [C] copy in (node m, token, expert) order → intra position
    std::vector<int64_t> intra_send;     // [L] copies the forwarder sends each local peer
    std::vector<int64_t> intra_block;    // [L × N × local] of them per (local rank, source node, its expert)
    std::vector<T> fw_rows, fw_out, fw_weight, fw_acc, src_rows, meta_send, meta_recv;
    bool combined = false;
    // Hierarchical with overlap: one sub-handle and sub-wire per token-range chunk.
    std::vector<HierChunk> hier;
    bool chunk = false;   // a chunk's own wire: filled on the comm thread, added to the totals by the caller
    T* dweight = nullptr;  // where wait_combine_backward_chunk puts the chunk's gate-weight gradients
  };
  // One token-range chunk of the hierarchical exchange with overlap: its assignments (global token
  // ids; to_handle maps them to the handle's assignments), its own local permutation and wire.
  struct HierChunk {
    Assignments asg;
    std::vector<int32_t> to_handle;
    DispatchHandle<T> h;
    Wire w;
    std::vector<T> weight, dweight;
    CommHandle pending;
    int stage = 0;  // the last phase started (A2APhase); in_flight until the caller waited for it
    bool in_flight = false;
  };
  Wire& wire(const DispatchHandle<T>& h);
  // Overlap helpers: start chunk c's block exchange on the comm thread, and account the wait of a
  // pending one.
  void start_chunk(Wire& w, int64_t c, const T* send, const Communicator::Blocks& send_blocks, T* recv,
                   const Communicator::Blocks& recv_blocks, A2APhase phase);
  void finish_chunk(Wire& w, int64_t c, A2APhase phase);
  // The flat exchange's blocks, in elements: block (p, i) of this rank's local rows = the rows for
  // global expert p·L + i; block (p, i) of the expert rows = local expert i's rows from peer p
  // (expert-major, so the experts read them in place: no regrouping copy on either side).
  // With chunk ≥ 0 (overlap), only chunk `chunk`'s part of every block, at its chunk-major place.
  Communicator::Blocks local_blocks(const DispatchHandle<T>& h, const Wire& w, int64_t chunk = -1) const;
  Communicator::Blocks expert_blocks(const DispatchHandle<T>& h, const Wire& w, int64_t chunk = -1) const;
  // Deterministic arithmetic (handle.segment_tokens > 0): this rank's rows per (expert, local
  // sequence) to the experts' ranks (into w.recv_sequence; a collective, run right after the
  // counts exchange), then every expert row's sequence label from them (local, once the row
  // layout is planned). Sequences per rank: ⌈tokens / segment_tokens⌉, equal on every rank.
  int64_t sequences(const DispatchHandle<T>& h) const;
  std::vector<int64_t> sequence_counts(const DispatchHandle<T>& h) const;
  void exchange_sequence_counts(const DispatchHandle<T>& h, Wire& w);
  void label_expert_rows(DispatchHandle<T>& h, const Wire& w) const;
  // Adds the off-rank (intra/inter) bytes of the send side's blocks to the phase's figures.
  void count_bytes(Wire& w, A2APhase phase, const Communicator::Blocks& send_blocks);
  // One all-to-all of row blocks.
  void exchange(Wire& w, const T* send, const Communicator::Blocks& send_blocks, T* recv,
                const Communicator::Blocks& recv_blocks, A2APhase phase);
  // Hierarchical (deduplicating) versions of the four calls.
  void plan_sources(const DispatchHandle<T>& h, Wire& w) const;
  void plan_forwarder(Wire& w) const;
  void hier_dispatch(DispatchHandle<T>& h, Wire& w, const T* x);
  void hier_combine(DispatchHandle<T>& h, Wire& w, const T* expert_out, const T* weight, T* y);
  void hier_combine_backward(DispatchHandle<T>& h, Wire& w, const T* dy, T* dweight, T* d_expert_out);
  void hier_dispatch_backward(DispatchHandle<T>& h, Wire& w, const T* d_expert_in, T* dx);
  // Hierarchical with overlap chunks (all_to_all_hier_chunks.cpp): the four calls, the chunk calls,
  // submitting a chunk's job and waiting for it (accounting its figures on the caller's thread).
  void hc_dispatch(const Assignments& asg, const T* x, int64_t d, DispatchHandle<T>& h);
  void hc_combine(DispatchHandle<T>& h, const T* expert_out, const T* weight, T* y);
  void hc_combine_backward(DispatchHandle<T>& h, const T* dy, T* dweight, T* d_expert_out);
  void hc_dispatch_backward(DispatchHandle<T>& h, const T* d_expert_in, T* dx);
  void hc_wait_dispatch(DispatchHandle<T>& h, int64_t c);
  void hc_start_combine(DispatchHandle<T>& h, int64_t c, const T* expert_out, const T* weight);
  void hc_wait_combine_backward(DispatchHandle<T>& h, int64_t c);
  void hc_start_dispatch_backward(DispatchHandle<T>& h, int64_t c, const T* d_expert_in);
  void hc_submit(Wire& w, int64_t c, A2APhase phase, std::function<void()> job);
  void hc_finish(Wire& w, int64_t c);
  // The intra stage as blocks. Expert rank's side: from local forwarder f, block (m, i) = EP member
  // m·L + f's rows for local expert i, at their expert-major place (as the flat exchange puts
  // them). Forwarder's side: to local rank l, block (m, i) = the copies from node m for l's local
  // expert i, contiguous in the intra-send layout (intra_block).
  Communicator::Blocks intra_expert_blocks(const DispatchHandle<T>& h, const Wire& w) const;
  Communicator::Blocks intra_forwarder_blocks(const Wire& w, int64_t d) const;
  // Adds one exchange's figures to the handle's and the running totals.
  void account(Wire& w, A2APhase phase, double us, int64_t intra, int64_t inter, int64_t meta);
  // rows(s, q) of the all-gathered count matrix; dedup(s, n): distinct tokens s sends node n.
  int64_t rows_between(const Wire& w, int64_t s, int64_t q) const;
  int64_t dedup_between(const Wire& w, int64_t s, int64_t n) const;
  int64_t mask_words() const { return (per_node_ * local_ + 63) / 64; }

  Communicator& ep_;
  int64_t num_experts_, local_, first_;
  std::unordered_map<const void*, Wire> wires_;
  A2ATimes totals_{};
  std::vector<int64_t> slot_rows_;
  std::vector<int64_t> peer_node_;
  Communicator* intra_ = nullptr;  // hierarchical stages (null: flat)
  Communicator* inter_ = nullptr;
  int64_t nodes_ = 1, per_node_ = 1;  // EP members: index = node · per_node + local
  int64_t chunks_ = 1;
  std::vector<T> stage_send_, stage_recv_;  // hierarchical staging
  std::vector<T> rows_, row_dweight_;
};

}  // namespace moe::rt::comm
