#include "expert_migration.h"

#include <chrono>
#include <cstring>
#include <map>

#include "error.h"

namespace moe::rt::ep {

namespace {

// The value and the two moments of one expert param.
struct State {
  std::vector<float> parts[3];
};

bool holds(const LayerPlacement& lp, int64_t member, int64_t e) {
  for (int64_t s : lp.log_to_phy[static_cast<size_t>(e)])
    if (lp.rank_of_slot(s) == member) return true;
  return false;
}

// "model.layers.3.block_sparse_moe.experts.5.w1.weight" with expert 5 → e.
std::string renamed(const std::string& name, int64_t e) {
  const std::string key = ".experts.";
  const size_t at = name.find(key);
  if (at == std::string::npos) throw Error("placement: expert param '" + name + "' has no expert number");
  const size_t from = at + key.size(), to = name.find('.', from);
  return name.substr(0, from) + std::to_string(e) + name.substr(to);
}

}  // namespace

Migration migrate_experts(comm::Communicator& ep, const ExpertReplicas& from, const Placement& to,
                          const std::vector<Param*>& experts, AdamW* optimizer) {
  const auto t0 = std::chrono::steady_clock::now();
  const Placement& old = from.placement();
  if (to.size() != old.size() || (!to.empty() && to[0].slots_per_rank != old[0].slots_per_rank))
    throw Error("placement: a re-placement must keep the layers and the slots per rank");
  const int64_t member = ep.rank(), members = ep.size();
  std::map<const Param*, size_t> opt_index;
  if (optimizer)
    for (size_t i = 0; i < optimizer->params().size(); ++i) opt_index[optimizer->params()[i]] = i;
  auto part = [&](Param* p, int k) -> std::vector<float>& {
    return k == 0 ? p->value : k == 1 ? optimizer->exp_avg()[opt_index.at(p)] : optimizer->exp_avg_sq()[opt_index.at(p)];
  };
  const int parts = optimizer ? 3 : 1;

  // The experts some member will hold without holding them now, in (layer, expert) order.
  std::map<std::pair<int64_t, int64_t>, int64_t> block;
  Migration out;
  const size_t per = experts.empty() ? 0 : experts[0]->value.size();
  for (size_t l = 0; l < to.size(); ++l)
    for (size_t e = 0; e < to[l].log_to_phy.size(); ++e) {
      int64_t receivers = 0;
      for (int64_t s : to[l].log_to_phy[e])
        receivers += !holds(old[l], to[l].rank_of_slot(s), static_cast<int64_t>(e));
      if (receivers == 0) continue;
      block.emplace(std::make_pair(static_cast<int64_t>(l), static_cast<int64_t>(e)), static_cast<int64_t>(block.size()));
      out.bytes += receivers * 3 * parts * static_cast<int64_t>(per * sizeof(float));
    }
  out.experts = static_cast<int64_t>(block.size());

  // What this rank holds now (before any slot is overwritten), and what its primaries send.
  std::map<std::pair<int64_t, int64_t>, State> mine[3];  // by weight: (layer, expert) → state
  std::vector<int64_t> wire(block.size() * 3 * static_cast<size_t>(parts) * per, 0);
  for (size_t k = 0; k < experts.size(); ++k) {
    const LocalExpert x = from.local(k);
    State& st = mine[x.weight][{x.layer, x.logical}];
    for (int p = 0; p < parts; ++p) st.parts[p] = part(experts[k], p);
    auto it = block.find({x.layer, x.logical});
    if (it == block.end() || from.primary_member(x.layer, x.logical) != member) continue;
    for (int p = 0; p < parts; ++p) {
      const std::vector<float>& v = st.parts[p];
      int64_t* dst = wire.data() + ((static_cast<size_t>(it->second) * 3 + x.weight) * parts + p) * per;
      for (size_t i = 0; i < per; ++i) {
        int32_t bits;
        std::memcpy(&bits, &v[i], sizeof bits);
        dst[i] = bits;
      }
    }
  }
  if (!wire.empty() && members > 1) ep.all_reduce_sum(wire.data(), wire.size());

  // Fill the new slots: from this rank's old copy when it had the expert, else from the wire.
  const ExpertReplicas next(to, member);
  for (size_t k = 0; k < experts.size(); ++k) {
    const LocalExpert x = next.local(k);
    Param* p = experts[k];
    p->name = renamed(p->name, x.logical);
    auto held = mine[x.weight].find({x.layer, x.logical});
    for (int q = 0; q < parts; ++q) {
      std::vector<float>& dst = part(p, q);
      if (held != mine[x.weight].end()) {
        dst = held->second.parts[q];
        continue;
      }
      const int64_t b = block.at({x.layer, x.logical});
      const int64_t* src = wire.data() + ((static_cast<size_t>(b) * 3 + x.weight) * parts + q) * per;
      for (size_t i = 0; i < per; ++i) {
        const auto bits = static_cast<int32_t>(src[i]);
        std::memcpy(&dst[i], &bits, sizeof bits);
      }
    }
  }
  out.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace moe::rt::ep
