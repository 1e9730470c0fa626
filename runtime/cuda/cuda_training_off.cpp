// run_cuda_training in a build without CUDA (see cuda_training.h): a clear one-line refusal.
#include "cuda_training.h"

#include "error.h"

namespace moe::rt::cuda {

bool cuda_backend_built() { return false; }

CudaTrainResult run_cuda_training(const JobSpec&, const CudaTrainOptions&) {
  throw Error("runtime.backend=cuda: this moe-runtime was built without CUDA");
}

}  // namespace moe::rt::cuda
