// Host-side logic of the CUDA backend, run on every machine (no GPU needed): the error format,
// the caching allocator's bookkeeping, the cuBLAS argument mapping and the expert FFN's grouped
// GEMM plans (executed with a column-major reference GEMM and compared with the CPU expert bank),
// the NCCL all-to-all schedule (executed between simulated ranks), the layer's buffer plan and the
// jitter hash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "a2a_schedule.h"
#include "allocator_book.h"
#include "buffer_plan.h"
#include "error.h"
#include "error_format.h"
#include "gemm.h"
#include "gemm_plan.h"
#include "jitter_hash.h"
#include "swiglu.h"
#include "swiglu_experts.h"

namespace moe::rt::cuda {
namespace {

TEST(ErrorFormat, NamesLibraryCodeFileLineAndCall) {
  const std::string m = format_call_error("CUDA", 2, "cudaErrorMemoryAllocation", "out of memory",
                                          "/work/main/runtime/cuda/x.cu", 42, "cudaMalloc(&p, n)");
  EXPECT_EQ(m, "CUDA error 2 (cudaErrorMemoryAllocation: out of memory) at runtime/cuda/x.cu:42 in cudaMalloc(&p, n)");
  EXPECT_EQ(m.find('\n'), std::string::npos);
  const std::string n = format_call_error("NCCL", 3, "internal error", "", "other.cpp", 7, "ncclSend(a)");
  EXPECT_EQ(n, "NCCL error 3 (internal error) at other.cpp:7 in ncclSend(a)");
}

// --- allocator ------------------------------------------------------------------------------------
struct HostRaw {
  int64_t limit = INT64_MAX, used = 0;
  std::map<void*, size_t> live;
  AllocatorBook make() {
    return AllocatorBook(
        [this](size_t n) -> void* {
          if (used + static_cast<int64_t>(n) > limit) return nullptr;
          void* p = std::malloc(n);
          live[p] = n, used += static_cast<int64_t>(n);
          return p;
        },
        [this](void* p) {
          used -= static_cast<int64_t>(live.at(p));
          live.erase(p);
          std::free(p);
        });
  }
};

TEST(AllocatorBook, SizeClasses) {
  EXPECT_EQ(AllocatorBook::size_class(0), 0u);
  EXPECT_EQ(AllocatorBook::size_class(1), 512u);
  EXPECT_EQ(AllocatorBook::size_class(513), 1024u);
  EXPECT_EQ(AllocatorBook::size_class(1 << 20), size_t{1} << 20);
  EXPECT_EQ(AllocatorBook::size_class((1 << 20) + 1), size_t{2} << 20);
  EXPECT_EQ(AllocatorBook::size_class((size_t{5} << 20) + 3), size_t{6} << 20);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) {
    const size_t n = rng() % (size_t{64} << 20) + 1, c = AllocatorBook::size_class(n);
    EXPECT_GE(c, n);
    EXPECT_LT(c - n, std::max<size_t>(n, size_t{2} << 20));  // waste < the request or < 2 MiB
  }
}

TEST(AllocatorBook, ReusesFreedBlocksOfTheSameClass) {
  HostRaw raw;
  {
    AllocatorBook book = raw.make();
    void* a = book.allocate(1000);
    void* b = book.allocate(3u << 20);
    EXPECT_EQ(book.stats().raw_allocs, 2);
    EXPECT_EQ(book.block_size(a), 1024u);
    book.release(a);
    EXPECT_EQ(book.stats().cached_bytes, 1024);
    void* c = book.allocate(700);  // same class: the cached block, no raw call
    EXPECT_EQ(c, a);
    EXPECT_EQ(book.stats().raw_allocs, 2);
    EXPECT_EQ(book.stats().cache_hits, 1);
    void* d = book.allocate(100);  // another class: a new block
    EXPECT_NE(d, a);
    EXPECT_EQ(book.stats().raw_allocs, 3);
    EXPECT_EQ(book.stats().in_use_bytes, int64_t{1024 + (4 << 20) + 512});
    book.release(b);
    book.release(c);
    book.release(d);
    EXPECT_EQ(book.stats().in_use_bytes, 0);
    EXPECT_EQ(book.stats().peak_in_use_bytes, int64_t{1024 + (4 << 20) + 512});
    EXPECT_EQ(raw.live.size(), 3u);  // cached, not returned
    book.empty_cache();
    EXPECT_EQ(raw.live.size(), 0u);
    EXPECT_EQ(book.stats().cached_bytes, 0);
  }
  EXPECT_EQ(raw.used, 0);
}

TEST(AllocatorBook, OutOfMemoryEmptiesTheCacheAndRetries) {
  HostRaw raw;
  raw.limit = 6 << 20;
  AllocatorBook book = raw.make();
  void* a = book.allocate(4 << 20);
  book.release(a);  // 4 MiB cached
  void* b = book.allocate(6 << 20);  // fits only after the cache is given back
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(book.stats().raw_frees, 1);
  EXPECT_THROW(book.allocate(2 << 20), Error);  // nothing left to give back
  try {
    book.allocate(2 << 20);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2097152 bytes"), std::string::npos) << e.what();
  }
  book.release(b);
}

TEST(AllocatorBook, RefusesForeignPointers) {
  HostRaw raw;
  AllocatorBook book = raw.make();
  int x = 0;
  EXPECT_THROW(book.release(&x), Error);
  void* a = book.allocate(10);
  book.release(a);
  EXPECT_THROW(book.release(a), Error);  // double free
}

// --- cuBLAS mapping ---------------------------------------------------------------------------------
// What cuBLAS computes (column-major): C = α·op(A)·op(B) + β·C, A is m×k after op.
void colmajor_gemm(const CublasGemm& g, double alpha, const double* A, const double* B, double beta, double* C) {
  for (int j = 0; j < g.n; ++j)
    for (int i = 0; i < g.m; ++i) {
      double acc = 0;
      for (int l = 0; l < g.k; ++l) {
        const double a = g.trans_a ? A[l + static_cast<int64_t>(i) * g.lda] : A[i + static_cast<int64_t>(l) * g.lda];
        const double b = g.trans_b ? B[j + static_cast<int64_t>(l) * g.ldb] : B[l + static_cast<int64_t>(j) * g.ldb];
        acc += a * b;
      }
      double& c = C[i + static_cast<int64_t>(j) * g.ldc];
      c = alpha * acc + beta * c;
    }
}

std::vector<double> random_vec(size_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

TEST(GemmPlan, RowMajorMapsToColumnMajorCublas) {
  std::mt19937_64 rng(7);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const int64_t M = 5, N = 7, K = 3, pad = 2;
      const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
      auto A = random_vec((ta ? K : M) * lda, rng), B = random_vec((tb ? N : K) * ldb, rng);
      auto C0 = random_vec(M * ldc, rng);
      auto ref = C0, got = C0;
      gemm_reference(ta, tb, M, N, K, 1.5, A.data(), lda, B.data(), ldb, 0.5, ref.data(), ldc);
      const CublasGemm c = to_cublas({bool(ta), bool(tb), M, N, K, lda, ldb, ldc});
      colmajor_gemm(c, 1.5, B.data(), A.data(), 0.5, got.data());  // cuBLAS "A" is our B
      EXPECT_LT(max_abs_diff(ref, got), 1e-12) << "trans_a " << ta << " trans_b " << tb;
    }
  EXPECT_THROW(to_cublas({false, false, int64_t{1} << 31, 4, 4, 4, 4, 4}), Error);
  EXPECT_THROW(to_cublas({false, false, 4, 8, 4, 4, 4, 8}), Error);  // ldb < N
}

// Runs the nine planned GEMMs of an expert bank with the column-major reference and compares
// forward and backward with the CPU expert bank (SwigluExperts<double>).
void check_expert_plans(const std::vector<int64_t>& offsets, int64_t d, int64_t f, std::mt19937_64& rng) {
  const int64_t E = static_cast<int64_t>(offsets.size()) - 1, R = offsets.back();
  auto w1 = random_vec(E * f * d, rng), w2 = random_vec(E * d * f, rng), w3 = random_vec(E * f * d, rng);
  auto x = random_vec(R * d, rng), dy = random_vec(R * d, rng);
  auto run = [&](ExpertGemm which, const double* a, const double* b, double* c) {
    const GroupedGemmPlan p = plan_expert_gemm(which, offsets, d, f);
    for (size_t i = 0; i < p.groups(); ++i)
      colmajor_gemm(p.gemm[i], 1.0, b + p.b_offset[i], a + p.a_offset[i], p.beta, c + p.c_offset[i]);
    return p;
  };
  std::vector<double> h1(R * f), h3(R * f), act(R * f), y(R * d, 0.0);
  run(ExpertGemm::fwd_h1, x.data(), w1.data(), h1.data());
  run(ExpertGemm::fwd_h3, x.data(), w3.data(), h3.data());
  swiglu_forward(act.data(), h1.data(), h3.data(), R * f);
  run(ExpertGemm::fwd_y, act.data(), w2.data(), y.data());
  std::vector<double> dact(R * f), dx(R * d, 0.0), g1(E * f * d, 0.1), g2(E * d * f, 0.1), g3(E * f * d, 0.1);
  run(ExpertGemm::bwd_dact, dy.data(), w2.data(), dact.data());
  run(ExpertGemm::bwd_dw2, dy.data(), act.data(), g2.data());
  std::vector<double> dh1(R * f), dh3(R * f);
  swiglu_backward(dh1.data(), dh3.data(), dact.data(), h1.data(), h3.data(), R * f);
  run(ExpertGemm::bwd_dx1, dh1.data(), w1.data(), dx.data());
  run(ExpertGemm::bwd_dx3, dh3.data(), w3.data(), dx.data());
  run(ExpertGemm::bwd_dw1, dh1.data(), x.data(), g1.data());
  run(ExpertGemm::bwd_dw3, dh3.data(), x.data(), g3.data());

  ExpertWeights<double> w;
  ExpertGrads<double> g;
  std::vector<double> r1(E * f * d, 0.1), r2(E * d * f, 0.1), r3(E * f * d, 0.1);
  for (int64_t i = 0; i < E; ++i) {
    w.w1.push_back(w1.data() + i * f * d), w.w2.push_back(w2.data() + i * d * f), w.w3.push_back(w3.data() + i * f * d);
    g.w1.push_back(r1.data() + i * f * d), g.w2.push_back(r2.data() + i * d * f), g.w3.push_back(r3.data() + i * f * d);
  }
  SwigluExperts<double> bank(d, f);
  std::vector<double> ry(R * d), rdx(R * d);
  bank.forward(w, x.data(), offsets, ry.data());
  bank.backward(w, g, dy.data(), rdx.data(), false);
  EXPECT_LT(max_abs_diff(y, ry), 1e-9);
  EXPECT_LT(max_abs_diff(dx, rdx), 1e-9);
  EXPECT_LT(max_abs_diff(g1, r1), 1e-9);
  EXPECT_LT(max_abs_diff(g2, r2), 1e-9);
  EXPECT_LT(max_abs_diff(g3, r3), 1e-9);
}

TEST(GemmPlan, DroplessExpertPlansMatchTheCpuBank) {
  std::mt19937_64 rng(11);
  check_expert_plans({0, 3, 3, 10, 11, 19}, 6, 5, rng);  // expert 1 has no rows
  const auto p = plan_expert_gemm(ExpertGemm::fwd_h1, {0, 3, 3, 10, 11, 19}, 6, 5);
  EXPECT_EQ(p.groups(), 4u);
  EXPECT_EQ(p.expert, (std::vector<int>{0, 2, 3, 4}));
  EXPECT_FALSE(p.uniform());
  EXPECT_EQ(p.beta, 0.0f);
  EXPECT_EQ(plan_expert_gemm(ExpertGemm::bwd_dw1, {0, 3}, 6, 5).beta, 1.0f);
  EXPECT_EQ(plan_expert_gemm(ExpertGemm::bwd_dx3, {0, 3}, 6, 5).beta, 1.0f);
}

TEST(GemmPlan, CapacityPlansAreUniformStridedBatches) {
  std::mt19937_64 rng(12);
  const std::vector<int64_t> offsets{0, 4, 8, 12};
  check_expert_plans(offsets, 5, 7, rng);
  for (ExpertGemm which : {ExpertGemm::fwd_h1, ExpertGemm::fwd_y, ExpertGemm::bwd_dw2, ExpertGemm::bwd_dw3}) {
    int64_t sa = 0, sb = 0, sc = 0;
    const auto p = plan_expert_gemm(which, offsets, 5, 7);
    ASSERT_TRUE(p.uniform(&sa, &sb, &sc)) << expert_gemm_name(which);
    EXPECT_EQ(p.groups(), 3u);
    EXPECT_EQ(sa, p.a_offset[1] - p.a_offset[0]);
    EXPECT_EQ(sc, p.c_offset[2] - p.c_offset[1]);
  }
  EXPECT_THROW(plan_expert_gemm(ExpertGemm::fwd_h1, {0, 4, 2}, 5, 7), Error);
  EXPECT_THROW(plan_expert_gemm(ExpertGemm::fwd_h1, {1, 4}, 5, 7), Error);
}

// --- NCCL schedule ----------------------------------------------------------------------------------
TEST(A2aSchedule, ExchangesEveryBlockBetweenSimulatedRanks) {
  std::mt19937_64 rng(3);
  for (int P : {1, 2, 3, 5, 8}) {
    // counts[s][r]: elements rank s sends to rank r (zeros included).
    std::vector<std::vector<int64_t>> counts(P, std::vector<int64_t>(P));
    for (auto& row : counts)
      for (auto& c : row) c = rng() % 3 == 0 ? 0 : static_cast<int64_t>(rng() % 7);
    const size_t eb = 4;
    std::vector<std::vector<char>> send(P), recv(P);
    std::vector<A2aSchedule> plans;
    for (int r = 0; r < P; ++r) {
      std::vector<int64_t> rc(P);
      for (int s = 0; s < P; ++s) rc[s] = counts[s][r];
      plans.push_back(plan_all_to_all(r, P, counts[r], rc, eb));
      send[r].resize(plans[r].send_bytes);
      for (auto& b : send[r]) b = static_cast<char>(rng());
      recv[r].assign(plans[r].recv_bytes, 0);
    }
    // Deliver: every posted send must meet exactly one posted recv of the same size.
    std::set<std::pair<int, int>> delivered;
    for (int s = 0; s < P; ++s) {
      const auto& ps = plans[s];
      std::memcpy(recv[s].data() + ps.self_recv_offset, send[s].data() + ps.self_send_offset, ps.self_bytes);
      for (const auto& t : ps.transfers) {
        EXPECT_NE(t.peer, s);
        EXPECT_TRUE(t.send_bytes > 0 || t.recv_bytes > 0);
        if (t.send_bytes == 0) continue;
        int matches = 0;
        for (const auto& u : plans[t.peer].transfers)
          if (u.peer == s && u.recv_bytes > 0) {
            ++matches;
            ASSERT_EQ(u.recv_bytes, t.send_bytes);
            std::memcpy(recv[t.peer].data() + u.recv_offset, send[s].data() + t.send_offset, t.send_bytes);
          }
        EXPECT_EQ(matches, 1);
        delivered.insert({s, t.peer});
      }
    }
    // Expected: recv[r] is the concatenation over s of s's block for r.
    for (int r = 0; r < P; ++r) {
      std::vector<char> expect;
      for (int s = 0; s < P; ++s) {
        int64_t off = 0;
        for (int q = 0; q < r; ++q) off += counts[s][q] * eb;
        expect.insert(expect.end(), send[s].begin() + off, send[s].begin() + off + counts[s][r] * eb);
        if (s != r) {
          EXPECT_EQ(delivered.count({s, r}) == 1, counts[s][r] > 0);
        }
      }
      EXPECT_EQ(recv[r], expect) << "P " << P << " rank " << r;
    }
  }
}

TEST(A2aSchedule, RingOrderAndErrors) {
  const auto s = plan_all_to_all(1, 4, {1, 1, 1, 1}, {1, 1, 1, 1}, 8);
  std::vector<int> peers;
  for (const auto& t : s.transfers) peers.push_back(t.peer);
  // Step i sends to rank+i and receives from rank−i; at i = 2 both are rank 3: one entry.
  EXPECT_EQ(peers, (std::vector<int>{2, 0, 3, 0, 2}));
  EXPECT_EQ(s.sends(), 3);
  EXPECT_EQ(s.recvs(), 3);
  EXPECT_EQ(s.self_bytes, 8);
  EXPECT_THROW(plan_all_to_all(0, 2, {1}, {1, 1}, 4), Error);
  EXPECT_THROW(plan_all_to_all(0, 2, {1, -1}, {1, 1}, 4), Error);
  EXPECT_THROW(plan_all_to_all(0, 2, {2, 1}, {1, 1}, 4), Error);
  EXPECT_THROW(plan_all_to_all(2, 2, {1, 1}, {1, 1}, 4), Error);
}

// --- buffer plan ------------------------------------------------------------------------------------
TEST(BufferPlan, AlignedDisjointAndSized) {
  MoeShape s{100, 64, 96, 8, 2, 0, false, 2};
  const BufferPlan p = plan_moe_buffers(s);
  EXPECT_EQ(s.expert_rows(), 200);
  for (size_t i = 0; i < p.entries.size(); ++i) {
    EXPECT_EQ(p.entries[i].offset % kArenaAlign, 0u) << p.entries[i].name;
    if (i > 0) {
      EXPECT_GE(p.entries[i].offset, p.entries[i - 1].offset + p.entries[i - 1].bytes);
    }
  }
  EXPECT_GE(p.total, p.entries.back().offset + p.entries.back().bytes);
  EXPECT_EQ(p.bytes_of("expert_in"), 200u * 64 * 2);
  EXPECT_EQ(p.bytes_of("h1"), 200u * 96 * 2);
  EXPECT_EQ(p.bytes_of("logits"), 100u * 8 * 4);
  MoeShape c = s;
  c.capacity = 30;  // capacity: E·C padded rows
  EXPECT_EQ(plan_moe_buffers(c).bytes_of("expert_in"), 240u * 64 * 2);
  MoeShape ec = c;
  ec.expert_choice = true;
  EXPECT_EQ(ec.assignments(), 240);
  EXPECT_THROW(plan_moe_buffers({0, 64, 96, 8, 2, 0, false, 2}), Error);
  EXPECT_THROW(plan_moe_buffers({10, 64, 96, 8, 2, 0, true, 2}), Error);  // expert choice without C
  EXPECT_THROW(p.offset_of("nope"), Error);
}

// --- jitter noise -----------------------------------------------------------------------------------
TEST(JitterHash, UniformInRangeAndSeeded) {
  const float eps = 0.1f;
  double sum = 0, lo = 2, hi = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const float u = jitter_noise(42, static_cast<uint64_t>(i), eps);
    ASSERT_GE(u, 1.0f - eps);
    ASSERT_LE(u, 1.0f + eps);
    sum += u, lo = std::min<double>(lo, u), hi = std::max<double>(hi, u);
  }
  EXPECT_NEAR(sum / n, 1.0, 1e-3);
  EXPECT_LT(lo, 1.0 - 0.99 * eps);
  EXPECT_GT(hi, 1.0 + 0.99 * eps);
  EXPECT_EQ(jitter_noise(42, 7, eps), jitter_noise(42, 7, eps));
  int same = 0;
  for (int i = 0; i < 1000; ++i) same += jitter_noise(42, i, eps) == jitter_noise(43, i, eps);
  EXPECT_LT(same, 10);
}

}  // namespace
}  // namespace moe::rt::cuda
