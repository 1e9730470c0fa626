#pragma once
// Communicator on Gloo over TCP (the CPU backend). One Gloo TCP device per process, one Gloo
// context (a full mesh of TCP pairs) per communicator, connected through the rendezvous store.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "communicator.h"
#include "store_client.h"

namespace gloo {
class Context;
namespace transport {
class Device;
}
}  // namespace gloo

namespace moe::rt::comm {

class GlooCommunicator : public Communicator {
 public:
  // The world communicator: every rank of `world_size` calls this with its own rank. `host` is the
  // address this rank listens on for its peers (Gloo's TCP device). `timeout` bounds every
  // collective and the connection step.
  static std::unique_ptr<Communicator> create_world(std::shared_ptr<StoreClient> store, int rank, int world_size,
                                                    const std::string& host, std::chrono::milliseconds timeout);

  GlooCommunicator(std::shared_ptr<StoreClient> store, std::shared_ptr<gloo::transport::Device> device,
                   std::string name, int rank, std::vector<int> world_ranks, const std::string& store_prefix,
                   std::chrono::milliseconds timeout);
  ~GlooCommunicator() override;

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
  std::function<void()> do_isend(const void* data, size_t bytes, int peer, uint32_t tag) override;
  std::function<void()> do_irecv(void* data, size_t bytes, int peer, uint32_t tag) override;
  void do_recv(void* data, size_t bytes, int peer, uint32_t tag) override;
  void do_send_recv(const void* send_data, size_t send_bytes, int send_peer, uint32_t send_tag, void* recv_data,
                    size_t recv_bytes, int recv_peer, uint32_t recv_tag) override;
  std::unique_ptr<Communicator> do_sub_group(const std::vector<int>& members, int new_rank, const std::string& name,
                                             const std::string& key) override;

 private:
  std::shared_ptr<StoreClient> store_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> context_;
  std::chrono::milliseconds timeout_;
};

}  // namespace moe::rt::comm
