// Rotary position embedding (see rope.h). The cos/sin table is computed in double per call:
// it is seq × head_dim/2 values, negligible next to the attention it feeds.
#include "rope.h"

#include <cmath>
#include <vector>

namespace moe::rt {

namespace {

// Rotates every head vector by +angle (forward) or −angle (backward).
template <typename T>
void rotate(T* x, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, double theta,
            double direction) {
  const int64_t half = head_dim / 2;
  std::vector<T> cos_table(seq * half), sin_table(seq * half);
  for (int64_t p = 0; p < seq; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
      const double angle = static_cast<double>(p) * inv_freq;
      cos_table[p * half + i] = static_cast<T>(std::cos(angle));
      sin_table[p * half + i] = static_cast<T>(direction * std::sin(angle));
    }
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = 0; p < seq; ++p) {
      const T* c = cos_table.data() + p * half;
      const T* s = sin_table.data() + p * half;
      for (int64_t h = 0; h < heads; ++h) {
        T* v = x + ((b * seq + p) * heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = v[i], x2 = v[i + half];
          v[i] = x1 * c[i] - x2 * s[i];
          v[i + half] = x2 * c[i] + x1 * s[i];
        }
      }
    }
}

}  // namespace

template <typename T>
void rope_forward(T* x, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, double theta) {
  rotate(x, batch, seq, heads, head_dim, theta, +1.0);
}

template <typename T>
void rope_backward(T* dx, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, double theta) {
  rotate(dx, batch, seq, heads, head_dim, theta, -1.0);
}

template void rope_forward<float>(float*, int64_t, int64_t, int64_t, int64_t, double);
template void rope_forward<double>(double*, int64_t, int64_t, int64_t, int64_t, double);
template void rope_backward<float>(float*, int64_t, int64_t, int64_t, int64_t, double);
template void rope_backward<double>(double*, int64_t, int64_t, int64_t, int64_t, double);

}  // namespace moe::rt
