// The expert-parallel row exchange, planned on the host (see ep_exchange_plan.h).
#include "ep_exchange_plan.h"

#include <limits>
#include <string>

#include "error.h"

namespace moe::rt::cuda {

int64_t EpExchangePlan::local_rows() const {
  int64_t n = 0;
  for (int64_t v : send_rows) n += v;
  return n;
}

int64_t EpExchangePlan::received_rows() const {
  int64_t n = 0;
  for (int64_t v : recv_rows) n += v;
  return n;
}

EpExchangePlan plan_ep_exchange(int rank, int size, int64_t num_experts, const std::vector<int64_t>& local_counts,
                                const std::vector<int64_t>& received_counts) {
  const std::string who = "expert-parallel exchange (rank " + std::to_string(rank) + " of " + std::to_string(size) + ")";
  if (size < 1 || rank < 0 || rank >= size) throw Error(who + ": rank out of range");
  if (num_experts < 1 || num_experts % size != 0)
    throw Error(who + ": " + std::to_string(num_experts) + " experts do not divide over " + std::to_string(size) +
                " ranks");
  const int64_t P = size, L = num_experts / size;
  if (static_cast<int64_t>(local_counts.size()) != num_experts)
    throw Error(who + ": " + std::to_string(local_counts.size()) + " local counts, expected " +
                std::to_string(num_experts));
  if (static_cast<int64_t>(received_counts.size()) != P * L)
    throw Error(who + ": " + std::to_string(received_counts.size()) + " received counts, expected " +
                std::to_string(P * L));
  for (int64_t v : local_counts)
    if (v < 0) throw Error(who + ": negative local count");
  for (int64_t v : received_counts)
    if (v < 0) throw Error(who + ": negative count received");

  EpExchangePlan p;
  p.rank = rank, p.size = size, p.local_experts = L;
  p.send_rows.assign(P, 0), p.recv_rows.assign(P, 0);
  p.recv_expert = received_counts;
  for (int64_t q = 0; q < P; ++q)
    for (int64_t i = 0; i < L; ++i) {
      p.send_rows[q] += local_counts[q * L + i];
      p.recv_rows[q] += received_counts[q * L + i];
    }
  p.expert_offsets.assign(L + 1, 0);
  for (int64_t i = 0; i < L; ++i) {
    int64_t n = 0;
    for (int64_t q = 0; q < P; ++q) n += received_counts[q * L + i];
    p.expert_offsets[i + 1] = p.expert_offsets[i] + n;
  }
  const int64_t R = p.expert_offsets[L];
  if (R > std::numeric_limits<int32_t>::max()) throw Error(who + ": " + std::to_string(R) + " rows exceed int32 indices");
  p.expert_row_source.assign(R, 0), p.peer_row_target.assign(R, 0);
  // Peer-major start of (q, i) and expert-major start of (i, q).
  std::vector<int64_t> expert_cursor(p.expert_offsets.begin(), p.expert_offsets.end() - 1);
  int64_t peer_row = 0;
  for (int64_t q = 0; q < P; ++q)
    for (int64_t i = 0; i < L; ++i)
      for (int64_t r = 0; r < received_counts[q * L + i]; ++r, ++peer_row) {
        const int64_t dst = expert_cursor[i]++;
        p.expert_row_source[dst] = static_cast<int32_t>(peer_row);
        p.peer_row_target[peer_row] = static_cast<int32_t>(dst);
      }
  return p;
}

}  // namespace moe::rt::cuda
