#pragma once
// A bank of SwiGLU expert FFNs over an expert-major buffer (Mixtral: w1, w3: d→f, w2: f→d,
// out = w2(silu(w1 x) · w3 x)); weights [f×d], [d×f], [f×d] as HF stores them. Expert i works on
// rows [offsets[i], offsets[i+1]) of the input: three GEMMs forward and six backward per expert,
// straight on those contiguous blocks and the weights (no copies, linear.h → gemm.h). An expert
// with zero rows is skipped (its weight gradients stay unchanged).
// The shared expert (always on) is the same bank with one expert over all tokens.
#include <cstdint>
#include <vector>

#include "grad_sink.h"

namespace moe::rt {

template <typename T>
struct ExpertWeights {  // per expert of the bank
  std::vector<const T*> w1, w2, w3;
};
template <typename T>
struct ExpertGrads {  // accumulated into (+=); an empty sink skips that weight's gradient
  std::vector<GradSink<T>> w1, w2, w3;
};

template <typename T>
class SwigluExperts {
 public:
  SwigluExperts(int64_t d_model, int64_t d_ff) : d_(d_model), f_(d_ff) {}

  // y [rows×d] = expert_i(x) on each block; keeps x's pointer and the activations for backward.
  void forward(const ExpertWeights<T>& w, const T* x, const std::vector<int64_t>& offsets, T* y);
  // dx [rows×d] = (overwritten, or added to when accumulate_dx) and grads += from dy [rows×d].
  void backward(const ExpertWeights<T>& w, const ExpertGrads<T>& g, const T* dy, T* dx, bool accumulate_dx);
  // Deterministic arithmetic for routed experts: dx only, keeping what the weight gradients need,
  // which the caller then sums per (expert, sequence) with add_weight_grads — a sequence's rows
  // may sit in several banks (overlap chunks), so the bank cannot group them itself.
  void backward_inputs(const ExpertWeights<T>& w, const T* dy, T* dx, bool accumulate_dx);
  // Row r's operands of the weight gradients, after backward_inputs.
  struct Row {
    const T* x;    // [d] input
    const T* act;  // [f] silu(w1 x)·w3 x
    const T* dy;   // [d] output gradient
    const T* dh1;  // [f] gradient of w1 x
    const T* dh3;  // [f] gradient of w3 x
  };
  Row row(int64_t r) const;

  // FLOPs of the last forward (backward is twice this): 6 · rows · d · f.
  double forward_flops() const { return 6.0 * static_cast<double>(rows_) * d_ * f_; }

 private:
  int64_t d_, f_;
  int64_t rows_ = 0;
  const T* x_ = nullptr;
  std::vector<int64_t> offsets_;
  std::vector<T> h1_, h3_, act_;  // [rows×f]: w1 x, w3 x, silu(w1 x)·w3 x
  std::vector<T> dh_;             // [rows×f] backward scratch
  std::vector<T> dh3_;            // [rows×f] backward_inputs: dh3 kept apart (act is still needed)
  const T* dy_ = nullptr;
};

// Adds dW1 += Σ dh1ᵀ·x, dW2 += Σ dyᵀ·act, dW3 += Σ dh3ᵀ·x over `rows` (one sequence's rows of one
// expert, in token order) as one partial per weight, each added to its ExactSum.
void add_weight_grads(const std::vector<SwigluExperts<float>::Row>& rows, int64_t d, int64_t f, ExactSum& w1,
                      ExactSum& w2, ExactSum& w3);

}  // namespace moe::rt
