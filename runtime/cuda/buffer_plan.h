#pragma once
// Shape planning of the CUDA MoE layer: every device buffer one forward + backward needs, with its
// size and its offset in one arena (256-byte aligned, one allocation per layer and token count).
// Plain C++: the sizes are tested here against the CPU layer's shapes.
//   R (expert rows) = T·k in dropless token choice, E·C with a capacity (slots padded to C rows)
//   and in expert choice. Router buffers are fp32 whatever the dtype; activations use elem_bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt::cuda {

struct MoeShape {
  int64_t tokens = 0, d_model = 0, d_expert = 0, num_experts = 0, top_k = 0;
  int64_t capacity = 0;        // per-expert rows; 0: dropless token choice
  bool expert_choice = false;  // assignments = E·C, top_k unused
  size_t elem_bytes = 4;       // activations: 4 (fp32) or 2 (bf16)

  int64_t assignments() const;  // A
  int64_t expert_rows() const;  // R
};

struct BufferPlan {
  struct Entry {
    std::string name;
    size_t offset = 0, bytes = 0;
  };
  std::vector<Entry> entries;
  size_t total = 0;
  size_t offset_of(const std::string& name) const;  // throws moe::Error for an unknown name
  size_t bytes_of(const std::string& name) const;
};

constexpr size_t kArenaAlign = 256;

// Throws moe::Error naming the field for non-positive dimensions or a missing capacity.
BufferPlan plan_moe_buffers(const MoeShape& s);

}  // namespace moe::rt::cuda
