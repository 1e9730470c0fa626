// The token-moving ops (see routing_ops.h): plain loops over rows, vectorised by the compiler.
#include "routing_ops.h"

#include <cstring>

namespace moe::rt {

void expert_histogram(const int32_t* expert, int64_t assignments, int64_t num_experts, int64_t* counts) {
  for (int64_t e = 0; e < num_experts; ++e) counts[e] = 0;
  for (int64_t a = 0; a < assignments; ++a)
    if (expert[a] >= 0) ++counts[expert[a]];
}

void exclusive_scan(const int64_t* counts, int64_t n, int64_t* offsets) {
  offsets[0] = 0;
  for (int64_t i = 0; i < n; ++i) offsets[i + 1] = offsets[i] + counts[i];
}

void sort_by_expert(const int32_t* expert, int64_t assignments, const int64_t* offsets, int64_t num_experts,
                    int64_t* cursor, int32_t* row_assignment, int32_t* assignment_row) {
  for (int64_t e = 0; e < num_experts; ++e) cursor[e] = offsets[e];
  for (int64_t a = 0; a < assignments; ++a) {
    const int32_t e = expert[a];
    if (e < 0) {
      assignment_row[a] = -1;
      continue;
    }
    const int64_t r = cursor[e]++;
    row_assignment[r] = static_cast<int32_t>(a);
    assignment_row[a] = static_cast<int32_t>(r);
  }
}

template <typename T>
void gather_rows(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * d, src + index[r] * d, sizeof(T) * d);
}

template <typename T>
void scatter_add_rows(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d, const int32_t* order) {
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t r = order ? order[k] : k;
    T* out = dst + index[r] * d;
    const T* in = src + r * d;
    for (int64_t i = 0; i < d; ++i) out[i] += in[i];
  }
}

template <typename T>
void weighted_scatter_add_rows(T* dst, const T* src, const int32_t* index, const T* weight, int64_t rows,
                               int64_t d, const int32_t* order) {
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t r = order ? order[k] : k;
    T* out = dst + index[r] * d;
    const T* in = src + r * d;
    const T w = weight[r];
    for (int64_t i = 0; i < d; ++i) out[i] += w * in[i];
  }
}

template <typename T>
void weighted_gather_rows(T* dst, const T* src, const int32_t* index, const T* weight, int64_t rows,
                          int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    T* out = dst + r * d;
    const T* in = src + index[r] * d;
    const T w = weight[r];
    for (int64_t i = 0; i < d; ++i) out[i] = w * in[i];
  }
}

template <typename T>
void row_dots(T* out, const T* a, const T* b, const int32_t* index, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = a + r * d;
    const T* y = b + index[r] * d;
    T acc = 0;
    for (int64_t i = 0; i < d; ++i) acc += x[i] * y[i];
    out[r] = acc;
  }
}

#define MOE_INSTANTIATE(T)                                                                          \
  template void gather_rows<T>(T*, const T*, const int32_t*, int64_t, int64_t);                   \
  template void scatter_add_rows<T>(T*, const T*, const int32_t*, int64_t, int64_t, const int32_t*);              \
  template void weighted_scatter_add_rows<T>(T*, const T*, const int32_t*, const T*, int64_t, int64_t, const int32_t*); \
  template void weighted_gather_rows<T>(T*, const T*, const int32_t*, const T*, int64_t, int64_t); \
  template void row_dots<T>(T*, const T*, const T*, const int32_t*, int64_t, int64_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

}  // namespace moe::rt
