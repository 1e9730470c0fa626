#pragma once
// A bank of SwiGLU expert FFNs over an expert-major buffer (Mixtral: w1, w3: d→f, w2: f→d,
// out = w2(silu(w1 x) · w3 x)); weights [f×d], [d×f], [f×d] as HF stores them. Expert i works on
// rows [offsets[i], offsets[i+1]) of the input: three GEMMs forward and six backward per expert,
// straight on those contiguous blocks and the weights (no copies, linear.h → gemm.h). An expert
// with zero rows is skipped (its weight gradients stay unchanged).
// The shared expert (always on) is the same bank with one expert over all tokens.
#include <cstdint>
#include <vector>

namespace moe::rt {

template <typename T>
struct ExpertWeights {  // per expert of the bank
  std::vector<const T*> w1, w2, w3;
};
template <typename T>
struct ExpertGrads {  // accumulated into (+=)
  std::vector<T*> w1, w2, w3;
};

template <typename T>
class SwigluExperts {
 public:
  SwigluExperts(int64_t d_model, int64_t d_ff) : d_(d_model), f_(d_ff) {}

  // y [rows×d] = expert_i(x) on each block; keeps x's pointer and the activations for backward.
  void forward(const ExpertWeights<T>& w, const T* x, const std::vector<int64_t>& offsets, T* y);
  // dx [rows×d] = (overwritten, or added to when accumulate_dx) and grads += from dy [rows×d].
  void backward(const ExpertWeights<T>& w, const ExpertGrads<T>& g, const T* dy, T* dx, bool accumulate_dx);

  // FLOPs of the last forward (backward is twice this): 6 · rows · d · f.
  double forward_flops() const { return 6.0 * static_cast<double>(rows_) * d_ * f_; }

 private:
  int64_t d_, f_;
  int64_t rows_ = 0;
  const T* x_ = nullptr;
  std::vector<int64_t> offsets_;
  std::vector<T> h1_, h3_, act_;  // [rows×f]: w1 x, w3 x, silu(w1 x)·w3 x
  std::vector<T> dh_;             // [rows×f] backward scratch
};

}  // namespace moe::rt
