#pragma once
// Sums of floats that do not depend on the order or grouping of the additions. Each added value is
// rounded once, on its own, onto a fixed binary grid (multiples of 2^-64, |value| < 2^32) and the
// grid values are added as 64-bit integers, which is associative. So one process adding 8
// sequences' partial gradients, four ranks adding 2 each and then all-reducing the integers (in
// any ring order), or the same with other micro-batch splits, all reach the same bits.
// Precision: values ≥ 2^-40 keep all 24 bits of their float; smaller ones keep what lies above
// 2^-64 (an absolute error below 5.5e-20 per added value). A value that is not finite or whose
// magnitude is ≥ 2^32 marks the whole sum bad: rounding then gives NaN everywhere, which the
// trainer reports as a non-finite gradient naming the parameter.
//
// Layout of limbs(): [hi × n, lo × n, bad]: value = hi·2^-24 + lo·2^-64. An all-reduce sums the
// array elementwise as int64 (bad counts bad additions).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moe::rt {

class ExactSum {
 public:
  ExactSum() = default;
  explicit ExactSum(size_t n) { resize(n); }

  void resize(size_t n);  // n zero sums
  void zero();
  size_t size() const { return n_; }

  // sum[offset + i] += v[i] for i < count.
  void add(const float* v, size_t count, size_t offset = 0);
  // out[i] = sum[i] rounded to float (through double: at most one ulp from the nearest float, and
  // the same function of the integers everywhere); all NaN when bad.
  void round_to(float* out) const;

  std::vector<int64_t>& limbs() { return limbs_; }
  const std::vector<int64_t>& limbs() const { return limbs_; }

 private:
  size_t n_ = 0;
  std::vector<int64_t> limbs_;
};

}  // namespace moe::rt
