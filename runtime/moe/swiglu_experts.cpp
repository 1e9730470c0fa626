// SwiGLU expert bank (see swiglu_experts.h): per expert, linear → gate → linear on its row block.
#include "swiglu_experts.h"

#include <cmath>
#include <thread>

#include "error.h"
#include "gemm.h"
#include "linear.h"
#include "ordered_gemm.h"
#include "swiglu.h"

namespace moe::rt {

namespace {

// Runs body(begin, end) over [0, n) on two threads when n is large (the element-wise SwiGLU is
// otherwise a visible share of the layer on this 2-core machine; GEMMs are threaded by OpenBLAS).
template <typename F>
void parallel_range(int64_t n, F body) {
  if (n < (1 << 18) || gemm_threads() < 2) {
    body(0, n);
    return;
  }
  const int64_t half = n / 2;
  std::thread other([&] { body(half, n); });
  body(0, half);
  other.join();
}

// act = silu(h1) · h3, through ops' SwiGLU (built with vectorised exp), split over two threads.
template <typename T>
void swiglu_fwd(T* act, const T* h1, const T* h3, int64_t n) {
  parallel_range(n, [=](int64_t b, int64_t e) { swiglu_forward(act + b, h1 + b, h3 + b, e - b); });
}

// dh1 = ∂/∂h1, dh3 = ∂/∂h3 from dact; dact is read before either is written, so dh1 may alias it.
template <typename T>
void swiglu_bwd(T* dh1, T* dh3, const T* dact, const T* h1, const T* h3, int64_t n) {
  parallel_range(n, [=](int64_t b, int64_t e) {
    swiglu_backward(dh1 + b, dh3 + b, dact + b, h1 + b, h3 + b, e - b);
  });
}

}  // namespace

template <typename T>
void SwigluExperts<T>::forward(const ExpertWeights<T>& w, const T* x, const std::vector<int64_t>& offsets, T* y) {
  const int64_t n_experts = static_cast<int64_t>(offsets.size()) - 1;
  if (static_cast<int64_t>(w.w1.size()) != n_experts)
    throw Error("experts: " + std::to_string(w.w1.size()) + " weight sets for " + std::to_string(n_experts) + " experts");
  offsets_ = offsets;
  rows_ = offsets.back();
  x_ = x;
  h1_.resize(rows_ * f_);
  h3_.resize(rows_ * f_);
  act_.resize(rows_ * f_);
  for (int64_t i = 0; i < n_experts; ++i) {
    const int64_t r0 = offsets[i], n = offsets[i + 1] - r0;
    if (n == 0) continue;
    T* h1 = h1_.data() + r0 * f_;
    T* h3 = h3_.data() + r0 * f_;
    T* act = act_.data() + r0 * f_;
    linear_forward(h1, x + r0 * d_, w.w1[i], n, d_, f_);
    linear_forward(h3, x + r0 * d_, w.w3[i], n, d_, f_);
    swiglu_fwd(act, h1, h3, n * f_);
    linear_forward(y + r0 * d_, act, w.w2[i], n, f_, d_);
  }
}

template <typename T>
void SwigluExperts<T>::backward(const ExpertWeights<T>& w, const ExpertGrads<T>& g, const T* dy, T* dx,
                                bool accumulate_dx) {
  const int64_t n_experts = static_cast<int64_t>(offsets_.size()) - 1;
  dh_.resize(rows_ * f_);
  for (int64_t i = 0; i < n_experts; ++i) {
    const int64_t r0 = offsets_[i], n = offsets_[i + 1] - r0;
    if (n == 0) continue;
    const T* x = x_ + r0 * d_;
    const T* h1 = h1_.data() + r0 * f_;
    const T* h3 = h3_.data() + r0 * f_;
    T* act = act_.data() + r0 * f_;
    T* dh = dh_.data() + r0 * f_;
    // w2: dact = dy · W2 (into dh), dW2 += dyᵀ · act
    linear_backward(dh, g.w2[i], dy + r0 * d_, act, w.w2[i], n, f_, d_);
    // gate: dh1 → dh (in place), dh3 → act (no longer needed)
    swiglu_bwd(dh, act, dh, h1, h3, n * f_);
    // w1, w3: dx (+)= dh1 · W1 + dh3 · W3, dW1 += dh1ᵀ · x, dW3 += dh3ᵀ · x
    linear_backward(dx + r0 * d_, g.w1[i], dh, x, w.w1[i], n, d_, f_, accumulate_dx);
    linear_backward(dx + r0 * d_, g.w3[i], act, x, w.w3[i], n, d_, f_, true);
  }
}

template <typename T>
void SwigluExperts<T>::backward_inputs(const ExpertWeights<T>& w, const T* dy, T* dx, bool accumulate_dx) {
  const int64_t n_experts = static_cast<int64_t>(offsets_.size()) - 1;
  dy_ = dy;
  dh_.resize(rows_ * f_);
  dh3_.resize(rows_ * f_);
  for (int64_t i = 0; i < n_experts; ++i) {
    const int64_t r0 = offsets_[i], n = offsets_[i + 1] - r0;
    if (n == 0) continue;
    T* dh1 = dh_.data() + r0 * f_;
    T* dh3 = dh3_.data() + r0 * f_;
    linear_backward(dh1, GradSink<T>{}, dy + r0 * d_, act_.data() + r0 * f_, w.w2[i], n, f_, d_);  // dact
    swiglu_bwd(dh1, dh3, dh1, h1_.data() + r0 * f_, h3_.data() + r0 * f_, n * f_);
    linear_backward(dx + r0 * d_, GradSink<T>{}, dh1, x_ + r0 * d_, w.w1[i], n, d_, f_, accumulate_dx);
    linear_backward(dx + r0 * d_, GradSink<T>{}, dh3, x_ + r0 * d_, w.w3[i], n, d_, f_, true);
  }
}

template <typename T>
typename SwigluExperts<T>::Row SwigluExperts<T>::row(int64_t r) const {
  return Row{x_ + r * d_, act_.data() + r * f_, dy_ + r * d_, dh_.data() + r * f_, dh3_.data() + r * f_};
}

void add_weight_grads(const std::vector<SwigluExperts<float>::Row>& rows, int64_t d, int64_t f, ExactSum& w1,
                      ExactSum& w2, ExactSum& w3) {
  const int64_t n = static_cast<int64_t>(rows.size());
  if (n == 0) return;
  thread_local std::vector<float> partial;
  thread_local std::vector<const float*> a, b;
  partial.resize(static_cast<size_t>(d * f));
  a.resize(static_cast<size_t>(n));
  b.resize(static_cast<size_t>(n));
  // dW[out×in] = Σ_r dy_r ⊗ in_r: ordered_gemm_rows over the gathered rows.
  auto one = [&](auto dy_of, auto in_of, int64_t out, int64_t in, ExactSum& sum) {
    for (int64_t r = 0; r < n; ++r) a[r] = dy_of(rows[r]), b[r] = in_of(rows[r]);
    ordered_gemm_rows(out, in, n, 1.0f, RowsView{a.data(), 0}, RowsView{b.data(), 0}, false, partial.data(), in);
    sum.add(partial.data(), static_cast<size_t>(out * in));
  };
  using Row = SwigluExperts<float>::Row;
  one([](const Row& r) { return r.dh1; }, [](const Row& r) { return r.x; }, f, d, w1);
  one([](const Row& r) { return r.dy; }, [](const Row& r) { return r.act; }, d, f, w2);
  one([](const Row& r) { return r.dh3; }, [](const Row& r) { return r.x; }, f, d, w3);
}

template class SwigluExperts<float>;
template class SwigluExperts<double>;

}  // namespace moe::rt
