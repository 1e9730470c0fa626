// Tensor-parallel slices (param_shard.h): every rank's slice put back gives the logical tensor,
// for rows and for columns, and a split that does not divide is refused by name.
#include <gtest/gtest.h>

#include <numeric>
#include <stdexcept>

#include "param_shard.h"

using namespace moe::rt;

namespace {

void round_trip(int dim) {
  const std::vector<int64_t> full_shape{6, 4};
  std::vector<float> full(24), rebuilt(24, -1.0f);
  std::iota(full.begin(), full.end(), 0.0f);
  for (int64_t r = 0; r < 2; ++r) {
    const Param p = sharded_param("w", full_shape, dim, r, 2);
    EXPECT_EQ(p.numel(), 12);
    EXPECT_EQ(full_numel(p), 24);
    std::vector<float> part(12);
    take_slice(p, full.data(), part.data());
    // Rows: rank r holds rows 3r…3r+2; columns: every row's columns 2r, 2r+1.
    EXPECT_EQ(part[0], dim == 0 ? static_cast<float>(12 * r) : static_cast<float>(2 * r));
    EXPECT_EQ(part[1], dim == 0 ? static_cast<float>(12 * r + 1) : static_cast<float>(2 * r + 1));
    if (dim == 1) {
      EXPECT_EQ(part[2], static_cast<float>(4 + 2 * r));
    }
    put_slice(p, part.data(), rebuilt.data());
  }
  EXPECT_EQ(rebuilt, full);
  // Another rank's slice placed through rank 0's param.
  const Param p0 = sharded_param("w", full_shape, dim, 0, 2);
  std::vector<float> part1(12), other(24, 0.0f);
  take_slice(sharded_param("w", full_shape, dim, 1, 2), full.data(), part1.data());
  put_slice(p0, 1, part1.data(), other.data());
  std::vector<float> expect(24, 0.0f);
  put_slice(sharded_param("w", full_shape, dim, 1, 2), part1.data(), expect.data());
  EXPECT_EQ(other, expect);
}

}  // namespace

TEST(ParamShard, RowSlicesRebuildTheTensor) { round_trip(0); }
TEST(ParamShard, ColumnSlicesRebuildTheTensor) { round_trip(1); }

TEST(ParamShard, OneSliceIsAPlainParam) {
  const Param p = sharded_param("w", {6, 4}, 0, 0, 1);
  EXPECT_FALSE(p.shard.sharded());
  EXPECT_EQ(p.numel(), 24);
}

TEST(ParamShard, RefusesASplitThatDoesNotDivide) {
  try {
    sharded_param("model.layers.0.self_attn.q_proj.weight", {6, 4}, 1, 0, 3);
    FAIL() << "expected a refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("q_proj"), std::string::npos) << e.what();
  }
}
