// run_cuda_training (see cuda_training.h): the checks before any device work, then the loop.
#include "cuda_training.h"

#include "cuda_check.h"
#include "error.h"

namespace moe::rt::cuda {

bool cuda_backend_built() { return true; }

CudaTrainResult run_cuda_training(const JobSpec& spec, const CudaTrainOptions& options) {
  check_cuda_training_spec(spec, options);
  if (!gpu_available()) throw Error("runtime.backend=cuda: no GPU found (cudaGetDeviceCount failed or found none)");
  throw Error("runtime.backend=cuda: the CUDA model is not implemented yet (docs/gpu.md)");
}

}  // namespace moe::rt::cuda
