#pragma once
// The MoE block on the GPU: the CUDA twin of MoeCompute (runtime/moe/moe_compute.h), same steps,
// same routing decisions, same losses:
//   router (x̃·Wᵀ → softmax/sigmoid + logsumexp; jitter from a counter hash in training)
//   → selection (top-k with groups, bias and renormalisation, then capacity with position or
//     probability drops — or expert choice)
//   → permute (histogram → scan → stable sort by expert → gather; moe_layer_plan.h's layouts)
//   → experts (expert_ffn.h: grouped GEMM when dropless, strided-batched with a capacity)
//   → combine (deterministic token-major weighted sum; expert choice: weighted scatter-add)
//   + shared experts (one SwiGLU of width n·d_shared over every token),
// and backward through all of it, with the aux and z losses' gradients into the router.
// T is the activation dtype (float or bf16); router state, gate weights' gradients and all
// parameter gradients are fp32. Weights are device views in the compute dtype: the gate [E×d],
// the experts as three contiguous [E×…] banks (ExpertBank), the shared expert as a bank of one.
// Everything is queued on blas.stream(); forward() synchronises once (the per-expert counts come
// back to the host for the losses, the stats and, in dropless mode, the grouped GEMM's shapes).
// The layer keeps what backward needs from the last forward (one micro-batch), including a copy
// of x, so the caller may reuse x's buffer.
#include <cstdint>
#include <memory>
#include <vector>

#include "cublas_ops.h"
#include "device_allocator.h"
#include "expert_ffn.h"
#include "kernels.h"
#include "moe_layer.h"
#include "moe_layer_plan.h"

namespace moe::rt::cuda {

template <typename T>
struct CudaMoeWeights {
  const T* gate = nullptr;  // [E×d]
  ExpertBank<T> experts;    // all E experts (d, f = d_expert)
  ExpertBank<T> shared;     // f = d_shared; unused when the config has no shared experts
};

struct CudaMoeGrads {  // fp32, accumulated (+=)
  float* gate = nullptr;
  ExpertBankGrads experts;
  ExpertBankGrads shared;
};

struct CudaMoeOptions {
  bool training = true;         // jitter only in training
  bool force_dropless = false;  // eval: dropless routing, no noise
  double loss_scale = 1.0;      // weight of the aux and z losses in what backward() differentiates
  uint64_t jitter_seed = 0;     // the counter hash's seed (a new one per step and layer)
  bool allow_grouped_gemm = true;  // false: a loop of cublasGemmEx (the bench's comparison)
};

template <typename T>
class CudaMoeLayer {
 public:
  CudaMoeLayer(const MoeConfig& config, Blas& blas);
  ~CudaMoeLayer();

  // y [T×d] = MoE(x [T×d]); `bias` is the device selection bias [E] (null: zeros).
  void forward(const CudaMoeWeights<T>& w, const T* x, T* y, int64_t tokens, const CudaMoeOptions& options,
               const float* bias = nullptr);
  // dx [T×d] (overwritten) and grads (+=) from dy [T×d].
  void backward(const CudaMoeWeights<T>& w, const CudaMoeGrads& g, const T* dy, T* dx);

  // Routing of the last forward (counts and dropped as the CPU layer reports them, the losses).
  // tokens_without_expert is read back from the device on this call.
  const RoutingStats& stats();
  const MoeLayerPlan& plan() const { return plan_; }
  const MoeConfig& config() const { return config_; }
  ExpertFfnPaths expert_paths() const { return paths_; }

  // Device views of the last forward (tests compare them with the CPU layer).
  const float* scores() const;
  const int32_t* assignment_expert() const;
  const int32_t* assignment_route() const;
  const float* gate_weights() const;

  // DeepSeek-V3 aux-loss-free balancing on the device bias [E]: bias += rate·sign(mean − load).
  void update_balancing_bias(float* bias, const std::vector<int64_t>& load);

 private:
  template <typename V>
  V* buf(const char* name) const;

  MoeConfig config_;
  Blas& blas_;
  MoeLayerPlan plan_;
  BufferPlan buffers_;
  DeviceBuffer<char> arena_;
  DeviceBuffer<T> x_, noisy_, dnoisy_, shared_h1_, shared_h3_, shared_act_, shared_dact_, dlogits_t_;
  DeviceBuffer<float> noise_, dlogits_, terms_, sum_p_, share_dev_, ones_, zero_bias_;
  DeviceBuffer<int64_t> load_dev_;
  std::vector<int64_t> offsets_;  // host copy of the expert row offsets (E + 1)
  bool jittered_ = false;
  double loss_scale_ = 1.0;
  RoutingStats stats_;
  bool stats_unrouted_valid_ = false;
  ExpertFfnPaths paths_;
};

}  // namespace moe::rt::cuda
