// Sub-groups from the rank layout (see comm_groups.h). All ranks create their groups in the same
// kind order (ep, expert_dp, dense_dp, ep_intra, ep_inter), so the pairwise connects cannot cycle.
#include "comm_groups.h"

#include <algorithm>

#include "error.h"

namespace moe::rt::comm {

void hierarchical_groups(const RankLayout& layout, int64_t rank, RankGroup& intra, RankGroup& inter) {
  const RankGroup& ep = layout.group_of(layout.ep_groups, rank);
  const int64_t my_node = layout.ranks[static_cast<size_t>(rank)].node;
  // Position of a member among the group's members on the same node.
  auto position_in_node = [&](int64_t r) {
    const int64_t node = layout.ranks[static_cast<size_t>(r)].node;
    int64_t pos = 0;
    for (int64_t m : ep) {
      if (m == r) break;
      if (layout.ranks[static_cast<size_t>(m)].node == node) ++pos;
    }
    return pos;
  };
  const int64_t my_pos = position_in_node(rank);
  intra.clear();
  inter.clear();
  for (int64_t m : ep) {
    if (layout.ranks[static_cast<size_t>(m)].node == my_node) intra.push_back(m);
    if (position_in_node(m) == my_pos) inter.push_back(m);
  }
}

namespace {

std::unique_ptr<Communicator> make_group(Communicator& world, const RankGroup& group, const std::string& name) {
  std::vector<int> members(group.begin(), group.end());
  return world.sub_group(members, name);
}

}  // namespace

CommGroups make_comm_groups(Communicator& world, const RankLayout& layout) {
  if (layout.world_size() != world.size())
    throw Error("rank " + std::to_string(world.global_rank()) + ": the spec's layout has " +
                std::to_string(layout.world_size()) + " ranks (dp×tp×pp×ep) but the job has " +
                std::to_string(world.size()) + " processes");
  const int64_t me = world.rank();
  CommGroups g;
  g.world = &world;
  g.ep = make_group(world, layout.group_of(layout.ep_groups, me), "ep");
  g.expert_dp = make_group(world, layout.group_of(layout.expert_dp_groups, me), "expert_dp");
  g.dense_dp = make_group(world, layout.group_of(layout.dense_dp_groups, me), "dense_dp");
  RankGroup intra, inter;
  hierarchical_groups(layout, me, intra, inter);
  g.ep_intra = make_group(world, intra, "ep_intra");
  g.ep_inter = make_group(world, inter, "ep_inter");
  // Every rank takes the same branches (the sizes are the layout's), so the collective calls match.
  if (layout.tp > 1) g.tp = make_group(world, layout.group_of(layout.tp_groups, me), "tp");
  if (layout.pp > 1) g.pp = make_group(world, layout.group_of(layout.pp_groups, me), "pp");
  if (layout.pp > 1) {
    const int64_t per_stage = layout.tp * layout.ep * layout.dp, first = layout.ranks[static_cast<size_t>(me)].pp * per_stage;
    RankGroup stage;
    for (int64_t r = first; r < first + per_stage; ++r) stage.push_back(r);
    g.stage = make_group(world, stage, "stage");
  }
  g.dp = g.expert_dp.get();
  return g;
}

}  // namespace moe::rt::comm
