// The expert-parallel token exchange on the GPU (see cuda_a2a_dispatcher.h).
#include "cuda_a2a_dispatcher.h"

#include <cuda_bf16.h>

#include <string>

#include "cuda_check.h"
#include "error.h"
#include "kernels.h"

namespace moe::rt::cuda {

template <typename T>
CudaA2aDispatcher<T>::CudaA2aDispatcher(NcclCommunicator& ep, int64_t num_experts, cudaStream_t compute)
    : ep_(ep), compute_(compute), num_experts_(num_experts) {
  if (num_experts < 1 || num_experts % ep.size() != 0)
    throw Error("parallel.ep: " + std::to_string(ep.size()) + " does not divide model.moe.num_experts (" +
                std::to_string(num_experts) + ")");
  local_ = num_experts / ep.size();
  first_ = ep.rank() * local_;
}

template <typename T>
const EpExchangePlan& CudaA2aDispatcher<T>::plan(const std::vector<int64_t>& local_counts) {
  const int P = ep_.size();
  if (static_cast<int64_t>(local_counts.size()) != num_experts_)
    throw Error("expert-parallel exchange (rank " + std::to_string(ep_.rank()) + "): " +
                std::to_string(local_counts.size()) + " counts for " + std::to_string(num_experts_) + " experts");
  // Counts: global expert e = q·L + i goes to peer q, so the [E] vector is already peer-major.
  if (counts_send_.size() < static_cast<size_t>(num_experts_)) counts_send_.resize(num_experts_);
  if (counts_recv_.size() < static_cast<size_t>(num_experts_)) counts_recv_.resize(num_experts_);
  MOE_CUDA_CHECK(cudaMemcpy(counts_send_.data(), local_counts.data(), num_experts_ * 8, cudaMemcpyHostToDevice));
  const std::vector<int64_t> per_peer(P, local_);
  ep_.all_to_all_v(counts_send_.data(), per_peer, counts_recv_.data(), per_peer, sizeof(int64_t));
  std::vector<int64_t> received(static_cast<size_t>(num_experts_));
  MOE_CUDA_CHECK(cudaMemcpy(received.data(), counts_recv_.data(), num_experts_ * 8, cudaMemcpyDeviceToHost));
  plan_ = plan_ep_exchange(ep_.rank(), P, num_experts_, local_counts, received);
  const size_t R = plan_.expert_row_source.size();
  if (expert_row_source_.size() < R) expert_row_source_.resize(R), peer_row_target_.resize(R);
  if (R > 0) {
    MOE_CUDA_CHECK(cudaMemcpy(expert_row_source_.data(), plan_.expert_row_source.data(), R * 4, cudaMemcpyHostToDevice));
    MOE_CUDA_CHECK(cudaMemcpy(peer_row_target_.data(), plan_.peer_row_target.data(), R * 4, cudaMemcpyHostToDevice));
  }
  return plan_;
}

template <typename T>
void CudaA2aDispatcher<T>::to_experts(const T* local, T* expert_rows, int64_t d) {
  const int64_t R = plan_.received_rows();
  if (staging_.size() < static_cast<size_t>(R * d)) staging_.resize(static_cast<size_t>(R * d));
  // The communicator queues on its own stream: the rows must be complete first.
  MOE_CUDA_CHECK(cudaStreamSynchronize(compute_));
  std::vector<int64_t> send(plan_.send_rows), recv(plan_.recv_rows);
  for (auto& v : send) v *= d;
  for (auto& v : recv) v *= d;
  ep_.all_to_all_v(local, send, staging_.data(), recv, sizeof(T));  // returns when the exchange is done
  gather_rows(expert_rows, staging_.data(), expert_row_source_.data(), R, d, compute_);
}

template <typename T>
void CudaA2aDispatcher<T>::to_local(const T* expert_rows, T* local, int64_t d) {
  const int64_t R = plan_.received_rows();
  if (staging_.size() < static_cast<size_t>(R * d)) staging_.resize(static_cast<size_t>(R * d));
  gather_rows(staging_.data(), expert_rows, peer_row_target_.data(), R, d, compute_);
  MOE_CUDA_CHECK(cudaStreamSynchronize(compute_));
  std::vector<int64_t> send(plan_.recv_rows), recv(plan_.send_rows);
  for (auto& v : send) v *= d;
  for (auto& v : recv) v *= d;
  ep_.all_to_all_v(staging_.data(), send, local, recv, sizeof(T));
}

template class CudaA2aDispatcher<float>;
template class CudaA2aDispatcher<__nv_bfloat16>;

}  // namespace moe::rt::cuda
