#pragma once
// Checked calls: every CUDA runtime, cuBLAS and NCCL call goes through one of these macros, which
// throw moe::Error with the library, the code and its name, the file, the line and the call text.
//   MOE_CUDA_CHECK(cudaMalloc(&p, n));  MOE_CUBLAS_CHECK(cublasGemmEx(...));  MOE_NCCL_CHECK(ncclSend(...));
//   MOE_KERNEL_CHECK();  after a launch: cudaGetLastError (launch configuration errors).
#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace moe::rt::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t code, const char* file, int line, const char* call);
[[noreturn]] void throw_cublas_error(cublasStatus_t code, const char* file, int line, const char* call);
[[noreturn]] void throw_nccl_error(int code, const char* name, const char* file, int line, const char* call);

// Whether a usable GPU is present: any error of cudaGetDeviceCount (35 without a driver) is "no".
bool gpu_available();

}  // namespace moe::rt::cuda

#define MOE_CUDA_CHECK(call)                                                                        \
  do {                                                                                              \
    const cudaError_t moe_status_ = (call);                                                         \
    if (moe_status_ != cudaSuccess) ::moe::rt::cuda::throw_cuda_error(moe_status_, __FILE__, __LINE__, #call); \
  } while (0)

#define MOE_CUBLAS_CHECK(call)                                                                        \
  do {                                                                                                \
    const cublasStatus_t moe_status_ = (call);                                                        \
    if (moe_status_ != CUBLAS_STATUS_SUCCESS)                                                         \
      ::moe::rt::cuda::throw_cublas_error(moe_status_, __FILE__, __LINE__, #call);                    \
  } while (0)

#define MOE_KERNEL_CHECK() MOE_CUDA_CHECK(cudaGetLastError())
