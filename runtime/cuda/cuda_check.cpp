// Turns failed CUDA / cuBLAS / NCCL calls into moe::Error (see cuda_check.h).
#include "cuda_check.h"

#include "error.h"
#include "error_format.h"

namespace moe::rt::cuda {

void throw_cuda_error(cudaError_t code, const char* file, int line, const char* call) {
  throw Error(format_call_error("CUDA", static_cast<long>(code), cudaGetErrorName(code), cudaGetErrorString(code),
                                file, line, call));
}

void throw_cublas_error(cublasStatus_t code, const char* file, int line, const char* call) {
  throw Error(format_call_error("cuBLAS", static_cast<long>(code), cublasGetStatusName(code),
                                cublasGetStatusString(code), file, line, call));
}

void throw_nccl_error(int code, const char* name, const char* file, int line, const char* call) {
  throw Error(format_call_error("NCCL", code, name, "", file, line, call));
}

bool gpu_available() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later checks start clean
    return false;
  }
  return count > 0;
}

}  // namespace moe::rt::cuda
