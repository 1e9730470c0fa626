#pragma once
// The dense SwiGLU feed-forward of the first `first_dense_layers` layers (Hugging Face names
// mlp.{gate,up,down}_proj):  y = down(silu(gate(x)) · up(x)),  x, y [T×d], hidden [T×d_ff].
// `x` must stay alive and unchanged until backward.
#include <cstdint>
#include <vector>

#include "param.h"
#include "tensor_parallel.h"

namespace moe::rt {

class DenseMlp {
 public:
  // With tp: this rank's d_ff/tp hidden units (tensor_parallel.h).
  DenseMlp(int64_t layer_index, int64_t d_model, int64_t d_ff, const TensorParallel& tp = {});

  // `segment_rows`: tokens per sequence (the unit of deterministic gradient sums, grad_sink.h).
  void forward(const float* x, float* y, int64_t rows, int64_t segment_rows);
  // dy → dx (overwritten); accumulates the weights' grads.
  void backward(const float* dy, float* dx);

  std::vector<Param*> params() { return {&gate_proj_, &up_proj_, &down_proj_}; }

 private:
  int64_t d_model_, d_ff_, rows_ = 0, segment_rows_ = 0;  // d_ff_: local under tp
  TensorParallel tp_;
  Param gate_proj_, up_proj_, down_proj_;  // [f×d], [f×d], [d×f]
  const float* x_ = nullptr;
  std::vector<float> a_, b_, h_;     // gate(x), up(x), silu(a)·b
  std::vector<float> da_, db_, dh_;  // their grads
};

}  // namespace moe::rt
