// CudaModel's parameter layout (runtime/cuda/param_layout.h) on real MixtralModels' parameter
// lists (label runtime): every parameter exactly once, no overlaps, 64-element alignment, each
// MoE layer's w1/w2/w3 banks contiguous in expert order (what ExpertBank and the batched GEMMs
// read), decay flags as AdamW's, and a missing expert refused by name.
#include <gtest/gtest.h>

#include <algorithm>

#include "error.h"
#include "job_spec.h"
#include "model.h"
#include "optimizer.h"
#include "param_layout.h"

namespace moe::rt::cuda {
namespace {

JobSpec tiny(const std::vector<std::string>& sets) {
  return load_spec(std::filesystem::path(MOE_SOURCE_DIR) / "resources" / "presets" / "tiny-cpu.json", sets);
}

void check_layout(const JobSpec& spec) {
  MixtralModel model(spec);
  std::vector<ParamInfo> info;
  for (Param* p : model.named_params()) info.push_back({p->name, static_cast<size_t>(p->numel()), AdamW::decays(*p)});
  size_t total = 0;
  const auto slots = plan_param_layout(info, spec.model.moe.num_experts, &total);
  ASSERT_EQ(slots.size(), info.size());
  // Every parameter once, with its size and decay flag.
  for (const ParamInfo& p : info) {
    const auto it = std::find_if(slots.begin(), slots.end(), [&](const ParamSlot& s) { return s.name == p.name; });
    ASSERT_NE(it, slots.end()) << p.name;
    EXPECT_EQ(it->numel, p.numel) << p.name;
    EXPECT_EQ(it->decays, p.decays) << p.name;
  }
  // Disjoint, inside the total, aligned unless inside a bank.
  auto sorted = slots;
  std::sort(sorted.begin(), sorted.end(), [](const ParamSlot& a, const ParamSlot& b) { return a.offset < b.offset; });
  for (size_t i = 0; i + 1 < sorted.size(); ++i) EXPECT_LE(sorted[i].offset + sorted[i].numel, sorted[i + 1].offset);
  EXPECT_LE(sorted.back().offset + sorted.back().numel, total);
  EXPECT_EQ(total % 64, 0u);
  for (const ParamSlot& s : slots) {
    if (s.name.find(".experts.") == std::string::npos) {
      EXPECT_EQ(s.offset % 64, 0u) << s.name;
    }
  }
  // Banks: expert j of kind w at bank + j·numel, the bank aligned.
  auto slot = [&](const std::string& n) {
    return *std::find_if(slots.begin(), slots.end(), [&](const ParamSlot& s) { return s.name == n; });
  };
  for (int64_t layer : model.moe_layer_indices())
    for (const char* kind : {"w1", "w2", "w3"}) {
      const ParamSlot first = slot(expert_param_name(layer, 0, kind));
      EXPECT_EQ(first.offset % 64, 0u);
      for (int64_t j = 0; j < spec.model.moe.num_experts; ++j)
        EXPECT_EQ(slot(expert_param_name(layer, j, kind)).offset, first.offset + j * first.numel)
            << "layer " << layer << " " << kind << " expert " << j;
    }
}

TEST(ParamLayout, TinyCpuAndDenseSharedVariants) {
  check_layout(tiny({}));
  check_layout(tiny({"model.n_layers=3", "model.moe.first_dense_layers=1", "model.d_ff=192",
                     "model.moe.shared_experts=1", "model.moe.d_shared_expert=64", "model.tie_embeddings=true"}));
}

TEST(ParamLayout, AMissingExpertIsNamed) {
  std::vector<ParamInfo> info{{"model.embed_tokens.weight", 10, true}};
  for (const char* kind : {"w1", "w2", "w3"}) info.push_back({expert_param_name(0, 0, kind), 6, true});
  try {
    plan_param_layout(info, 2, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expert_param_name(0, 1, "w1")), std::string::npos) << e.what();
  }
  info.push_back(info[0]);
  EXPECT_THROW(plan_param_layout(info, 1, nullptr), Error);
}

}  // namespace
}  // namespace moe::rt::cuda
