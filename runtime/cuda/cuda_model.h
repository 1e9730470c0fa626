#pragma once
// The Mixtral-style decoder on the GPU: the CUDA twin of MixtralModel (runtime/model/model.h),
// same layer order, same residual stream, same loss (mean cross-entropy + every MoE layer's aux
// and z losses), built FROM a MixtralModel so the two start from the same seeded weights and the
// same Hugging Face names:
//   embed → per layer: h = x + o_proj(attn(rope(q,k), v)) of input_layernorm(x);
//                      out = h + ffn(post_attention_layernorm(h))   (CudaMoeLayer, or a dense
//                      SwiGLU MLP through the expert bank with one expert)
//   → model.norm → lm_head (or the tied embedding) → cross-entropy.
// Parameters live in flat device buffers: fp32 master weights, fp32 gradients, AdamW moments,
// and, for bf16, a bf16 compute copy the optimizer refreshes. A MoE layer's experts are laid out
// w1 of every expert, then w2, then w3, so each kind is one contiguous [E×…] bank.
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cublas_ops.h"
#include "cuda_moe_layer.h"
#include "device_allocator.h"
#include "model.h"
#include "optimizer.h"

namespace moe::rt::cuda {

template <typename T>
class CudaModel {
 public:
  // Copies `cpu`'s parameters (and its MoE layers' selection biases) to the device.
  CudaModel(MixtralModel& cpu, Blas& blas);
  ~CudaModel();

  // tokens, targets: host [batch × seq_len]. Returns the same figures as MixtralModel::forward.
  // options.loss_scale weighs what backward() differentiates (1/grad_accum). With `rng`, each MoE
  // layer's jitter key is one rng() draw in layer order, as the CPU router draws it, so the noise
  // is the CPU run's (the same counter hash, runtime/cuda/jitter_hash.h); without, it is derived
  // from options.jitter_seed.
  ForwardResult forward(const int32_t* tokens, const int32_t* targets, int64_t batch, const CudaMoeOptions& options,
                        std::mt19937_64* rng = nullptr);
  void backward();
  void zero_grad();
  // The global L2 norm of the gradients before clipping; scales them to max_norm (≤ 0: no clip).
  double clip_grad_norm(double max_norm);
  // One AdamW step (decay on matrices only, as AdamW::decays), step 1-based.
  void adamw_step(const AdamWConfig& config, double lr, int64_t step);
  // Aux-loss-free balancing: per MoE layer, its per-expert counts of the step.
  void update_balancing_bias(const std::vector<std::vector<int64_t>>& counts);
  // Copies the master weights back into `cpu` (same names), e.g. for a checkpoint or a comparison.
  void download_params(MixtralModel& cpu) const;
  // Copies the master weights, the balancing biases and the AdamW moments into `cpu` and
  // `optimizer` (built over cpu.named_params()), with `steps` optimizer steps: a checkpoint's state.
  void download_state(MixtralModel& cpu, AdamW& optimizer, int64_t steps) const;
  // Copies the fp32 gradients into `cpu`'s Param::grad (the tests compare them with the CPU model's).
  void download_grads(MixtralModel& cpu) const;
  std::vector<int64_t> moe_layer_indices() const;
  int64_t num_params() const { return total_; }

 private:
  struct DevParam {
    std::string name;
    size_t offset = 0, numel = 0;
    bool decays = false;
  };
  struct Layer;
  size_t index_of(const std::string& name) const;
  const T* w(size_t i) const;  // compute copy
  float* g(size_t i) const;    // gradient

  JobSpec spec_;
  Blas& blas_;
  std::vector<DevParam> params_;
  int64_t total_ = 0;
  DeviceBuffer<float> master_, grad_, m_, v_, norm_sq_;
  DeviceBuffer<T> copy_;  // bf16 only
  std::vector<std::unique_ptr<Layer>> layers_;
  size_t embed_ = 0, norm_ = 0, head_ = 0;
  // Activations of the last forward and backward scratch.
  int64_t batch_ = 0, seq_ = 0;
  double loss_scale_ = 1.0;
  bool has_targets_ = false;
  DeviceBuffer<int32_t> tokens_, targets_;
  DeviceBuffer<T> final_in_, final_norm_, logits_, dres_, dh_, dnormed_, dq_, dk_, dv_, dcontext_, attn_scratch_;
  DeviceBuffer<float> final_rstd_, probs_, row_loss_, loss_sum_;
};

}  // namespace moe::rt::cuda
