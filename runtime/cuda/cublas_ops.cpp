// cuBLAS calls for the row-major GEMM contract (see cublas_ops.h).
#include "cublas_ops.h"

#include <cuda_bf16.h>

#include "cuda_check.h"

namespace moe::rt::cuda {

namespace {

template <typename T>
cudaDataType_t dtype();
template <>
cudaDataType_t dtype<float>() { return CUDA_R_32F; }
template <>
cudaDataType_t dtype<__nv_bfloat16>() { return CUDA_R_16BF; }

cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

}  // namespace

Blas::Blas() {
  MOE_CUBLAS_CHECK(cublasCreate(&handle_));
  // cuBLAS wants a workspace per stream; give it one from the caching allocator (32 MiB: Hopper).
  workspace_.resize(size_t{32} << 20);
  MOE_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_.data(), workspace_.bytes()));
  MOE_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
}
Blas::~Blas() {
  if (handle_) (void)cublasDestroy(handle_);
}
void Blas::set_stream(cudaStream_t s) {
  stream_ = s;
  MOE_CUBLAS_CHECK(cublasSetStream(handle_, s));
}

template <typename TA, typename TC>
void gemm(Blas& blas, const RowMajorGemm& g, float alpha, const TA* A, const TA* B, float beta, TC* C) {
  if (g.M == 0 || g.N == 0) return;
  const CublasGemm c = to_cublas(g);
  MOE_CUBLAS_CHECK(cublasGemmEx(blas.get(), op(c.trans_a), op(c.trans_b), c.m, c.n, c.k, &alpha, B, dtype<TA>(), c.lda,
                                A, dtype<TA>(), c.ldb, &beta, C, dtype<TC>(), c.ldc, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
}

template <typename TA, typename TC>
void gemm_strided(Blas& blas, const RowMajorGemm& g, float alpha, const TA* A, int64_t stride_a, const TA* B,
                  int64_t stride_b, float beta, TC* C, int64_t stride_c, int64_t batch) {
  if (g.M == 0 || g.N == 0 || batch == 0) return;
  const CublasGemm c = to_cublas(g);
  MOE_CUBLAS_CHECK(cublasGemmStridedBatchedEx(blas.get(), op(c.trans_a), op(c.trans_b), c.m, c.n, c.k, &alpha, B,
                                              dtype<TA>(), c.lda, stride_b, A, dtype<TA>(), c.ldb, stride_a, &beta, C,
                                              dtype<TC>(), c.ldc, stride_c, static_cast<int>(batch),
                                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template <typename TA, typename TC>
GroupedPath gemm_grouped(Blas& blas, const GroupedGemmPlan& plan, const TA* A, const TA* B, TC* C,
                         bool allow_grouped) {
  const size_t G = plan.groups();
  if (G == 0) return GroupedPath::none;
  const float alpha = 1.0f, beta = plan.beta;
  int64_t sa = 0, sb = 0, sc = 0;
  if (plan.uniform(&sa, &sb, &sc)) {
    const CublasGemm& c = plan.gemm[0];
    MOE_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        blas.get(), op(c.trans_a), op(c.trans_b), c.m, c.n, c.k, &alpha, B + plan.b_offset[0], dtype<TA>(), c.lda, sb,
        A + plan.a_offset[0], dtype<TA>(), c.ldb, sa, &beta, C + plan.c_offset[0], dtype<TC>(), c.ldc, sc,
        static_cast<int>(G), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return GroupedPath::strided_batched;
  }
  if (!allow_grouped || dtype<TA>() != dtype<TC>()) {
    for (size_t i = 0; i < G; ++i) {
      const CublasGemm& c = plan.gemm[i];
      MOE_CUBLAS_CHECK(cublasGemmEx(blas.get(), op(c.trans_a), op(c.trans_b), c.m, c.n, c.k, &alpha,
                                    B + plan.b_offset[i], dtype<TA>(), c.lda, A + plan.a_offset[i], dtype<TA>(), c.ldb,
                                    &beta, C + plan.c_offset[i], dtype<TC>(), c.ldc, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
    }
    return GroupedPath::loop;
  }
  // One group per expert (group_size 1): the shapes differ, the pointer arrays live on the device.
  std::vector<cublasOperation_t> ta(G), tb(G);
  std::vector<int> m(G), n(G), k(G), lda(G), ldb(G), ldc(G), size(G, 1);
  std::vector<float> alphas(G, alpha), betas(G, beta);
  std::vector<const void*> ptrs(3 * G);
  for (size_t i = 0; i < G; ++i) {
    const CublasGemm& c = plan.gemm[i];
    ta[i] = op(c.trans_a), tb[i] = op(c.trans_b);
    m[i] = c.m, n[i] = c.n, k[i] = c.k, lda[i] = c.lda, ldb[i] = c.ldb, ldc[i] = c.ldc;
    ptrs[i] = B + plan.b_offset[i];           // cuBLAS "A"
    ptrs[G + i] = A + plan.a_offset[i];       // cuBLAS "B"
    ptrs[2 * G + i] = C + plan.c_offset[i];
  }
  auto& dev = blas.pointer_scratch();
  if (dev.size() < 3 * G) dev.resize(3 * G);
  // Pageable source: the copy is complete (staged) when the call returns, so ptrs may go.
  MOE_CUDA_CHECK(cudaMemcpyAsync(dev.data(), ptrs.data(), 3 * G * sizeof(void*), cudaMemcpyHostToDevice, blas.stream()));
  const void* const* d_a = dev.data();
  const void* const* d_b = dev.data() + G;
  void* const* d_c = const_cast<void* const*>(dev.data() + 2 * G);
  MOE_CUBLAS_CHECK(cublasGemmGroupedBatchedEx(blas.get(), ta.data(), tb.data(), m.data(), n.data(), k.data(),
                                              alphas.data(), d_a, dtype<TA>(), lda.data(), d_b, dtype<TA>(),
                                              ldb.data(), betas.data(), d_c, dtype<TC>(), ldc.data(),
                                              static_cast<int>(G), size.data(), CUBLAS_COMPUTE_32F));
  return GroupedPath::grouped_batched;
}

#define MOE_INSTANTIATE(TA, TC)                                                                                  \
  template void gemm<TA, TC>(Blas&, const RowMajorGemm&, float, const TA*, const TA*, float, TC*);               \
  template void gemm_strided<TA, TC>(Blas&, const RowMajorGemm&, float, const TA*, int64_t, const TA*, int64_t, \
                                     float, TC*, int64_t, int64_t);                                              \
  template GroupedPath gemm_grouped<TA, TC>(Blas&, const GroupedGemmPlan&, const TA*, const TA*, TC*, bool);
MOE_INSTANTIATE(float, float)
MOE_INSTANTIATE(__nv_bfloat16, __nv_bfloat16)
MOE_INSTANTIATE(__nv_bfloat16, float)

}  // namespace moe::rt::cuda
