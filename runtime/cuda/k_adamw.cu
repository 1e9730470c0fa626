// Fused AdamW on fp32 master weights, optionally refreshing the bf16 compute copy
// (see kernels.h; CPU twin AdamW::step in runtime/model/optimizer.cpp, same float arithmetic).
#include <cmath>

#include "kernel_util.cuh"
#include "kernels.h"

namespace moe::rt::cuda {

namespace {

template <typename T>
__global__ void adamw_kernel(float* p, float* m, float* v, const float* g, T* copy, int64_t n, float b1, float b2,
                             float omb1, float omb2, float bc1, float bc2, float eps, float lr, float decay) {
  MOE_GRID_LOOP(j, n) {
    const float gj = g[j];
    const float mj = b1 * m[j] + omb1 * gj;
    const float vj = b2 * v[j] + omb2 * gj * gj;
    m[j] = mj, v[j] = vj;
    const float w = p[j] * decay - lr * (mj * bc1) / (sqrtf(vj * bc2) + eps);
    p[j] = w;
    if (copy) copy[j] = from_f<T>(w);
  }
}

}  // namespace

template <typename T>
void adamw_step(float* p, float* m, float* v, const float* g, T* copy, int64_t n, const AdamWStep& a, cudaStream_t s) {
  if (n <= 0) return;
  const double t = static_cast<double>(a.step);
  const auto bc1 = static_cast<float>(1.0 / (1.0 - std::pow(a.beta1, t)));
  const auto bc2 = static_cast<float>(1.0 / (1.0 - std::pow(a.beta2, t)));
  const auto omb1 = static_cast<float>(1.0 - a.beta1), omb2 = static_cast<float>(1.0 - a.beta2);
  const auto decay = static_cast<float>(1.0 - a.lr * a.weight_decay);
  adamw_kernel<<<grid_for(n, 256), 256, 0, s>>>(p, m, v, g, copy, n, static_cast<float>(a.beta1),
                                                static_cast<float>(a.beta2), omb1, omb2, bc1, bc2,
                                                static_cast<float>(a.eps), static_cast<float>(a.lr), decay);
  MOE_KERNEL_CHECK();
}

template void adamw_step<float>(float*, float*, float*, const float*, float*, int64_t, const AdamWStep&, cudaStream_t);
template void adamw_step<bf16>(float*, float*, float*, const float*, bf16*, int64_t, const AdamWStep&, cudaStream_t);

}  // namespace moe::rt::cuda
