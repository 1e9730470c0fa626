#pragma once
// The collective-communication seam of the runtime: what the dispatcher, the gradient reduction and
// the metrics gathering need, and nothing more. The CPU backend implements it with Gloo over TCP
// (gloo_communicator.h); the CUDA backend will implement it with NCCL. A communicator spans a
// group of ranks (the world, or a sub-group from core's rank layout: EP, expert-DP, dense-DP); its
// `rank()` is the position in the group, `world_ranks()` maps positions to global ranks.
//
// Every member calls every collective in the same order. The *_async variants run on the
// communicator's comm thread (comm_thread.h) so expert compute can proceed while a chunk of tokens
// is in flight; a synchronous call made while async work is pending queues behind it, so the order
// is the same on every rank. Errors are moe::Error naming the global rank, the group and the call.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "comm_thread.h"

namespace moe::rt::comm {

class Communicator {
 public:
  Communicator(std::string name, int rank, std::vector<int> world_ranks);
  virtual ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return static_cast<int>(world_ranks_.size()); }
  int global_rank() const { return world_ranks_[static_cast<size_t>(rank_)]; }
  const std::vector<int>& world_ranks() const { return world_ranks_; }
  const std::string& name() const { return name_; }

  // In-place sum over the group.
  void all_reduce_sum(float* data, size_t count);
  void all_reduce_sum(double* data, size_t count);
  void all_reduce_sum(int64_t* data, size_t count);
  // All-to-all with per-peer counts (elements of `elem_bytes`): send holds send_counts[0] elements
  // for peer 0, then send_counts[1] for peer 1, …; recv receives recv_counts[p] from peer p in
  // peer order. Zero counts (a peer that gets nothing) are fine; recv_counts must match what the
  // peers send (exchange counts first — see exchange_counts()).
  void all_to_all_v(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                    const std::vector<int64_t>& recv_counts, size_t elem_bytes);
  // All-to-all of blocks, so a caller sends from and receives into its own layouts without staging
  // copies. With B = offset.size() / size() blocks per peer, block (p, i) of `send` (count elements
  // at offset, both in elements) goes to peer p, which receives it as its block (this rank, i) of
  // `recv`. A rank's recv count of block (p, i) must equal peer p's send count of block (rank, i).
  struct Blocks {
    std::vector<int64_t> offset, count;  // [size() × B]
  };
  void all_to_all_blocks(const void* send, const Blocks& send_blocks, void* recv, const Blocks& recv_blocks,
                         size_t elem_bytes);
  // recv[size × n] = every rank's n values, in rank order (each rank sends `count` int64s).
  void all_gather(const void* send, void* recv, size_t bytes_per_rank);
  void broadcast(void* data, size_t bytes, int root);
  void barrier();
  // Point-to-point, matched by (peer, tag).
  void send(const void* data, size_t bytes, int peer, uint32_t tag);
  void recv(void* data, size_t bytes, int peer, uint32_t tag);
  // Asynchronous point-to-point: posted now, done at wait() (a pipeline stage sends its activations
  // and goes on computing; it posts the receive of its next input before computing, so the data
  // moves meanwhile). The buffers must stay alive until wait(). Backends without them (NCCL here:
  // its operations share one stream) complete the operation before returning.
  struct Pending {
    std::function<void()> wait;  // blocks until the operation is done; empty once done
  };
  Pending isend(const void* data, size_t bytes, int peer, uint32_t tag);
  Pending irecv(void* data, size_t bytes, int peer, uint32_t tag);
  void wait(Pending& op);
  // A send and a receive posted together, done when both are (a pipeline stage's "send my
  // activations, receive your gradients"): two stages that each send to the other first would
  // wait forever, as a send completes only once its receive is posted.
  void send_recv(const void* send_data, size_t send_bytes, int send_peer, uint32_t send_tag, void* recv_data,
                 size_t recv_bytes, int recv_peer, uint32_t recv_tag);

  // Ring collectives of floats with counts[p] elements from rank p (a sequence-parallel share is
  // whole sequences, which need not split evenly over the group); each rank sends and receives the
  // other ranks' chunks once, the (n−1)/n of the whole that a ring moves. Built on send_recv, so
  // every backend has them. all_gather_v: recv = every rank's `send` (counts[rank()] elements),
  // in rank order. reduce_scatter_sum_v: recv (counts[rank()] elements) = the sum over the ranks
  // of their `send`'s chunk rank() (send holds all the chunks, in rank order).
  void all_gather_v(const float* send, float* recv, const std::vector<int64_t>& counts);
  void reduce_scatter_sum_v(const float* send, float* recv, const std::vector<int64_t>& counts);

  // recv_counts[p] = what peer p's send_counts[rank()] is (an all-to-all of one int64 per peer).
  std::vector<int64_t> exchange_counts(const std::vector<int64_t>& send_counts);

  // A communicator over `members` (ranks of *this* group, ascending or not, no repeats). Collective
  // over the members only; non-members must not call it. `name` labels messages and must be the
  // same on every member.
  std::unique_ptr<Communicator> sub_group(const std::vector<int>& members, const std::string& name);

  // Asynchronous variants: run on the comm thread, in order. Buffers must stay alive until wait().
  CommHandle all_to_all_v_async(const void* send, std::vector<int64_t> send_counts, void* recv,
                                std::vector<int64_t> recv_counts, size_t elem_bytes);
  CommHandle all_to_all_blocks_async(const void* send, Blocks send_blocks, void* recv, Blocks recv_blocks,
                                     size_t elem_bytes);
  CommHandle all_reduce_sum_async(float* data, size_t count);
  CommHandle all_reduce_sum_async(double* data, size_t count);
  // Runs `job` on the comm thread behind the async work submitted before it — for a caller whose
  // chunk of work is several collectives (possibly on other groups, e.g. the hierarchical
  // dispatcher's two stages); every rank must submit the same jobs in the same order, and a job
  // must not call collectives on THIS communicator (they would queue behind the job). An error
  // becomes one moe::Error naming the rank, this group and `what` (a string literal).
  CommHandle run_async_job(const char* what, std::function<void()> job);
  // Waits for every async operation submitted so far.
  void drain();

 protected:
  // Backend implementations. Throw anything; the public wrappers turn it into moe::Error.
  virtual void do_all_reduce_sum_f32(float* data, size_t count) = 0;
  virtual void do_all_reduce_sum_f64(double* data, size_t count) = 0;
  virtual void do_all_reduce_sum_i64(int64_t* data, size_t count) = 0;
  virtual void do_all_to_all_v(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                               const std::vector<int64_t>& recv_counts, size_t elem_bytes) = 0;
  virtual void do_all_to_all_blocks(const void* send, const Blocks& send_blocks, void* recv, const Blocks& recv_blocks,
                                    size_t elem_bytes) = 0;
  virtual void do_all_gather(const void* send, void* recv, size_t bytes_per_rank) = 0;
  virtual void do_broadcast(void* data, size_t bytes, int root) = 0;
  virtual void do_barrier() = 0;
  virtual void do_send(const void* data, size_t bytes, int peer, uint32_t tag) = 0;
  virtual void do_recv(void* data, size_t bytes, int peer, uint32_t tag) = 0;
  virtual void do_send_recv(const void* send_data, size_t send_bytes, int send_peer, uint32_t send_tag, void* recv_data,
                            size_t recv_bytes, int recv_peer, uint32_t recv_tag) = 0;
  // Return what waits for the operation; the defaults complete it before returning.
  virtual std::function<void()> do_isend(const void* data, size_t bytes, int peer, uint32_t tag);
  virtual std::function<void()> do_irecv(void* data, size_t bytes, int peer, uint32_t tag);
  // `key` is unique per group creation and identical on all members (for the rendezvous prefix).
  virtual std::unique_ptr<Communicator> do_sub_group(const std::vector<int>& members, int new_rank,
                                                     const std::string& name, const std::string& key) = 0;

 private:
  // Runs `op` now, or behind pending async work; wraps errors with the rank, group and `what`.
  void run(const char* what, const std::function<void()>& op);
  CommHandle run_async(const char* what, std::function<void()> op);
  void check_blocks(const Blocks& send_blocks, const Blocks& recv_blocks) const;
  [[noreturn]] void rethrow(const char* what, const std::exception& e) const;

  std::string name_;
  int rank_;
  std::vector<int> world_ranks_;
  std::unique_ptr<CommThread> thread_;  // started by the first async call
  std::map<std::string, int> sub_groups_created_;
};

}  // namespace moe::rt::comm
