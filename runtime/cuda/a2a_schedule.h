#pragma once
// The NCCL all-to-all with per-peer counts, planned on the host: which ncclSend/ncclRecv pairs go
// into one ncclGroupStart/End, in what order, at which byte offsets. Plain C++: tested here.
//   - peers are visited in ring order from this rank (rank+1, rank+2, …) so that at every position of
//     the group the ranks talk to different peers, not all to rank 0 first;
//   - a zero count posts nothing for that direction (NCCL needs no zero-byte messages);
//   - the rank's own block is a device-to-device copy, not a send to itself.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moe::rt::cuda {

struct A2aTransfer {
  int peer = 0;
  int64_t send_offset = 0, send_bytes = 0;  // bytes into the send buffer; 0 bytes: no ncclSend
  int64_t recv_offset = 0, recv_bytes = 0;  // bytes into the receive buffer; 0 bytes: no ncclRecv
};

struct A2aSchedule {
  std::vector<A2aTransfer> transfers;  // in posting order; peers with nothing either way are left out
  int64_t self_send_offset = 0, self_recv_offset = 0, self_bytes = 0;  // the local copy
  int64_t send_bytes = 0, recv_bytes = 0;  // totals, the self block included
  int64_t sends() const;                   // ncclSend calls posted
  int64_t recvs() const;
};

// counts are elements of elem_bytes, one per peer; throws moe::Error naming the rank and peer when
// the sizes differ from `size`, a count is negative, or send_counts[rank] != recv_counts[rank].
A2aSchedule plan_all_to_all(int rank, int size, const std::vector<int64_t>& send_counts,
                            const std::vector<int64_t>& recv_counts, size_t elem_bytes);

}  // namespace moe::rt::cuda
