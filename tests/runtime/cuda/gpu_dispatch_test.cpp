// The NCCL communicator and the CUDA expert-parallel dispatcher on real devices (label gpu):
//   - one rank (any GPU): the all-to-all-v's self block, and the dispatcher's to_experts /
//     to_local round trip with random counts (unused experts included), against the host plan;
//   - one rank per GPU, threads in this process (needs ≥ 2 GPUs: NCCL refuses two ranks on one
//     device, so a one-GPU machine skips it with that reason): every row reaches the rank holding
//     its expert, expert-major, and comes back to its source position.
#include <chrono>
#include <random>
#include <thread>

#include "cuda_a2a_dispatcher.h"
#include "gpu_test_util.h"
#include "store_client.h"
#include "store_server.h"
#include "stream.h"

namespace moe::rt::cuda::test {
namespace {

// Row values that name their source: rank·1000 + position, plus column / 64 (exact in fp32).
float row_value(int src, int64_t pos, int64_t c) { return static_cast<float>(src * 1000 + pos) + c / 64.0f; }

std::vector<int64_t> rank_counts(int rank, int64_t E) {
  std::mt19937_64 r(1000 + rank);
  std::vector<int64_t> c(E);
  for (int64_t e = 0; e < E; ++e) c[e] = e == 1 ? 0 : static_cast<int64_t>(r() % 9);  // expert 1 unused
  return c;
}

// One rank's part: plan, move rows to the experts, check, move them back, check. Returns "" or why not.
std::string run_rank(std::shared_ptr<comm::StoreClient> store, int rank, int P, int64_t E, int64_t d) {
  try {
    MOE_CUDA_CHECK(cudaSetDevice(rank));
    auto nccl = NcclCommunicator::create_world(store, rank, P, rank);
    Stream stream;
    CudaA2aDispatcher<float> disp(*nccl, E, stream.get());
    const auto counts = rank_counts(rank, E);
    std::vector<float> local;
    std::vector<int64_t> local_expert;
    for (int64_t e = 0; e < E; ++e)
      for (int64_t r = 0; r < counts[e]; ++r) {
        for (int64_t c = 0; c < d; ++c) local.push_back(row_value(rank, static_cast<int64_t>(local_expert.size()), c));
        local_expert.push_back(e);
      }
    const EpExchangePlan& plan = disp.plan(counts);
    const int64_t L = E / P, R = plan.received_rows();
    // Expected expert-major rows: local expert i, from ranks 0..P-1, in their order.
    std::vector<float> expected;
    for (int64_t i = 0; i < L; ++i)
      for (int p = 0; p < P; ++p) {
        const auto pc = rank_counts(p, E);
        int64_t pos = 0;
        for (int64_t e = 0; e < E; ++e)
          for (int64_t r = 0; r < pc[e]; ++r, ++pos)
            if (e == rank * L + i)
              for (int64_t c = 0; c < d; ++c) expected.push_back(row_value(p, pos, c));
      }
    if (static_cast<int64_t>(expected.size()) != R * d) return "received " + std::to_string(R) + " rows, expected " + std::to_string(expected.size() / d);
    DeviceBuffer<float> dlocal(std::max<size_t>(local.size(), 1)), experts(std::max<int64_t>(R * d, 1)),
        back(std::max<size_t>(local.size(), 1));
    if (!local.empty())
      MOE_CUDA_CHECK(cudaMemcpy(dlocal.data(), local.data(), local.size() * 4, cudaMemcpyHostToDevice));
    fill(experts.data(), NAN, static_cast<int64_t>(experts.size()), stream.get());
    fill(back.data(), NAN, static_cast<int64_t>(back.size()), stream.get());
    disp.to_experts(dlocal.data(), experts.data(), d);
    MOE_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    std::vector<float> got(static_cast<size_t>(R * d));
    if (R > 0) MOE_CUDA_CHECK(cudaMemcpy(got.data(), experts.data(), got.size() * 4, cudaMemcpyDeviceToHost));
    if (got != expected) return "rank " + std::to_string(rank) + ": expert-major rows differ";
    disp.to_local(experts.data(), back.data(), d);
    MOE_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    std::vector<float> returned(local.size());
    if (!local.empty()) MOE_CUDA_CHECK(cudaMemcpy(returned.data(), back.data(), local.size() * 4, cudaMemcpyDeviceToHost));
    if (returned != local) return "rank " + std::to_string(rank) + ": rows did not come back to their positions";
    if (nccl->take_a2a_timings().empty()) return "rank " + std::to_string(rank) + ": no a2a timings recorded";
    return "";
  } catch (const std::exception& e) {
    return std::string("rank ") + std::to_string(rank) + ": " + e.what();
  }
}

TEST(GpuNccl, DispatcherRoundTripOnOneRank) {
  MOE_REQUIRE_GPU();
  comm::StoreServer server("127.0.0.1", 0, 0);
  auto store = std::make_shared<comm::StoreClient>("127.0.0.1", server.port(), std::chrono::seconds(10));
  EXPECT_EQ(run_rank(store, 0, 1, 6, 40), "");
}

TEST(GpuNccl, DispatcherBetweenGpusOneRankEach) {
  MOE_REQUIRE_GPU();
  int n = 0;
  MOE_CUDA_CHECK(cudaGetDeviceCount(&n));
  if (n < 2) GTEST_SKIP() << "needs 2 GPUs (NCCL runs one rank per GPU), found " << n;
  const int P = std::min(n, 4);
  comm::StoreServer server("127.0.0.1", 0, 0);
  std::vector<std::string> result(P);
  std::vector<std::thread> threads;
  for (int r = 0; r < P; ++r)
    threads.emplace_back([&, r] {
      auto store = std::make_shared<comm::StoreClient>("127.0.0.1", server.port(), std::chrono::seconds(10));
      result[r] = run_rank(store, r, P, 4 * P, 24);
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < P; ++r) EXPECT_EQ(result[r], "") << "rank " << r;
}

}  // namespace
}  // namespace moe::rt::cuda::test
