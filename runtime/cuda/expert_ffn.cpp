// The expert bank's nine GEMMs and its SwiGLU (see expert_ffn.h).
#include "expert_ffn.h"

#include <cuda_bf16.h>

#include "kernels.h"

namespace moe::rt::cuda {

template <typename T>
ExpertFfnPaths expert_ffn_forward(Blas& blas, const ExpertBank<T>& w, const T* x, const std::vector<int64_t>& offsets,
                                  const ExpertActivations<T>& a, T* y, bool allow_grouped) {
  ExpertFfnPaths paths;
  const int64_t rows = offsets.back();
  paths.forward = gemm_grouped(blas, plan_expert_gemm(ExpertGemm::fwd_h1, offsets, w.d, w.f), x, w.w1, a.h1, allow_grouped);
  gemm_grouped(blas, plan_expert_gemm(ExpertGemm::fwd_h3, offsets, w.d, w.f), x, w.w3, a.h3, allow_grouped);
  swiglu_forward(a.act, a.h1, a.h3, rows * w.f, blas.stream());
  gemm_grouped(blas, plan_expert_gemm(ExpertGemm::fwd_y, offsets, w.d, w.f), a.act, w.w2, y, allow_grouped);
  return paths;
}

template <typename T>
ExpertFfnPaths expert_ffn_backward(Blas& blas, const ExpertBank<T>& w, const ExpertBankGrads& g, const T* x,
                                   const std::vector<int64_t>& offsets, const ExpertActivations<T>& a, const T* dy,
                                   T* dact, T* dx, bool allow_grouped) {
  ExpertFfnPaths paths;
  const int64_t rows = offsets.back(), d = w.d, f = w.f;
  if (rows == 0) return paths;
  paths.backward_data =
      gemm_grouped(blas, plan_expert_gemm(ExpertGemm::bwd_dact, offsets, d, f), dy, w.w2, dact, allow_grouped);
  paths.backward_weight =
      gemm_grouped(blas, plan_expert_gemm(ExpertGemm::bwd_dw2, offsets, d, f), dy, a.act, g.w2, allow_grouped);
  // In place: dh1 → h1, dh3 → h3 (each element is read before it is written).
  swiglu_backward(a.h1, a.h3, dact, a.h1, a.h3, rows * f, blas.stream());
  gemm_grouped(blas, plan_expert_gemm(ExpertGemm::bwd_dx1, offsets, d, f), a.h1, w.w1, dx, allow_grouped);
  gemm_grouped(blas, plan_expert_gemm(ExpertGemm::bwd_dx3, offsets, d, f), a.h3, w.w3, dx, allow_grouped);
  gemm_grouped(blas, plan_expert_gemm(ExpertGemm::bwd_dw1, offsets, d, f), a.h1, x, g.w1, allow_grouped);
  gemm_grouped(blas, plan_expert_gemm(ExpertGemm::bwd_dw3, offsets, d, f), a.h3, x, g.w3, allow_grouped);
  return paths;
}

template ExpertFfnPaths expert_ffn_forward<float>(Blas&, const ExpertBank<float>&, const float*,
                                                  const std::vector<int64_t>&, const ExpertActivations<float>&, float*,
                                                  bool);
template ExpertFfnPaths expert_ffn_forward<bf16>(Blas&, const ExpertBank<bf16>&, const bf16*,
                                                 const std::vector<int64_t>&, const ExpertActivations<bf16>&, bf16*,
                                                 bool);
template ExpertFfnPaths expert_ffn_backward<float>(Blas&, const ExpertBank<float>&, const ExpertBankGrads&,
                                                   const float*, const std::vector<int64_t>&,
                                                   const ExpertActivations<float>&, const float*, float*, float*, bool);
template ExpertFfnPaths expert_ffn_backward<bf16>(Blas&, const ExpertBank<bf16>&, const ExpertBankGrads&, const bf16*,
                                                  const std::vector<int64_t>&, const ExpertActivations<bf16>&,
                                                  const bf16*, bf16*, bf16*, bool);

}  // namespace moe::rt::cuda
