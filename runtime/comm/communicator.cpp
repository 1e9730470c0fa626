// The backend-independent half of Communicator (see communicator.h): argument checks, ordering
// with the comm thread, and turning any backend exception into one moe::Error line.
#include "communicator.h"

#include <algorithm>

#include "error.h"

namespace moe::rt::comm {

Communicator::Communicator(std::string name, int rank, std::vector<int> world_ranks)
    : name_(std::move(name)), rank_(rank), world_ranks_(std::move(world_ranks)) {}

Communicator::~Communicator() = default;  // thread_ joins after finishing queued work

void Communicator::rethrow(const char* what, const std::exception& e) const {
  std::string text = e.what();
  std::replace(text.begin(), text.end(), '\n', ' ');
  if (dynamic_cast<const Error*>(&e) && text.rfind("rank ", 0) == 0) throw Error(text);  // already named
  // Appends rather than operator+ chains: GCC 12 -O3 warns falsely (-Wrestrict) on the latter.
  std::string msg = "rank ";
  msg += std::to_string(global_rank());
  msg += ": ";
  msg += what;
  msg += " in group '";
  msg += name_;
  msg += "' (";
  msg += std::to_string(rank_);
  msg += " of ";
  msg += std::to_string(size());
  msg += ") failed: ";
  msg += text;
  throw Error(msg);
}

void Communicator::run(const char* what, const std::function<void()>& op) {
  if (thread_ && thread_->busy()) {
    run_async(what, op).wait();
    return;
  }
  try {
    op();
  } catch (const std::exception& e) {
    rethrow(what, e);
  }
}

CommHandle Communicator::run_async(const char* what, std::function<void()> op) {
  if (!thread_) thread_ = std::make_unique<CommThread>();
  return thread_->submit([this, what, op = std::move(op)] {
    try {
      op();
    } catch (const std::exception& e) {
      rethrow(what, e);
    }
  });
}

CommHandle Communicator::run_async_job(const char* what, std::function<void()> job) {
  return run_async(what, std::move(job));
}

void Communicator::drain() {
  if (thread_) thread_->drain();
}

void Communicator::all_reduce_sum(float* data, size_t count) {
  run("all_reduce(sum, float)", [&] { do_all_reduce_sum_f32(data, count); });
}
void Communicator::all_reduce_sum(double* data, size_t count) {
  run("all_reduce(sum, double)", [&] { do_all_reduce_sum_f64(data, count); });
}
void Communicator::all_reduce_sum(int64_t* data, size_t count) {
  run("all_reduce(sum, int64)", [&] { do_all_reduce_sum_i64(data, count); });
}

namespace {
void check_counts(const std::vector<int64_t>& counts, int size, const char* which) {
  if (static_cast<int>(counts.size()) != size)
    throw Error(std::string("all_to_all_v: ") + which + " has " + std::to_string(counts.size()) +
                " entries for a group of " + std::to_string(size));
  for (int64_t c : counts)
    if (c < 0) throw Error(std::string("all_to_all_v: negative count in ") + which);
}
}  // namespace

void Communicator::all_to_all_v(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                                const std::vector<int64_t>& recv_counts, size_t elem_bytes) {
  run("all_to_all_v", [&] {
    check_counts(send_counts, size(), "send_counts");
    check_counts(recv_counts, size(), "recv_counts");
    do_all_to_all_v(send, send_counts, recv, recv_counts, elem_bytes);
  });
}

void Communicator::check_blocks(const Blocks& send_blocks, const Blocks& recv_blocks) const {
  const size_t n = send_blocks.count.size();
  if (n == 0 || n % static_cast<size_t>(size()) != 0 || send_blocks.offset.size() != n || recv_blocks.count.size() != n ||
      recv_blocks.offset.size() != n)
    throw Error("all_to_all_blocks: " + std::to_string(n) + " send blocks, " + std::to_string(recv_blocks.count.size()) +
                " receive blocks: need the same whole number of blocks per peer on both sides (group of " +
                std::to_string(size()) + ")");
  for (const Blocks* b : {&send_blocks, &recv_blocks})
    for (size_t k = 0; k < n; ++k)
      if (b->count[k] < 0 || b->offset[k] < 0) throw Error("all_to_all_blocks: negative offset or count");
  const size_t per_peer = n / static_cast<size_t>(size()), me = static_cast<size_t>(rank());
  for (size_t i = 0; i < per_peer; ++i)
    if (send_blocks.count[me * per_peer + i] != recv_blocks.count[me * per_peer + i])
      throw Error("all_to_all_blocks: block " + std::to_string(i) + " to itself sends " +
                  std::to_string(send_blocks.count[me * per_peer + i]) + " elements but receives " +
                  std::to_string(recv_blocks.count[me * per_peer + i]));
}

void Communicator::all_to_all_blocks(const void* send, const Blocks& send_blocks, void* recv, const Blocks& recv_blocks,
                                     size_t elem_bytes) {
  run("all_to_all_blocks", [&] {
    check_blocks(send_blocks, recv_blocks);
    do_all_to_all_blocks(send, send_blocks, recv, recv_blocks, elem_bytes);
  });
}

void Communicator::all_gather(const void* send, void* recv, size_t bytes_per_rank) {
  run("all_gather", [&] { do_all_gather(send, recv, bytes_per_rank); });
}

void Communicator::broadcast(void* data, size_t bytes, int root) {
  run("broadcast", [&] {
    if (root < 0 || root >= size()) throw Error("broadcast root " + std::to_string(root) + " is not in the group");
    do_broadcast(data, bytes, root);
  });
}

void Communicator::barrier() {
  run("barrier", [&] { do_barrier(); });
}

void Communicator::send(const void* data, size_t bytes, int peer, uint32_t tag) {
  run("send", [&] {
    if (peer < 0 || peer >= size() || peer == rank_) throw Error("send to invalid peer " + std::to_string(peer));
    do_send(data, bytes, peer, tag);
  });
}

Communicator::Pending Communicator::isend(const void* data, size_t bytes, int peer, uint32_t tag) {
  Pending out;
  run("isend", [&] {
    if (peer < 0 || peer >= size() || peer == rank_) throw Error("send to invalid peer " + std::to_string(peer));
    out.wait = do_isend(data, bytes, peer, tag);
  });
  return out;
}

Communicator::Pending Communicator::irecv(void* data, size_t bytes, int peer, uint32_t tag) {
  Pending out;
  run("irecv", [&] {
    if (peer < 0 || peer >= size() || peer == rank_) throw Error("recv from invalid peer " + std::to_string(peer));
    out.wait = do_irecv(data, bytes, peer, tag);
  });
  return out;
}

void Communicator::wait(Pending& op) {
  if (!op.wait) return;
  run("wait", op.wait);
  op.wait = nullptr;
}

std::function<void()> Communicator::do_isend(const void* data, size_t bytes, int peer, uint32_t tag) {
  do_send(data, bytes, peer, tag);
  return nullptr;
}

std::function<void()> Communicator::do_irecv(void* data, size_t bytes, int peer, uint32_t tag) {
  do_recv(data, bytes, peer, tag);
  return nullptr;
}

void Communicator::recv(void* data, size_t bytes, int peer, uint32_t tag) {
  run("recv", [&] {
    if (peer < 0 || peer >= size() || peer == rank_) throw Error("recv from invalid peer " + std::to_string(peer));
    do_recv(data, bytes, peer, tag);
  });
}

void Communicator::send_recv(const void* send_data, size_t send_bytes, int send_peer, uint32_t send_tag,
                             void* recv_data, size_t recv_bytes, int recv_peer, uint32_t recv_tag) {
  run("send_recv", [&] {
    for (int peer : {send_peer, recv_peer})
      if (peer < 0 || peer >= size() || peer == rank_) throw Error("send_recv with invalid peer " + std::to_string(peer));
    do_send_recv(send_data, send_bytes, send_peer, send_tag, recv_data, recv_bytes, recv_peer, recv_tag);
  });
}

namespace {
// The ring steps' tag, apart from the pipeline transfers' ((kind + 1)·2^24 + message number).
constexpr uint32_t kRingTag = 0x7F000000u;

std::vector<size_t> chunk_offsets(const std::vector<int64_t>& counts) {
  std::vector<size_t> at(counts.size() + 1, 0);
  for (size_t p = 0; p < counts.size(); ++p) at[p + 1] = at[p] + static_cast<size_t>(counts[p]);
  return at;
}
}  // namespace

void Communicator::all_gather_v(const float* send, float* recv, const std::vector<int64_t>& counts) {
  run("all_gather_v", [&] {
    const int n = size();
    if (static_cast<int>(counts.size()) != n) throw Error("all_gather_v: " + std::to_string(counts.size()) + " counts for " + std::to_string(n) + " ranks");
    const std::vector<size_t> at = chunk_offsets(counts);
    std::copy(send, send + counts[static_cast<size_t>(rank_)], recv + at[static_cast<size_t>(rank_)]);
    // Step s: pass on the chunk received at step s−1 (own at s = 0), take the previous rank's.
    for (int s = 0; s + 1 < n; ++s) {
      const size_t out = static_cast<size_t>(((rank_ - s) % n + n) % n), in = static_cast<size_t>(((rank_ - s - 1) % n + n) % n);
      do_send_recv(recv + at[out], static_cast<size_t>(counts[out]) * sizeof(float), (rank_ + 1) % n, kRingTag,
                   recv + at[in], static_cast<size_t>(counts[in]) * sizeof(float), (rank_ + n - 1) % n, kRingTag);
    }
  });
}

void Communicator::reduce_scatter_sum_v(const float* send, float* recv, const std::vector<int64_t>& counts) {
  run("reduce_scatter_sum_v", [&] {
    const int n = size();
    if (static_cast<int>(counts.size()) != n) throw Error("reduce_scatter_sum_v: " + std::to_string(counts.size()) + " counts for " + std::to_string(n) + " ranks");
    const std::vector<size_t> at = chunk_offsets(counts);
    std::vector<float> acc(send, send + at.back()), part;
    // Step s: send the partial sum of chunk rank−s−1, add the previous rank's partial of chunk
    // rank−s−2; after n−1 steps chunk rank() holds every rank's term.
    for (int s = 0; s + 1 < n; ++s) {
      const size_t out = static_cast<size_t>(((rank_ - s - 1) % n + n) % n), in = static_cast<size_t>(((rank_ - s - 2) % n + n) % n);
      part.resize(static_cast<size_t>(counts[in]));
      do_send_recv(acc.data() + at[out], static_cast<size_t>(counts[out]) * sizeof(float), (rank_ + 1) % n, kRingTag,
                   part.data(), part.size() * sizeof(float), (rank_ + n - 1) % n, kRingTag);
      for (size_t i = 0; i < part.size(); ++i) acc[at[in] + i] += part[i];
    }
    const size_t mine = static_cast<size_t>(rank_);
    std::copy(acc.begin() + static_cast<std::ptrdiff_t>(at[mine]), acc.begin() + static_cast<std::ptrdiff_t>(at[mine + 1]), recv);
  });
}

std::vector<int64_t> Communicator::exchange_counts(const std::vector<int64_t>& send_counts) {
  std::vector<int64_t> ones(static_cast<size_t>(size()), 1);
  std::vector<int64_t> recv_counts(static_cast<size_t>(size()), 0);
  all_to_all_v(send_counts.data(), ones, recv_counts.data(), ones, sizeof(int64_t));
  return recv_counts;
}

std::unique_ptr<Communicator> Communicator::sub_group(const std::vector<int>& members, const std::string& name) {
  std::unique_ptr<Communicator> out;
  run("sub_group", [&] {
    std::vector<int> sorted = members;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      throw Error("sub_group '" + name + "': repeated member");
    for (int m : members)
      if (m < 0 || m >= size()) throw Error("sub_group '" + name + "': member " + std::to_string(m) + " is not in the group");
    const auto self = std::find(members.begin(), members.end(), rank_);
    if (self == members.end()) throw Error("sub_group '" + name + "': this rank is not a member");
    // (name, members) plus how often this rank made that same group: identical on every member,
    // whatever other groups each member made in between.
    std::string key = name_ + "/" + name + ":";
    for (int m : members) key += std::to_string(world_ranks_[static_cast<size_t>(m)]) + ",";
    const int seq = sub_groups_created_[key]++;
    key += '#';
    key += std::to_string(seq);
    out = do_sub_group(members, static_cast<int>(self - members.begin()), name, key);
  });
  return out;
}

CommHandle Communicator::all_to_all_v_async(const void* send, std::vector<int64_t> send_counts, void* recv,
                                            std::vector<int64_t> recv_counts, size_t elem_bytes) {
  check_counts(send_counts, size(), "send_counts");
  check_counts(recv_counts, size(), "recv_counts");
  return run_async("all_to_all_v", [=, this] { do_all_to_all_v(send, send_counts, recv, recv_counts, elem_bytes); });
}

CommHandle Communicator::all_to_all_blocks_async(const void* send, Blocks send_blocks, void* recv, Blocks recv_blocks,
                                                 size_t elem_bytes) {
  check_blocks(send_blocks, recv_blocks);
  return run_async("all_to_all_blocks", [=, this, out = std::move(send_blocks), in = std::move(recv_blocks)] {
    do_all_to_all_blocks(send, out, recv, in, elem_bytes);
  });
}

CommHandle Communicator::all_reduce_sum_async(float* data, size_t count) {
  return run_async("all_reduce(sum, float)", [=, this] { do_all_reduce_sum_f32(data, count); });
}

CommHandle Communicator::all_reduce_sum_async(double* data, size_t count) {
  return run_async("all_reduce(sum, double)", [=, this] { do_all_reduce_sum_f64(data, count); });
}

}  // namespace moe::rt::comm
