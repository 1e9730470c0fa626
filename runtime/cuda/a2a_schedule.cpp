// Plans the grouped ncclSend/ncclRecv of an all-to-all with per-peer counts (see a2a_schedule.h).
#include "a2a_schedule.h"

#include <string>

#include "error.h"

namespace moe::rt::cuda {

int64_t A2aSchedule::sends() const {
  int64_t n = 0;
  for (const auto& t : transfers) n += t.send_bytes > 0;
  return n;
}

int64_t A2aSchedule::recvs() const {
  int64_t n = 0;
  for (const auto& t : transfers) n += t.recv_bytes > 0;
  return n;
}

A2aSchedule plan_all_to_all(int rank, int size, const std::vector<int64_t>& send_counts,
                            const std::vector<int64_t>& recv_counts, size_t elem_bytes) {
  const std::string who = "all_to_all_v on rank " + std::to_string(rank);
  if (size < 1 || rank < 0 || rank >= size) throw Error(who + ": rank outside a group of " + std::to_string(size));
  if (static_cast<int>(send_counts.size()) != size || static_cast<int>(recv_counts.size()) != size)
    throw Error(who + ": " + std::to_string(send_counts.size()) + " send and " + std::to_string(recv_counts.size()) +
                " receive counts for a group of " + std::to_string(size));
  if (elem_bytes == 0) throw Error(who + ": element size 0");
  const auto eb = static_cast<int64_t>(elem_bytes);
  std::vector<int64_t> send_off(size + 1, 0), recv_off(size + 1, 0);
  for (int p = 0; p < size; ++p) {
    if (send_counts[p] < 0 || recv_counts[p] < 0)
      throw Error(who + ": negative count for peer " + std::to_string(p));
    send_off[p + 1] = send_off[p] + send_counts[p] * eb;
    recv_off[p + 1] = recv_off[p] + recv_counts[p] * eb;
  }
  if (send_counts[rank] != recv_counts[rank])
    throw Error(who + ": sends " + std::to_string(send_counts[rank]) + " elements to itself but expects " +
                std::to_string(recv_counts[rank]));
  A2aSchedule s;
  s.send_bytes = send_off[size];
  s.recv_bytes = recv_off[size];
  s.self_send_offset = send_off[rank];
  s.self_recv_offset = recv_off[rank];
  s.self_bytes = send_counts[rank] * eb;
  for (int i = 1; i < size; ++i) {
    // Send to rank+i while receiving from rank−i: in step i every rank has one partner each way.
    const int to = (rank + i) % size, from = (rank - i + size) % size;
    A2aTransfer send{to, send_off[to], send_counts[to] * eb, 0, 0};
    A2aTransfer recv{from, 0, 0, recv_off[from], recv_counts[from] * eb};
    if (to == from) {
      send.recv_offset = recv.recv_offset;
      send.recv_bytes = recv.recv_bytes;
      if (send.send_bytes > 0 || send.recv_bytes > 0) s.transfers.push_back(send);
      continue;
    }
    if (send.send_bytes > 0) s.transfers.push_back(send);
    if (recv.recv_bytes > 0) s.transfers.push_back(recv);
  }
  return s;
}

}  // namespace moe::rt::cuda
