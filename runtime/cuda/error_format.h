#pragma once
// The one-line message of a failed CUDA, cuBLAS or NCCL call (cuda_check.h throws it as moe::Error):
//   "CUDA error 2 (cudaErrorMemoryAllocation: out of memory) at runtime/cuda/x.cu:42 in cudaMalloc(&p, n)"
// Plain C++ (no CUDA headers) so the format is unit-tested on machines without a GPU.
#include <string>

namespace moe::rt::cuda {

std::string format_call_error(const char* library, long code, const char* code_name, const char* detail,
                              const char* file, int line, const char* call);

}  // namespace moe::rt::cuda
