#pragma once
// cuBLAS behind the runtime's row-major GEMM contract (gemm_plan.h maps the arguments):
//   gemm         one product, inputs TA (float or bf16), output TC (TA, or float for weight grads)
//   gemm_strided a strided batch (capacity-mode experts, attention heads)
//   gemm_grouped the expert FFN's per-expert products: strided-batched when the plan is uniform
//                (capacity mode), cublasGemmGroupedBatchedEx otherwise (dropless), a loop of
//                cublasGemmEx when the output type differs from the inputs (bf16 → fp32 grads).
// fp32 runs in true fp32 (CUBLAS_COMPUTE_32F, no TF32) so results match the CPU twin to 1e-5;
// bf16 inputs accumulate in fp32.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <vector>

#include "device_allocator.h"
#include "gemm_plan.h"

namespace moe::rt::cuda {

class Blas {
 public:
  Blas();
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  cublasHandle_t get() const { return handle_; }
  void set_stream(cudaStream_t s);
  cudaStream_t stream() const { return stream_; }
  DeviceBuffer<const void*>& pointer_scratch() { return pointers_; }

 private:
  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer<const void*> pointers_;  // grouped GEMM pointer arrays
  DeviceBuffer<char> workspace_;
};

template <typename TA, typename TC>
void gemm(Blas& blas, const RowMajorGemm& g, float alpha, const TA* A, const TA* B, float beta, TC* C);

template <typename TA, typename TC>
void gemm_strided(Blas& blas, const RowMajorGemm& g, float alpha, const TA* A, int64_t stride_a, const TA* B,
                  int64_t stride_b, float beta, TC* C, int64_t stride_c, int64_t batch);

// Which cuBLAS path gemm_grouped took last (for tests and the bench table).
enum class GroupedPath { none, strided_batched, grouped_batched, loop };
template <typename TA, typename TC>
GroupedPath gemm_grouped(Blas& blas, const GroupedGemmPlan& plan, const TA* A, const TA* B, TC* C,
                         bool allow_grouped = true);

}  // namespace moe::rt::cuda
