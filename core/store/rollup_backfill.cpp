// Rebuilding the coarser rollups from the 16-step blocks (see rollup_backfill.h).
#include "rollup_backfill.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "blob_codec.h"
#include "store_schema.h"

namespace moe::store {

namespace {

struct LoadBlock {
  int64_t n = 0;
  std::vector<int64_t> counts, dropped;
};

struct StepBlock {
  int64_t n = 0, last_step = 0;
  double stats[21] = {};  // per metric: min, max, last (RunStore's StepBlockAcc layout)
};

// Whether raw rows lie in 16-step block `block` (of one layer, or of the steps when layer < 0).
class RawRows {
 public:
  explicit RawRows(Db& db)
      : load_(db, "SELECT EXISTS(SELECT 1 FROM expert_load WHERE run_id = ?1 AND layer = ?2 AND step BETWEEN ?3 AND ?4)"),
        steps_(db, "SELECT EXISTS(SELECT 1 FROM steps WHERE run_id = ?1 AND step BETWEEN ?2 AND ?3)") {}
  bool any(int64_t run, int64_t layer, int64_t block) {
    const int64_t first = block * kBlockSteps, last = first + kBlockSteps - 1;
    Stmt& st = layer >= 0 ? load_ : steps_;
    st.reset();
    if (layer >= 0) st.bind(1, run).bind(2, layer).bind(3, first).bind(4, last);
    else st.bind(1, run).bind(2, first).bind(3, last);
    const bool found = st.step() && st.col_int(0) != 0;
    st.reset();
    return found;
  }

 private:
  Stmt load_, steps_;
};

// Calls `add(block)` for each level-0 block of the parent `parent` at `level`, in order; false when
// a block without its row holds raw rows (the parent would not be exact) or no block has a row.
template <class Blocks, class Add>
bool gather(const Blocks& blocks, int level, int64_t parent, RawRows& raw, int64_t run, int64_t layer, Add add) {
  const int64_t first = parent << (2 * level), end = (parent + 1) << (2 * level);
  bool any = false;
  for (int64_t b = first; b < end; ++b) {
    auto it = blocks.find(b);
    if (it == blocks.end()) {
      if (raw.any(run, layer, b)) return false;
      continue;
    }
    if (!add(it->second)) return false;
    any = true;
  }
  return any;
}

template <class Blocks>
std::vector<int64_t> parents_of(const Blocks& blocks, int level) {
  std::vector<int64_t> out;
  for (const auto& [b, _] : blocks)
    if (out.empty() || out.back() != b >> (2 * level)) out.push_back(b >> (2 * level));
  return out;
}

void backfill_loads(Db& db, int64_t run, RawRows& raw) {
  Stmt layers(db, "SELECT DISTINCT layer FROM expert_load_blocks WHERE run_id = ?1");
  Stmt read(db, "SELECT block, n, counts, dropped FROM expert_load_blocks WHERE run_id = ?1 AND layer = ?2");
  Stmt write(db, "INSERT OR IGNORE INTO expert_load_levels(run_id, layer, level, block, n, counts, dropped)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  layers.bind(1, run);
  std::vector<int64_t> all_layers;
  while (layers.step()) all_layers.push_back(layers.col_int(0));
  for (const int64_t layer : all_layers) {
    std::map<int64_t, LoadBlock> blocks;  // one layer's 16-step blocks
    read.reset();
    read.bind(1, run).bind(2, layer);
    while (read.step())
      blocks[read.col_int(0)] = {read.col_int(1), decode_ints(read.col_blob(2), "expert_load_blocks.counts"),
                                 decode_ints(read.col_blob(3), "expert_load_blocks.dropped")};
    for (int level = 1; level < kRollupLevels; ++level)
      for (const int64_t parent : parents_of(blocks, level)) {
        LoadBlock sum;
        const bool whole = gather(blocks, level, parent, raw, run, layer, [&](const LoadBlock& b) {
          if (sum.n == 0) sum.counts = b.counts, sum.dropped = b.dropped;
          else if (b.counts.size() != sum.counts.size() || b.dropped.size() != sum.dropped.size()) return false;
          else
            for (size_t e = 0; e < b.counts.size(); ++e) sum.counts[e] += b.counts[e], sum.dropped[e] += b.dropped[e];
          sum.n += b.n;
          return true;
        });
        if (!whole) continue;
        const std::string c = encode_ints(sum.counts), d = encode_ints(sum.dropped);
        write.bind(1, run).bind(2, layer).bind(3, int64_t{level}).bind(4, parent).bind(5, sum.n);
        write.bind_blob(6, c.data(), c.size()).bind_blob(7, d.data(), d.size()).run();
      }
  }
}

void backfill_steps(Db& db, int64_t run, RawRows& raw) {
  Stmt read(db, "SELECT block, n, last_step, stats FROM step_blocks WHERE run_id = ?1");
  Stmt write(db, "INSERT OR IGNORE INTO step_levels(run_id, level, block, n, last_step, stats)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  std::map<int64_t, StepBlock> blocks;
  read.bind(1, run);
  while (read.step()) {
    StepBlock b{read.col_int(1), read.col_int(2), {}};
    const auto blob = read.col_blob(3);
    if (blob.size() != sizeof b.stats) continue;  // not a block this writer made: leave its parents out
    std::memcpy(b.stats, blob.data(), sizeof b.stats);
    blocks[read.col_int(0)] = b;
  }
  for (int level = 1; level < kRollupLevels; ++level)
    for (const int64_t parent : parents_of(blocks, level)) {
      StepBlock sum;
      const bool whole = gather(blocks, level, parent, raw, run, -1, [&](const StepBlock& b) {
        for (int m = 0; m < 7; ++m) {
          sum.stats[3 * m] = sum.n == 0 ? b.stats[3 * m] : std::min(sum.stats[3 * m], b.stats[3 * m]);
          sum.stats[3 * m + 1] = sum.n == 0 ? b.stats[3 * m + 1] : std::max(sum.stats[3 * m + 1], b.stats[3 * m + 1]);
          sum.stats[3 * m + 2] = b.stats[3 * m + 2];  // blocks come in order: the last one's last
        }
        sum.n += b.n;
        sum.last_step = b.last_step;
        return true;
      });
      if (!whole) continue;
      write.bind(1, run).bind(2, int64_t{level}).bind(3, parent).bind(4, sum.n).bind(5, sum.last_step);
      write.bind_blob(6, sum.stats, sizeof sum.stats).run();
    }
}

}  // namespace

void backfill_rollup_levels(Db& db) {
  Stmt runs(db, "SELECT id FROM runs ORDER BY id");
  std::vector<int64_t> ids;
  while (runs.step()) ids.push_back(runs.col_int(0));
  RawRows raw(db);
  for (const int64_t run : ids) {
    backfill_loads(db, run, raw);
    backfill_steps(db, run, raw);
  }
}

}  // namespace moe::store
