#pragma once
// Where a weight gradient goes. By default straight into `grad` (+=, e.g. one GEMM over all rows).
// With deterministic arithmetic (gemm.h's set_deterministic) into `exact` instead: the rows are
// cut into segments of `segment_rows` — one sequence each, the unit every data layout shares —
// and each segment's partial gradient is added to an ExactSum, so the total does not depend on how
// the batch's sequences were spread over ranks, micro-batches or threads.
#include <cstdint>

#include "exact_sum.h"
#include "param.h"

namespace moe::rt {

template <typename T>
struct GradSink {
  T* grad = nullptr;
  ExactSum* exact = nullptr;  // float only
  int64_t segment_rows = 0;   // rows per segment of the exact path (0: all rows are one segment)

  GradSink() = default;
  GradSink(T* g) : grad(g) {}  // NOLINT(google-explicit-constructor): a plain pointer is the common case
  GradSink(T* g, ExactSum* e, int64_t segment) : grad(g), exact(e), segment_rows(segment) {}

  bool empty() const { return grad == nullptr && exact == nullptr; }
  // [begin, end) of segment s of `rows` rows, and the number of segments.
  int64_t segments(int64_t rows) const { return segment_rows > 0 ? (rows + segment_rows - 1) / segment_rows : 1; }
  int64_t begin(int64_t s) const { return segment_rows > 0 ? s * segment_rows : 0; }
  int64_t end(int64_t s, int64_t rows) const { return segment_rows > 0 && (s + 1) * segment_rows < rows ? (s + 1) * segment_rows : rows; }
};

// A Param's sink: its ExactSum when deterministic arithmetic sized one, its grad otherwise.
inline GradSink<float> grad_sink(Param& p, int64_t segment_rows) {
  if (p.exact_grad.size() == 0) return GradSink<float>(p.grad.data());
  return GradSink<float>(p.grad.data(), &p.exact_grad, segment_rows);
}

}  // namespace moe::rt
