#pragma once
// The CUDA backend's Communicator (runtime/comm/communicator.h) over NCCL. Every buffer passed to
// it is DEVICE memory. Collectives are queued on the communicator's stream and waited for before
// the call returns (the interface is synchronous; the *_async variants of the base class run them
// on its comm thread). all_to_all_v posts one ncclGroupStart/End of ncclSend/ncclRecv pairs in the
// order a2a_schedule.h plans, copies the rank's own block device-to-device, and records CUDA
// events around the group: a2a_timings() feeds the `a2a` metrics records.
// Bootstrap: rank 0 of a group creates the ncclUniqueId and puts it in the rendezvous store
// (runtime/comm/store_client.h) under "nccl/<key>"; the other members get it from there.
// send/recv match by order between a pair of ranks (NCCL has no tags); the tag is ignored.
#include <nccl.h>

#include <memory>
#include <string>
#include <vector>

#include "communicator.h"
#include "store_client.h"
#include "stream.h"

namespace moe::rt::cuda {

struct A2aTiming {
  double ms = 0;                          // CUDA-event time of the NCCL group (self copy included)
  int64_t send_bytes = 0, recv_bytes = 0;
};

class NcclCommunicator final : public comm::Communicator {
 public:
  // The world communicator: rank/size of the job, `device` the local GPU (MOE_LOCAL_RANK).
  static std::unique_ptr<NcclCommunicator> create_world(std::shared_ptr<comm::StoreClient> store, int rank, int size,
                                                        int device);
  ~NcclCommunicator() override;

  cudaStream_t stream() const { return stream_->get(); }
  cudaStream_t overlap_stream() const { return overlap_->get(); }  // for overlapped expert chunks
  std::vector<A2aTiming> take_a2a_timings();

 protected:
  void do_all_reduce_sum_f32(float* data, size_t count) override;
  void do_all_reduce_sum_f64(double* data, size_t count) override;
  void do_all_reduce_sum_i64(int64_t* data, size_t count) override;
  void do_all_to_all_v(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                       const std::vector<int64_t>& recv_counts, size_t elem_bytes) override;
  void do_all_to_all_blocks(const void* send, const Blocks& send_blocks, void* recv, const Blocks& recv_blocks,
                            size_t elem_bytes) override;
  void do_all_gather(const void* send, void* recv, size_t bytes_per_rank) override;
  void do_broadcast(void* data, size_t bytes, int root) override;
  void do_barrier() override;
  void do_send(const void* data, size_t bytes, int peer, uint32_t tag) override;
  void do_recv(void* data, size_t bytes, int peer, uint32_t tag) override;
  void do_send_recv(const void* send_data, size_t send_bytes, int send_peer, uint32_t send_tag, void* recv_data,
                    size_t recv_bytes, int recv_peer, uint32_t recv_tag) override;
  std::unique_ptr<comm::Communicator> do_sub_group(const std::vector<int>& members, int new_rank,
                                                   const std::string& name, const std::string& key) override;

 private:
  NcclCommunicator(std::string name, int rank, std::vector<int> world_ranks, std::shared_ptr<comm::StoreClient> store,
                   int device, const std::string& key);
  void all_reduce(void* data, size_t count, ncclDataType_t type);

  std::shared_ptr<comm::StoreClient> store_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  std::unique_ptr<Stream> stream_, overlap_;
  std::unique_ptr<Event> a2a_start_, a2a_stop_;
  std::vector<A2aTiming> timings_;
  int* barrier_word_ = nullptr;  // one device int for barrier()
};

}  // namespace moe::rt::cuda
