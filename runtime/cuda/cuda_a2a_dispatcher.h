#pragma once
// The expert-parallel token exchange on the GPU over NCCL: the CUDA twin of the CPU
// AllToAllDispatcher's flat exchange (runtime/comm/all_to_all_dispatcher.h), in two moves:
//   to_experts(): this rank's local rows (kept assignments sorted by global expert, as
//                 CudaMoeLayer's dropless permutation leaves them) → the rows its local experts
//                 compute on, expert-major (dispatch forward; combine backward for the gradients);
//   to_local():   the reverse (combine forward for the expert outputs; dispatch backward).
// plan() first exchanges the per-expert counts (one small all-to-all) and plans the rows on the
// host (ep_exchange_plan.h); every move is one NcclCommunicator::all_to_all_v (grouped
// ncclSend/ncclRecv, a2a_schedule.h) plus a gather on the compute stream. CUDA-event times of
// each exchange come from the communicator (NcclCommunicator::take_a2a_timings()).
// Not yet wired into CudaMoeLayer or the training path (one GPU per process, one rank for now).
#include <cstdint>
#include <vector>

#include "device_allocator.h"
#include "ep_exchange_plan.h"
#include "nccl_communicator.h"

namespace moe::rt::cuda {

template <typename T>
class CudaA2aDispatcher {
 public:
  // `ep`: the EP group; `compute`: the stream the rows are produced and consumed on.
  CudaA2aDispatcher(NcclCommunicator& ep, int64_t num_experts, cudaStream_t compute);

  int64_t first_expert() const { return first_; }
  int64_t local_experts() const { return local_; }

  // local_counts [E] (host): this rank's kept rows per global expert. Exchanges the counts.
  const EpExchangePlan& plan(const std::vector<int64_t>& local_counts);
  const EpExchangePlan& current() const { return plan_; }

  // local [local_rows × d] → expert_rows [received_rows × d] (expert-major).
  void to_experts(const T* local, T* expert_rows, int64_t d);
  // expert_rows [received_rows × d] → local [local_rows × d].
  void to_local(const T* expert_rows, T* local, int64_t d);

 private:
  NcclCommunicator& ep_;
  cudaStream_t compute_;
  int64_t num_experts_, first_, local_;
  EpExchangePlan plan_;
  DeviceBuffer<int64_t> counts_send_, counts_recv_;
  DeviceBuffer<int32_t> expert_row_source_, peer_row_target_;
  DeviceBuffer<T> staging_;  // peer-major received rows
};

}  // namespace moe::rt::cuda
