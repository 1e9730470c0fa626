#pragma once
// The expert-parallel row exchange of the CUDA dispatcher (cuda_a2a_dispatcher.h), planned on the
// host — plain C++, tested here between simulated ranks. Same semantics as the CPU
// AllToAllDispatcher (runtime/comm/all_to_all_dispatcher.h), flat exchange:
//   rank p of P holds global experts [p·L, (p+1)·L), L = E / P (uniform placement);
//   a rank's local rows are sorted by global expert, so the rows for peer q are one block;
//   the counts all-to-all gives recv_expert[q·L + i] = rows peer q sends for my local expert i;
//   received rows arrive peer-major (peer q's block, its experts inside) and are regrouped
//   expert-major (local expert i, peers in rank order inside) for the expert GEMMs; combine and
//   the backward calls run the inverse permutation and the reverse exchange.
#include <cstdint>
#include <vector>

namespace moe::rt::cuda {

struct EpExchangePlan {
  int rank = 0, size = 1;
  int64_t local_experts = 0;                 // L
  std::vector<int64_t> send_rows, recv_rows;  // [P] rows to / from each peer
  std::vector<int64_t> recv_expert;           // [P × L]
  std::vector<int64_t> expert_offsets;        // [L + 1] expert-major rows of each local expert
  // expert_row_source[r]: the peer-major received row that expert-major row r is (a gather index:
  // expert_major[r] = peer_major[expert_row_source[r]]); peer_row_target is its inverse.
  std::vector<int32_t> expert_row_source, peer_row_target;
  int64_t local_rows() const;     // rows this rank sends in all (Σ send_rows)
  int64_t received_rows() const;  // rows its experts compute on (Σ recv_rows)
};

// local_counts [E]: this rank's kept rows per global expert; received_counts [P × L] from the
// counts exchange. Throws moe::Error naming the rank for E not divisible by P, negative counts or
// sizes that do not match.
EpExchangePlan plan_ep_exchange(int rank, int size, int64_t num_experts, const std::vector<int64_t>& local_counts,
                                const std::vector<int64_t>& received_counts);

}  // namespace moe::rt::cuda
