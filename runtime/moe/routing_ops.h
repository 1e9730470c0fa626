#pragma once
// The small ops that move tokens to experts and back (MegaBlocks style). Each is a plain loop with
// one job, tested against a reference in tests/runtime/moe/routing_ops_test.cpp. The dispatchers
// (local, and the all-to-all one of Runtime II; the CUDA kernels have these as CPU twins) are
// built from them:
//   expert_histogram → exclusive_scan → sort_by_expert → gather_rows        (dispatch)
//   weighted_scatter_add_rows                                               (combine)
//   row_dots + weighted_gather_rows                                         (combine backward)
//   scatter_add_rows                                                        (dispatch backward)
// An "assignment" is one (token, expert) pair chosen by the router; `expert[a] < 0` means the
// assignment was dropped (capacity) and goes nowhere. Row r of an expert-major buffer holds
// assignment row_assignment[r]; rows of expert e are [offsets[e], offsets[e+1]).
#include <cstdint>

namespace moe::rt {

// counts[e] = #{a : expert[a] == e}, e in [0, E); negative experts are skipped.
void expert_histogram(const int32_t* expert, int64_t assignments, int64_t num_experts, int64_t* counts);

// offsets[0] = 0, offsets[i+1] = offsets[i] + counts[i]; offsets has n + 1 entries.
void exclusive_scan(const int64_t* counts, int64_t n, int64_t* offsets);

// Stable counting sort of the assignments by expert: row_assignment[offsets[e] + i] is the i-th
// (in assignment order) assignment of expert e; assignment_row[a] is its row, or -1 if dropped.
// `cursor` is scratch of num_experts entries.
void sort_by_expert(const int32_t* expert, int64_t assignments, const int64_t* offsets, int64_t num_experts,
                    int64_t* cursor, int32_t* row_assignment, int32_t* assignment_row);

// dst[r] = src[index[r]] for r < rows (rows of width d): the permutation into expert-major order.
template <typename T>
void gather_rows(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d);

// dst[index[r]] += src[r]: the dispatch backward (gradient of a gather). `order` (optional, `rows`
// entries) visits the rows in that order instead: it fixes the order of a destination's additions.
template <typename T>
void scatter_add_rows(T* dst, const T* src, const int32_t* index, int64_t rows, int64_t d,
                      const int32_t* order = nullptr);

// dst[index[r]] += weight[r] · src[r]: the weighted combine (unpermute) of expert outputs.
template <typename T>
void weighted_scatter_add_rows(T* dst, const T* src, const int32_t* index, const T* weight, int64_t rows,
                               int64_t d, const int32_t* order = nullptr);

// dst[r] = weight[r] · src[index[r]]: combine backward, the gradient reaching each expert row.
template <typename T>
void weighted_gather_rows(T* dst, const T* src, const int32_t* index, const T* weight, int64_t rows,
                          int64_t d);

// out[r] = a[r] · b[index[r]] (dot products of rows): combine backward, the gate weights' gradient.
template <typename T>
void row_dots(T* out, const T* a, const T* b, const int32_t* index, int64_t rows, int64_t d);

}  // namespace moe::rt
