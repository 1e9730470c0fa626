// NCCL implementation of the Communicator interface (see nccl_communicator.h).
#include "nccl_communicator.h"

#include <cstring>

#include "a2a_schedule.h"
#include "device_allocator.h"
#include "error.h"
#include "nccl_check.h"

namespace moe::rt::cuda {

std::unique_ptr<NcclCommunicator> NcclCommunicator::create_world(std::shared_ptr<comm::StoreClient> store, int rank,
                                                                 int size, int device) {
  std::vector<int> ranks(size);
  for (int i = 0; i < size; ++i) ranks[i] = i;
  return std::unique_ptr<NcclCommunicator>(
      new NcclCommunicator("world", rank, std::move(ranks), std::move(store), device, "world"));
}

NcclCommunicator::NcclCommunicator(std::string name, int rank, std::vector<int> world_ranks,
                                   std::shared_ptr<comm::StoreClient> store, int device, const std::string& key)
    : Communicator(std::move(name), rank, std::move(world_ranks)), store_(std::move(store)), device_(device) {
  MOE_CUDA_CHECK(cudaSetDevice(device_));
  const std::string id_key = "nccl/" + key;
  ncclUniqueId id;
  if (rank == 0) {
    MOE_NCCL_CHECK(ncclGetUniqueId(&id));
    store_->set(id_key, std::vector<char>(id.internal, id.internal + sizeof(id.internal)));
  } else {
    const std::vector<char> bytes = store_->get(id_key);
    if (bytes.size() != sizeof(id.internal))
      throw Error("NCCL bootstrap: store key " + id_key + " holds " + std::to_string(bytes.size()) + " bytes, expected " +
                  std::to_string(sizeof(id.internal)));
    std::memcpy(id.internal, bytes.data(), bytes.size());
  }
  MOE_NCCL_CHECK(ncclCommInitRank(&comm_, size(), id, rank));
  stream_ = std::make_unique<Stream>();
  overlap_ = std::make_unique<Stream>();
  a2a_start_ = std::make_unique<Event>();
  a2a_stop_ = std::make_unique<Event>();
  barrier_word_ = static_cast<int*>(DeviceAllocator::instance().allocate(sizeof(int)));
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_) (void)ncclCommDestroy(comm_);
  if (barrier_word_) DeviceAllocator::instance().release(barrier_word_);
}

std::vector<A2aTiming> NcclCommunicator::take_a2a_timings() {
  std::vector<A2aTiming> out;
  out.swap(timings_);
  return out;
}

void NcclCommunicator::all_reduce(void* data, size_t count, ncclDataType_t type) {
  MOE_NCCL_CHECK(ncclAllReduce(data, data, count, type, ncclSum, comm_, stream()));
  stream_->synchronize();
}

void NcclCommunicator::do_all_reduce_sum_f32(float* data, size_t count) { all_reduce(data, count, ncclFloat32); }
void NcclCommunicator::do_all_reduce_sum_f64(double* data, size_t count) { all_reduce(data, count, ncclFloat64); }
void NcclCommunicator::do_all_reduce_sum_i64(int64_t* data, size_t count) { all_reduce(data, count, ncclInt64); }

void NcclCommunicator::do_all_to_all_v(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                                       const std::vector<int64_t>& recv_counts, size_t elem_bytes) {
  const A2aSchedule plan = plan_all_to_all(rank(), size(), send_counts, recv_counts, elem_bytes);
  const auto* src = static_cast<const char*>(send);
  auto* dst = static_cast<char*>(recv);
  a2a_start_->record(stream());
  if (plan.self_bytes > 0)
    MOE_CUDA_CHECK(cudaMemcpyAsync(dst + plan.self_recv_offset, src + plan.self_send_offset,
                                   static_cast<size_t>(plan.self_bytes), cudaMemcpyDeviceToDevice, stream()));
  if (!plan.transfers.empty()) {
    MOE_NCCL_CHECK(ncclGroupStart());
    for (const A2aTransfer& t : plan.transfers) {
      if (t.send_bytes > 0)
        MOE_NCCL_CHECK(ncclSend(src + t.send_offset, static_cast<size_t>(t.send_bytes), ncclChar, t.peer, comm_, stream()));
      if (t.recv_bytes > 0)
        MOE_NCCL_CHECK(ncclRecv(dst + t.recv_offset, static_cast<size_t>(t.recv_bytes), ncclChar, t.peer, comm_, stream()));
    }
    MOE_NCCL_CHECK(ncclGroupEnd());
  }
  a2a_stop_->record(stream());
  a2a_stop_->synchronize();
  timings_.push_back({static_cast<double>(a2a_stop_->elapsed_ms_since(*a2a_start_)), plan.send_bytes, plan.recv_bytes});
}

// Blocks: one ncclSend/ncclRecv per non-empty block inside one group; NCCL matches the sends and
// receives between two ranks in the order they are posted, which is block order on both sides.
void NcclCommunicator::do_all_to_all_blocks(const void* send, const Blocks& send_blocks, void* recv,
                                            const Blocks& recv_blocks, size_t elem_bytes) {
  const int n = size(), me = rank();
  const int per_peer = static_cast<int>(send_blocks.count.size()) / n;
  const auto* src = static_cast<const char*>(send);
  auto* dst = static_cast<char*>(recv);
  auto bytes = [elem_bytes](int64_t elements) { return static_cast<size_t>(elements) * elem_bytes; };
  int64_t sent = 0, received = 0;
  a2a_start_->record(stream());
  for (int b = 0; b < per_peer; ++b) {
    const size_t k = static_cast<size_t>(me * per_peer + b);
    if (send_blocks.count[k] > 0)
      MOE_CUDA_CHECK(cudaMemcpyAsync(dst + bytes(recv_blocks.offset[k]), src + bytes(send_blocks.offset[k]),
                                     bytes(send_blocks.count[k]), cudaMemcpyDeviceToDevice, stream()));
  }
  MOE_NCCL_CHECK(ncclGroupStart());
  for (int p = 0; p < n; ++p) {
    if (p == me) continue;
    for (int b = 0; b < per_peer; ++b) {
      const size_t k = static_cast<size_t>(p * per_peer + b);
      if (send_blocks.count[k] > 0) {
        MOE_NCCL_CHECK(ncclSend(src + bytes(send_blocks.offset[k]), bytes(send_blocks.count[k]), ncclChar, p, comm_, stream()));
        sent += static_cast<int64_t>(bytes(send_blocks.count[k]));
      }
      if (recv_blocks.count[k] > 0) {
        MOE_NCCL_CHECK(ncclRecv(dst + bytes(recv_blocks.offset[k]), bytes(recv_blocks.count[k]), ncclChar, p, comm_, stream()));
        received += static_cast<int64_t>(bytes(recv_blocks.count[k]));
      }
    }
  }
  MOE_NCCL_CHECK(ncclGroupEnd());
  a2a_stop_->record(stream());
  a2a_stop_->synchronize();
  timings_.push_back({static_cast<double>(a2a_stop_->elapsed_ms_since(*a2a_start_)), sent, received});
}

void NcclCommunicator::do_all_gather(const void* send, void* recv, size_t bytes_per_rank) {
  MOE_NCCL_CHECK(ncclAllGather(send, recv, bytes_per_rank, ncclChar, comm_, stream()));
  stream_->synchronize();
}

void NcclCommunicator::do_broadcast(void* data, size_t bytes, int root) {
  MOE_NCCL_CHECK(ncclBroadcast(data, data, bytes, ncclChar, root, comm_, stream()));
  stream_->synchronize();
}

void NcclCommunicator::do_barrier() {
  MOE_CUDA_CHECK(cudaMemsetAsync(barrier_word_, 0, sizeof(int), stream()));
  MOE_NCCL_CHECK(ncclAllReduce(barrier_word_, barrier_word_, 1, ncclInt32, ncclSum, comm_, stream()));
  stream_->synchronize();
}

void NcclCommunicator::do_send(const void* data, size_t bytes, int peer, uint32_t /*tag*/) {
  MOE_NCCL_CHECK(ncclSend(data, bytes, ncclChar, peer, comm_, stream()));
  stream_->synchronize();
}

void NcclCommunicator::do_recv(void* data, size_t bytes, int peer, uint32_t /*tag*/) {
  MOE_NCCL_CHECK(ncclRecv(data, bytes, ncclChar, peer, comm_, stream()));
  stream_->synchronize();
}

void NcclCommunicator::do_send_recv(const void* send_data, size_t send_bytes, int send_peer, uint32_t /*send_tag*/,
                                    void* recv_data, size_t recv_bytes, int recv_peer, uint32_t /*recv_tag*/) {
  MOE_NCCL_CHECK(ncclGroupStart());  // one fused launch: neither side waits for the other's send
  MOE_NCCL_CHECK(ncclSend(send_data, send_bytes, ncclChar, send_peer, comm_, stream()));
  MOE_NCCL_CHECK(ncclRecv(recv_data, recv_bytes, ncclChar, recv_peer, comm_, stream()));
  MOE_NCCL_CHECK(ncclGroupEnd());
  stream_->synchronize();
}

std::unique_ptr<comm::Communicator> NcclCommunicator::do_sub_group(const std::vector<int>& members, int new_rank,
                                                                   const std::string& name, const std::string& key) {
  std::vector<int> ranks;
  ranks.reserve(members.size());
  for (int m : members) ranks.push_back(world_ranks()[static_cast<size_t>(m)]);
  return std::unique_ptr<comm::Communicator>(
      new NcclCommunicator(name, new_rank, std::move(ranks), store_, device_, key));
}

}  // namespace moe::rt::cuda
