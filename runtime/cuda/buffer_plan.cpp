// The CUDA MoE layer's buffer arena (see buffer_plan.h).
#include "buffer_plan.h"

#include "error.h"

namespace moe::rt::cuda {

int64_t MoeShape::assignments() const { return expert_choice ? num_experts * capacity : tokens * top_k; }

int64_t MoeShape::expert_rows() const { return capacity > 0 ? num_experts * capacity : tokens * top_k; }

size_t BufferPlan::offset_of(const std::string& name) const {
  for (const auto& e : entries)
    if (e.name == name) return e.offset;
  throw Error("buffer plan: no buffer '" + name + "'");
}

size_t BufferPlan::bytes_of(const std::string& name) const {
  for (const auto& e : entries)
    if (e.name == name) return e.bytes;
  throw Error("buffer plan: no buffer '" + name + "'");
}

BufferPlan plan_moe_buffers(const MoeShape& s) {
  auto positive = [](int64_t v, const char* field) {
    if (v <= 0) throw Error(std::string("moe buffer plan: ") + field + " must be positive, got " + std::to_string(v));
  };
  positive(s.tokens, "tokens");
  positive(s.d_model, "d_model");
  positive(s.d_expert, "d_expert");
  positive(s.num_experts, "num_experts");
  if (s.expert_choice) positive(s.capacity, "capacity (expert choice)");
  else positive(s.top_k, "top_k");
  if (s.capacity < 0) throw Error("moe buffer plan: capacity must not be negative");
  if (s.elem_bytes != 2 && s.elem_bytes != 4) throw Error("moe buffer plan: element size must be 2 or 4 bytes");

  const auto T = static_cast<size_t>(s.tokens), d = static_cast<size_t>(s.d_model),
             f = static_cast<size_t>(s.d_expert), E = static_cast<size_t>(s.num_experts),
             A = static_cast<size_t>(s.assignments()), R = static_cast<size_t>(s.expert_rows()), eb = s.elem_bytes;
  BufferPlan plan;
  auto add = [&](const char* name, size_t bytes) {
    plan.total = (plan.total + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
    plan.entries.push_back({name, plan.total, bytes});
    plan.total += bytes;
  };
  // Router (fp32).
  add("logits", T * E * 4);
  add("scores", T * E * 4);
  add("lse", T * 4);
  add("dscores", T * E * 4);
  // Selection and permutation.
  add("assign_token", A * 4);
  add("assign_expert", A * 4);
  add("route", A * 4);
  add("gate_weight", A * 4);
  add("dgate_weight", A * 4);
  add("counts", E * 8);
  add("dropped", E * 8);
  add("offsets", (E + 1) * 8);
  add("assignment_row", A * 4);
  add("row_assignment", R * 4);
  add("row_token", R * 4);
  add("row_weight", R * 4);
  // Experts (activation dtype).
  add("expert_in", R * d * eb);
  add("h1", R * f * eb);
  add("h3", R * f * eb);
  add("act", R * f * eb);
  add("expert_out", R * d * eb);
  add("d_expert_out", R * d * eb);
  add("d_act", R * f * eb);
  add("d_expert_in", R * d * eb);
  plan.total = (plan.total + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
  return plan;
}

}  // namespace moe::rt::cuda
