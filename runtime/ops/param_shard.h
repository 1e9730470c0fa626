#pragma once
// Tensor-parallel slices of a parameter (ParamShard in param.h): making one, and copying between
// a slice and the logical tensor (row-major 2-D). The init draws the logical tensor and keeps the
// slice, checkpoints write the logical tensor, so a run saved at one tp resumes at any other.
#include <cstdint>
#include <string>
#include <vector>

#include "param.h"

namespace moe::rt {

// Slice `index` of `count` of a [rows × cols] tensor along `dim` (0 or 1); count 1: a plain Param.
Param sharded_param(std::string name, std::vector<int64_t> full, int dim, int64_t index, int64_t count);

// The logical tensor's element count (the Param's own when it is not sharded).
int64_t full_numel(const Param& p);

// part ← the slice of `full` that p holds.
void take_slice(const Param& p, const float* full, float* part);
// the slice of `full` that p holds ← part; with `index`, the slice another tp rank holds of the
// same parameter (checkpoints assemble the logical tensor from every rank's part).
void put_slice(const Param& p, const float* part, float* full);
void put_slice(const Param& p, int64_t index, const float* part, float* full);

}  // namespace moe::rt
