// Gloo implementation of Communicator (see gloo_communicator.h). Gloo throws gloo::EnforceNotMet
// or gloo::IoException; the Communicator wrappers turn them into moe::Error lines naming the rank,
// group and call, so nothing escapes as an abort.
#include "gloo_communicator.h"

#include <algorithm>
#include <cstring>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include "error.h"
#include "gloo_store_adapter.h"

namespace moe::rt::comm {

namespace {

// Slots for point-to-point messages: far above the small numbers nextSlot() hands out and below
// the prefixes Gloo's own algorithms use in the top byte.
constexpr uint64_t kPointToPointSlot = 0x00C0000000000000ull;

char g_empty_byte;  // a valid address for empty buffers (Gloo dislikes null pointers)

template <typename T>
void gloo_sum_in_place(const std::shared_ptr<gloo::Context>& context, T* data, size_t count) {
  if (count == 0 || context->size == 1) return;
  gloo::AllreduceOptions opts(context);
  opts.setOutput(data, count);
  void (*fn)(void*, const void*, const void*, size_t) = &gloo::sum<T>;
  opts.setReduceFunction(fn);
  gloo::allreduce(opts);
}

}  // namespace

std::unique_ptr<Communicator> GlooCommunicator::create_world(std::shared_ptr<StoreClient> store, int rank,
                                                            int world_size, const std::string& host,
                                                            std::chrono::milliseconds timeout) {
  std::shared_ptr<gloo::transport::Device> device;
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = host;
    device = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    std::string text = e.what();
    std::replace(text.begin(), text.end(), '\n', ' ');
    throw Error("rank " + std::to_string(rank) + ": cannot create the Gloo TCP device on '" + host + "': " + text);
  }
  std::vector<int> ranks(static_cast<size_t>(world_size));
  for (int i = 0; i < world_size; ++i) ranks[static_cast<size_t>(i)] = i;
  return std::make_unique<GlooCommunicator>(std::move(store), std::move(device), "world", rank, std::move(ranks),
                                            "comm/world", timeout);
}

GlooCommunicator::GlooCommunicator(std::shared_ptr<StoreClient> store, std::shared_ptr<gloo::transport::Device> device,
                                   std::string name, int rank, std::vector<int> world_ranks,
                                   const std::string& store_prefix, std::chrono::milliseconds timeout)
    : Communicator(std::move(name), rank, std::move(world_ranks)),
      store_(std::move(store)),
      device_(std::move(device)),
      timeout_(timeout) {
  try {
    auto context = std::make_shared<gloo::rendezvous::Context>(rank, size());
    context->setTimeout(timeout_);
    GlooStoreAdapter adapter(store_, store_prefix, timeout_);
    context->connectFullMesh(adapter, device_);
    context_ = std::move(context);
  } catch (const std::exception& e) {
    std::string text = e.what();
    std::replace(text.begin(), text.end(), '\n', ' ');
    throw Error("rank " + std::to_string(global_rank()) + ": connecting group '" + this->name() + "' (" +
                std::to_string(size()) + " ranks) failed: " + text);
  }
}

GlooCommunicator::~GlooCommunicator() {
  drain();  // async work may still use the context
}

void GlooCommunicator::do_all_reduce_sum_f32(float* data, size_t count) {
  gloo_sum_in_place(context_, data, count);
}
void GlooCommunicator::do_all_reduce_sum_f64(double* data, size_t count) {
  gloo_sum_in_place(context_, data, count);
}
void GlooCommunicator::do_all_reduce_sum_i64(int64_t* data, size_t count) {
  gloo_sum_in_place(context_, data, count);
}

// all_to_all_v is the block exchange with one block per peer.
void GlooCommunicator::do_all_to_all_v(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                                       const std::vector<int64_t>& recv_counts, size_t elem_bytes) {
  if (send_counts[rank()] != recv_counts[rank()])
    throw Error("all_to_all_v: this rank sends " + std::to_string(send_counts[rank()]) + " elements to itself but expects " +
                std::to_string(recv_counts[rank()]));
  Blocks out{{}, send_counts}, in{{}, recv_counts};
  int64_t send_at = 0, recv_at = 0;
  for (size_t p = 0; p < send_counts.size(); ++p) {
    out.offset.push_back(send_at), send_at += send_counts[p];
    in.offset.push_back(recv_at), recv_at += recv_counts[p];
  }
  do_all_to_all_blocks(send, out, recv, in, elem_bytes);
}

// Pairwise exchange on unbound buffers: step i sends to rank+i and receives from rank−i; this
// rank's own blocks are copied after everything is posted, while the transfers run. Block
// index b travels on slot + b, so every (peer, slot) carries at most one message and the blocks
// cannot be matched out of order; a block with a zero count is simply skipped (no zero-byte
// messages, no null buffers).
void GlooCommunicator::do_all_to_all_blocks(const void* send, const Blocks& send_blocks, void* recv,
                                            const Blocks& recv_blocks, size_t elem_bytes) {
  const int n = size(), me = rank();
  const int per_peer = static_cast<int>(send_blocks.count.size()) / n;
  const char* src = static_cast<const char*>(send);
  char* dst = static_cast<char*>(recv);
  auto bytes = [elem_bytes](int64_t elements) { return static_cast<size_t>(elements) * elem_bytes; };
  // Extent of each side: the buffers Gloo registers must cover every block.
  size_t send_end = 0, recv_end = 0;
  for (size_t k = 0; k < send_blocks.count.size(); ++k) {
    if (send_blocks.count[k] > 0) send_end = std::max(send_end, bytes(send_blocks.offset[k] + send_blocks.count[k]));
    if (recv_blocks.count[k] > 0) recv_end = std::max(recv_end, bytes(recv_blocks.offset[k] + recv_blocks.count[k]));
  }
  auto copy_own_blocks = [&] {
    for (int b = 0; b < per_peer; ++b) {
      const size_t k = static_cast<size_t>(me * per_peer + b);
      if (send_blocks.count[k] > 0)
        std::memcpy(dst + bytes(recv_blocks.offset[k]), src + bytes(send_blocks.offset[k]), bytes(send_blocks.count[k]));
    }
  };
  if (n == 1) return copy_own_blocks();

  const uint64_t slot = static_cast<uint64_t>(context_->nextSlot(per_peer));
  auto in = context_->createUnboundBuffer(send_end ? const_cast<char*>(src) : &g_empty_byte, send_end ? send_end : 1);
  auto out = context_->createUnboundBuffer(recv_end ? dst : &g_empty_byte, recv_end ? recv_end : 1);
  int sends = 0, recvs = 0;
  for (int i = 1; i < n; ++i) {
    const int to = (me + i) % n;
    const int from = (me - i + n) % n;
    for (int b = 0; b < per_peer; ++b) {
      const size_t ks = static_cast<size_t>(to * per_peer + b), kr = static_cast<size_t>(from * per_peer + b);
      if (send_blocks.count[ks] > 0) {
        in->send(to, slot + static_cast<uint64_t>(b), bytes(send_blocks.offset[ks]), bytes(send_blocks.count[ks]));
        ++sends;
      }
      if (recv_blocks.count[kr] > 0) {
        out->recv(from, slot + static_cast<uint64_t>(b), bytes(recv_blocks.offset[kr]), bytes(recv_blocks.count[kr]));
        ++recvs;
      }
    }
  }
  copy_own_blocks();  // while Gloo's I/O thread moves the posted blocks
  for (int i = 0; i < recvs; ++i)
    if (!out->waitRecv(timeout_)) throw Error("all_to_all: timed out waiting to receive");
  for (int i = 0; i < sends; ++i)
    if (!in->waitSend(timeout_)) throw Error("all_to_all: timed out waiting to send");
}

void GlooCommunicator::do_all_gather(const void* send, void* recv, size_t bytes_per_rank) {
  if (bytes_per_rank == 0) return;
  if (size() == 1) {
    std::memcpy(recv, send, bytes_per_rank);
    return;
  }
  gloo::AllgatherOptions opts(context_);
  opts.setInput(static_cast<char*>(const_cast<void*>(send)), bytes_per_rank);
  opts.setOutput(static_cast<char*>(recv), bytes_per_rank * static_cast<size_t>(size()));
  gloo::allgather(opts);
}

void GlooCommunicator::do_broadcast(void* data, size_t bytes, int root) {
  if (bytes == 0 || size() == 1) return;
  gloo::BroadcastOptions opts(context_);
  opts.setOutput(static_cast<char*>(data), bytes);
  opts.setRoot(root);
  gloo::broadcast(opts);
}

void GlooCommunicator::do_barrier() {
  if (size() == 1) return;
  gloo::BarrierOptions opts(context_);
  gloo::barrier(opts);
}

void GlooCommunicator::do_send(const void* data, size_t bytes, int peer, uint32_t tag) {
  auto buf = context_->createUnboundBuffer(bytes ? const_cast<void*>(data) : &g_empty_byte, bytes ? bytes : 1);
  buf->send(peer, kPointToPointSlot | tag, 0, bytes ? bytes : 1);
  if (!buf->waitSend(timeout_)) throw Error("send: timed out");
}

std::function<void()> GlooCommunicator::do_isend(const void* data, size_t bytes, int peer, uint32_t tag) {
  std::shared_ptr<gloo::transport::UnboundBuffer> buf =
      context_->createUnboundBuffer(bytes ? const_cast<void*>(data) : &g_empty_byte, bytes ? bytes : 1);
  buf->send(peer, kPointToPointSlot | tag, 0, bytes ? bytes : 1);
  const auto timeout = timeout_;
  return [buf, timeout] {
    if (!buf->waitSend(timeout)) throw Error("send: timed out");
  };
}

std::function<void()> GlooCommunicator::do_irecv(void* data, size_t bytes, int peer, uint32_t tag) {
  std::shared_ptr<gloo::transport::UnboundBuffer> buf =
      context_->createUnboundBuffer(bytes ? data : &g_empty_byte, bytes ? bytes : 1);
  buf->recv(peer, kPointToPointSlot | tag, 0, bytes ? bytes : 1);
  const auto timeout = timeout_;
  return [buf, timeout] {
    if (!buf->waitRecv(timeout)) throw Error("recv: timed out");
  };
}

void GlooCommunicator::do_recv(void* data, size_t bytes, int peer, uint32_t tag) {
  auto buf = context_->createUnboundBuffer(bytes ? data : &g_empty_byte, bytes ? bytes : 1);
  buf->recv(peer, kPointToPointSlot | tag, 0, bytes ? bytes : 1);
  if (!buf->waitRecv(timeout_)) throw Error("recv: timed out");
}

void GlooCommunicator::do_send_recv(const void* send_data, size_t send_bytes, int send_peer, uint32_t send_tag,
                                    void* recv_data, size_t recv_bytes, int recv_peer, uint32_t recv_tag) {
  auto in = context_->createUnboundBuffer(recv_bytes ? recv_data : &g_empty_byte, recv_bytes ? recv_bytes : 1);
  auto out = context_->createUnboundBuffer(send_bytes ? const_cast<void*>(send_data) : &g_empty_byte,
                                           send_bytes ? send_bytes : 1);
  in->recv(recv_peer, kPointToPointSlot | recv_tag, 0, recv_bytes ? recv_bytes : 1);  // posted first
  out->send(send_peer, kPointToPointSlot | send_tag, 0, send_bytes ? send_bytes : 1);
  if (!out->waitSend(timeout_)) throw Error("send_recv: send timed out");
  if (!in->waitRecv(timeout_)) throw Error("send_recv: recv timed out");
}

std::unique_ptr<Communicator> GlooCommunicator::do_sub_group(const std::vector<int>& members, int new_rank,
                                                             const std::string& name, const std::string& key) {
  std::vector<int> ranks;
  for (int m : members) ranks.push_back(world_ranks()[static_cast<size_t>(m)]);
  return std::make_unique<GlooCommunicator>(store_, device_, name, new_rank, std::move(ranks), "comm/" + key, timeout_);
}

}  // namespace moe::rt::comm
