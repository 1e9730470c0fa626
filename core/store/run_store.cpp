// The run store's write side (run_store.h).
#include "run_store.h"

#include <cmath>
#include <cstdint>
#include <cstdio>


#include "blob_codec.h"
#include "error.h"
#include "job_spec.h"
#include "store_schema.h"

namespace moe::store {

namespace {

constexpr int64_t kMaxMalformedEvents = 1000;  // per run; the summary still counts every one

void bind_text_or_null(Stmt& st, int i, const std::string& text) {
  if (text.empty()) st.bind_null(i);
  else st.bind(i, text);
}

// Names, tags and notes are read back through JSON (the tags' json_group_array, `moe runs list
// --json`, the export): a byte that is not UTF-8 made the reader drop every tag of the run and the
// JSON writers throw. They are refused here, the one door they all go through (CLI, studio, remote).
void require_utf8(const std::string& s, const char* what) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    uint32_t cp = n == 1 ? c : c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (size_t k = 1; n > 1 && k < n; ++k) {
      const unsigned char d = i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
      if ((d & 0xc0) != 0x80) n = 0;
      else cp = (cp << 6) | (d & 0x3f);
    }
    if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) n = 0;
    if (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) n = 0;
    if (n == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", c);
      throw Error(std::string(what) + " is not valid UTF-8 (byte " + hex + " at offset " + std::to_string(i) + ")");
    }
    i += n;
  }
}

}  // namespace

std::string utc_now() { return metrics::iso8601_now(); }

bool is_final_status(const std::string& s) {
  return s == "completed" || s == "failed" || s == "cancelled" || s == "interrupted";
}

struct RunStore::Statements {
  explicit Statements(Db& db)
      : step(db, "INSERT OR REPLACE INTO steps(run_id, step, loss, aux_loss, z_loss, lr, tokens, step_ms,"
                 " tokens_per_s, extra) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
        load(db, "INSERT OR REPLACE INTO expert_load(run_id, layer, step, n_experts, total, max_count,"
                 " dropped_total, cv, counts, dropped, extra) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        a2a(db, "INSERT OR REPLACE INTO a2a(run_id, step, layer, phase, pass, rank_us, rank_bytes,"
                " intra_bytes, inter_bytes, extra) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
        checkpoint(db, "INSERT OR REPLACE INTO checkpoints(run_id, step, path, extra) VALUES(?1, ?2, ?3, ?4)"),
        placement(db, "INSERT OR REPLACE INTO placements(run_id, layer, step, slots_per_rank, phy_to_log, extra)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"),
        coselection(db, "INSERT OR REPLACE INTO coselection(run_id, layer, step, n_experts, pairs, extra)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"),
        event(db, "INSERT INTO events(run_id, at, kind, line, message) VALUES(?1, ?2, ?3, ?4, ?5)"),
        start(db, "UPDATE runs SET spec = ?2, world_size = ?3, backend = ?4, started_at = ?5, hosts = ?6,"
                  " stream_schema = ?7, start_extra = ?8, has_run_start = 1, status = 'running',"
                  " name = CASE WHEN name = '' THEN ?9 ELSE name END WHERE id = ?1"),
        end(db, "UPDATE runs SET status = ?2, end_steps = ?3, end_reason = ?4, end_extra = ?5,"
                " ended_at = ?6 WHERE id = ?1"),
        summary(db, "UPDATE run_summary SET n_steps = n_steps + ?2, total_tokens = total_tokens + ?3,"
                    " last_loss = CASE WHEN ?4 >= 0 AND ?4 >= coalesce(last_step, -1) THEN ?5 ELSE last_loss END,"
                    " last_tokens_per_s = CASE WHEN ?4 >= 0 AND ?4 >= coalesce(last_step, -1) THEN ?6"
                    "   ELSE last_tokens_per_s END,"
                    " last_step = CASE WHEN ?4 < 0 THEN last_step ELSE max(coalesce(last_step, -1), ?4) END,"
                    " n_layers = max(n_layers, ?7), n_experts = max(n_experts, ?8),"
                    " routed_total = routed_total + ?9, dropped_total = dropped_total + ?10,"
                    " last_imbalance = coalesce(?11, last_imbalance),"
                    " malformed_lines = malformed_lines + ?12 WHERE run_id = ?1"),
        load_block(db, "INSERT OR REPLACE INTO expert_load_blocks(run_id, layer, block, n, counts, dropped)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"),
        drop_load_block(db, "DELETE FROM expert_load_blocks WHERE run_id = ?1 AND layer = ?2 AND block = ?3"),
        step_block(db, "INSERT OR REPLACE INTO step_blocks(run_id, block, n, last_step, stats) VALUES(?1, ?2, ?3, ?4, ?5)"),
        drop_step_block(db, "DELETE FROM step_blocks WHERE run_id = ?1 AND block = ?2"),
        level_load(db, "INSERT OR REPLACE INTO expert_load_levels(run_id, layer, level, block, n, counts, dropped)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        drop_level_load(db, "DELETE FROM expert_load_levels WHERE run_id = ?1 AND layer = ?2 AND level = ?3 AND block = ?4"),
        level_step(db, "INSERT OR REPLACE INTO step_levels(run_id, level, block, n, last_step, stats)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"),
        drop_level_step(db, "DELETE FROM step_levels WHERE run_id = ?1 AND level = ?2 AND block = ?3"),
        prior_step(db, "SELECT tokens, loss, aux_loss, z_loss, lr, step_ms, tokens_per_s FROM steps"
                       " WHERE run_id = ?1 AND step = ?2"),
        prior_load(db, "SELECT total, dropped_total, counts, dropped FROM expert_load"
                       " WHERE run_id = ?1 AND layer = ?2 AND step = ?3") {}
  Stmt step, load, a2a, checkpoint, placement, coselection, event, start, end, summary, load_block, drop_load_block, step_block,
      drop_step_block, level_load, drop_level_load, level_step, drop_level_step, prior_step, prior_load;
};

RunStore::RunStore(const std::string& path, StoreOptions options)
    : db_(path, Db::Mode::read_write), options_(options) {
  migrate(db_);
  if (options.max_page_count > 0) {
    db_.exec("PRAGMA max_page_count=" + std::to_string(options.max_page_count), "capping the file size");
  }
  st_ = std::make_unique<Statements>(db_);
}

RunStore::~RunStore() = default;

int64_t RunStore::create_run(const std::string& name, const std::string& spec_json) {
  require_utf8(name, "run name");
  WriteTxn txn(db_);
  Stmt ins(db_, "INSERT INTO runs(name, spec, created_at) VALUES(?1, ?2, ?3)");
  ins.bind(1, name).bind(2, spec_json).bind(3, utc_now()).run();
  int64_t id = db_.last_insert_rowid();
  Stmt sum(db_, "INSERT INTO run_summary(run_id) VALUES(?1)");
  sum.bind(1, id).run();
  txn.commit();
  return id;
}

bool RunStore::run_exists(int64_t run) {
  Stmt st(db_, "SELECT 1 FROM runs WHERE id = ?1");
  st.bind(1, run);
  return st.step();
}

void RunStore::require_run(int64_t run) {
  if (!run_exists(run)) throw Error(db_.path() + ": no run with id " + std::to_string(run));
}

void RunStore::set_status(int64_t run, const std::string& status, const std::optional<std::string>& reason) {
  require_run(run);
  Stmt st(db_, "UPDATE runs SET status = ?2, end_reason = coalesce(?3, end_reason),"
               " ended_at = CASE WHEN ?4 THEN coalesce(ended_at, ?5) ELSE ended_at END WHERE id = ?1");
  st.bind(1, run).bind(2, status);
  if (reason) st.bind(3, *reason);
  else st.bind_null(3);
  st.bind(4, int64_t{is_final_status(status)}).bind(5, utc_now()).run();
}

void RunStore::add_tag(int64_t run, const std::string& tag) {
  require_utf8(tag, "tag");
  require_run(run);
  Stmt st(db_, "INSERT OR IGNORE INTO run_tags(run_id, tag) VALUES(?1, ?2)");
  st.bind(1, run).bind(2, tag).run();
}

void RunStore::remove_tag(int64_t run, const std::string& tag) {
  require_run(run);
  Stmt st(db_, "DELETE FROM run_tags WHERE run_id = ?1 AND tag = ?2");
  st.bind(1, run).bind(2, tag).run();
}

void RunStore::set_notes(int64_t run, const std::string& notes) {
  require_utf8(notes, "notes");
  require_run(run);
  Stmt st(db_, "UPDATE runs SET notes = ?2 WHERE id = ?1");
  st.bind(1, run).bind(2, notes).run();
}

void RunStore::rename(int64_t run, const std::string& name) {
  require_utf8(name, "run name");
  require_run(run);
  Stmt st(db_, "UPDATE runs SET name = ?2 WHERE id = ?1");
  st.bind(1, run).bind(2, name).run();
}

void RunStore::delete_run(int64_t run) {
  require_run(run);
  WriteTxn txn(db_);
  Stmt st(db_, "DELETE FROM runs WHERE id = ?1");  // ON DELETE CASCADE removes the rest
  st.bind(1, run).run();
  txn.commit();
}

RunWriteState RunStore::load_write_state(int64_t run) {
  Stmt st(db_, "SELECT has_run_start, status, (SELECT count(*) FROM events WHERE run_id = ?1 AND kind = 'malformed')"
               " FROM runs WHERE id = ?1");
  st.bind(1, run);
  if (!st.step()) throw Error(db_.path() + ": no run with id " + std::to_string(run));
  RunWriteState s;
  s.has_run_start = st.col_int(0) != 0;
  std::string status = st.col_text(1);
  s.has_run_end = status == "completed" || status == "failed" || status == "cancelled";
  s.malformed_events = st.col_int(2);
  Stmt any(db_, "SELECT EXISTS(SELECT 1 FROM steps WHERE run_id = ?1) OR EXISTS(SELECT 1 FROM expert_load WHERE run_id = ?1)");
  any.bind(1, run);
  s.first_blocks = any.step() && any.col_int(0) != 0;
  return s;
}

void RunStore::roll_load(int64_t run, const ExpertLoadRecord& r, RunWriteState& state) {
  if (state.load_blocks.size() <= static_cast<size_t>(r.layer)) {
    if (r.layer > 100000) return;  // absurd layer numbers get no rollup (raw rows still serve them)
    state.load_blocks.resize(r.layer + 1);
    state.load_levels.resize(r.layer + 1);
  }
  LoadBlockAcc& acc = state.load_blocks[r.layer];
  const int64_t block = r.step / kBlockSteps;
  if (block == acc.block) {
    if (r.step > acc.last_step && r.counts.size() == acc.counts.size()) {
      for (size_t e = 0; e < r.counts.size(); ++e) {
        acc.counts[e] += r.counts[e];
        acc.dropped[e] += r.dropped[e];
      }
      ++acc.n;
      acc.last_step = r.step;
    } else {
      acc.valid = false;
    }
    return;
  }
  if (block < acc.block) {
    // Out of order: the row landed in an older block whose rollups may exist; drop them.
    st_->drop_load_block.bind(1, run).bind(2, r.layer).bind(3, block).run();
    drop_parents(run, r.layer, block, state);
    return;
  }
  if (acc.block >= 0) {
    const bool whole = acc.valid && acc.n > 0;
    if (whole) {
      std::string c = encode_ints(acc.counts), d = encode_ints(acc.dropped);
      Stmt& s = st_->load_block;
      s.bind(1, run).bind(2, r.layer).bind(3, acc.block).bind(4, acc.n);
      s.bind_blob(5, c.data(), c.size()).bind_blob(6, d.data(), d.size()).run();
    }
    close_load_child(run, r.layer, 1, acc, whole, state);
  }
  // A new block; the first of a session may already hold rows of an earlier session.
  acc.valid = acc.block >= 0 || !state.first_blocks;
  if (!acc.valid) st_->drop_load_block.bind(1, run).bind(2, r.layer).bind(3, block).run();
  acc.block = block;
  acc.n = 1;
  acc.last_step = r.step;
  acc.counts = r.counts;
  acc.dropped = r.dropped;
}

// A block of level − 1 closed (whole: its sums are good): it goes into its parent at `level`, which
// closes first (written when whole, passed up) if the child lies past it.
void RunStore::close_load_child(int64_t run, int64_t layer, int level, const LoadBlockAcc& child, bool whole,
                                RunWriteState& state) {
  if (level >= kRollupLevels) return;
  LoadBlockAcc& p = state.load_levels[layer][level - 1];
  const int64_t parent = child.block >> 2;
  if (parent != p.block) {
    if (p.block >= 0) {
      const bool p_whole = p.valid && p.n > 0;
      if (p_whole) {
        std::string c = encode_ints(p.counts), d = encode_ints(p.dropped);
        Stmt& s = st_->level_load;
        s.bind(1, run).bind(2, layer).bind(3, int64_t{level}).bind(4, p.block).bind(5, p.n);
        s.bind_blob(6, c.data(), c.size()).bind_blob(7, d.data(), d.size()).run();
      }
      close_load_child(run, layer, level + 1, p, p_whole, state);
    }
    // The first parent of a session may hold children of an earlier session: never rolled up.
    p.valid = p.block >= 0 || !state.first_blocks;
    if (!p.valid) st_->drop_level_load.bind(1, run).bind(2, layer).bind(3, int64_t{level}).bind(4, parent).run();
    p.block = parent;
    p.n = 0;
    p.counts.clear();
    p.dropped.clear();
  }
  if (!whole || (p.n > 0 && p.counts.size() != child.counts.size())) {
    p.valid = false;
    return;
  }
  if (p.n == 0) {
    p.counts = child.counts;
    p.dropped = child.dropped;
  } else {
    for (size_t e = 0; e < child.counts.size(); ++e) {
      p.counts[e] += child.counts[e];
      p.dropped[e] += child.dropped[e];
    }
  }
  p.n += child.n;
  p.last_step = child.last_step;
}

// A row landed in level-0 block `block` after it closed: every coarser block holding it is spoiled.
void RunStore::drop_parents(int64_t run, int64_t layer, int64_t block, RunWriteState& state) {
  for (int level = 1; level < kRollupLevels; ++level) {
    const int64_t parent = block >> (2 * level);
    if (layer >= 0) {
      LoadBlockAcc& p = state.load_levels[layer][level - 1];
      if (p.block == parent) p.valid = false;
      else st_->drop_level_load.bind(1, run).bind(2, layer).bind(3, int64_t{level}).bind(4, parent).run();
    } else {
      StepBlockAcc& p = state.step_levels[level - 1];
      if (p.block == parent) p.valid = false;
      else st_->drop_level_step.bind(1, run).bind(2, int64_t{level}).bind(3, parent).run();
    }
  }
}

void RunStore::roll_step(int64_t run, const StepRecord& r, RunWriteState& state) {
  StepBlockAcc& acc = state.step_block;
  const double v[7] = {r.loss, r.aux_loss, r.z_loss, r.lr, static_cast<double>(r.tokens), r.step_ms, r.tokens_per_s};
  const int64_t block = r.step / kBlockSteps;
  if (block == acc.block) {
    if (r.step > acc.last_step) {
      for (int m = 0; m < 7; ++m) {
        acc.stats[3 * m] = std::min(acc.stats[3 * m], v[m]);
        acc.stats[3 * m + 1] = std::max(acc.stats[3 * m + 1], v[m]);
        acc.stats[3 * m + 2] = v[m];
      }
      ++acc.n;
      acc.last_step = r.step;
    } else {
      acc.valid = false;
    }
    return;
  }
  if (block < acc.block) {
    st_->drop_step_block.bind(1, run).bind(2, block).run();
    drop_parents(run, -1, block, state);
    return;
  }
  if (acc.block >= 0) {
    const bool whole = acc.valid && acc.n > 0;
    if (whole) {
      std::string stats(reinterpret_cast<const char*>(acc.stats), sizeof acc.stats);
      Stmt& s = st_->step_block;
      s.bind(1, run).bind(2, acc.block).bind(3, acc.n).bind(4, acc.last_step);
      s.bind_blob(5, stats.data(), stats.size()).run();
    }
    close_step_child(run, 1, acc, whole, state);
  }
  acc.valid = acc.block >= 0 || !state.first_blocks;
  if (!acc.valid) st_->drop_step_block.bind(1, run).bind(2, block).run();
  acc.block = block;
  acc.n = 1;
  acc.last_step = r.step;
  for (int m = 0; m < 7; ++m) acc.stats[3 * m] = acc.stats[3 * m + 1] = acc.stats[3 * m + 2] = v[m];
}

// As close_load_child, for the step metrics: min of the minima, max of the maxima, the last child's last.
void RunStore::close_step_child(int64_t run, int level, const StepBlockAcc& child, bool whole, RunWriteState& state) {
  if (level >= kRollupLevels) return;
  StepBlockAcc& p = state.step_levels[level - 1];
  const int64_t parent = child.block >> 2;
  if (parent != p.block) {
    if (p.block >= 0) {
      const bool p_whole = p.valid && p.n > 0;
      if (p_whole) {
        std::string stats(reinterpret_cast<const char*>(p.stats), sizeof p.stats);
        Stmt& s = st_->level_step;
        s.bind(1, run).bind(2, int64_t{level}).bind(3, p.block).bind(4, p.n).bind(5, p.last_step);
        s.bind_blob(6, stats.data(), stats.size()).run();
      }
      close_step_child(run, level + 1, p, p_whole, state);
    }
    p.valid = p.block >= 0 || !state.first_blocks;
    if (!p.valid) st_->drop_level_step.bind(1, run).bind(2, int64_t{level}).bind(3, parent).run();
    p.block = parent;
    p.n = 0;
  }
  if (!whole) {
    p.valid = false;
    return;
  }
  for (int m = 0; m < 7; ++m) {
    if (p.n == 0) {
      p.stats[3 * m] = child.stats[3 * m];
      p.stats[3 * m + 1] = child.stats[3 * m + 1];
    } else {
      p.stats[3 * m] = std::min(p.stats[3 * m], child.stats[3 * m]);
      p.stats[3 * m + 1] = std::max(p.stats[3 * m + 1], child.stats[3 * m + 1]);
    }
    p.stats[3 * m + 2] = child.stats[3 * m + 2];
  }
  p.n += child.n;
  p.last_step = child.last_step;
}

void RunStore::add_a2a(int64_t run, const A2aRecord& r, const std::string& extra, RunWriteState& state) {
  if (r.step != state.a2a_step) {
    flush_a2a(run, state);
    state.a2a_step = r.step;
    state.a2a_sums.clear();
    state.a2a_seen.clear();
  }
  auto key = std::make_pair(r.phase, r.pass);
  auto it = state.a2a_sums.find(key);
  if (it == state.a2a_sums.end()) {
    // The step's first record of this kind in this session: go on from what an earlier batch or
    // session stored (a step split across commits, a reattach).
    it = state.a2a_sums.emplace(key, read_a2a_step(db_, run, r.step, r.phase, r.pass).value_or(A2aStepSum{})).first;
  }
  if (state.a2a_seen.emplace(r.layer, r.phase, r.pass).second) {
    it->second.add(r);
    state.a2a_dirty = true;
  }
  if (!keep_a2a_detail(r, !extra.empty(), options_.a2a_detail_every, options_.a2a_anomaly_ratio)) return;
  std::string us = encode_doubles(r.rank_us), bytes = encode_ints(r.rank_bytes);
  Stmt& s = st_->a2a;
  s.bind(1, run).bind(2, r.step).bind(3, r.layer).bind(4, r.phase).bind(5, r.pass);
  s.bind_blob(6, us.data(), us.size()).bind_blob(7, bytes.data(), bytes.size());
  if (r.intra_bytes) s.bind(8, *r.intra_bytes);
  else s.bind_null(8);
  if (r.inter_bytes) s.bind(9, *r.inter_bytes);
  else s.bind_null(9);
  bind_text_or_null(s, 10, extra);
  s.run();
}

// Writes the current step's sums (again: each batch rewrites them as the step's records arrive).
void RunStore::flush_a2a(int64_t run, RunWriteState& state) {
  if (!state.a2a_dirty) return;
  for (const auto& [key, sum] : state.a2a_sums) write_a2a_step(db_, run, state.a2a_step, key.first, key.second, sum);
  state.a2a_dirty = false;
}

BatchResult RunStore::write_batch(int64_t run, std::span<const Record> records, RunWriteState& state) {
  // Summary deltas of this batch.
  int64_t n_steps = 0, tokens = 0, last_step = -1, n_layers = 0, n_experts = 0, routed = 0, dropped = 0;
  int64_t malformed = 0;
  double last_loss = NAN, last_tps = NAN;
  int64_t load_step = -1;
  double imbalance_sum = 0;
  int64_t imbalance_n = 0;
  const std::string now = utc_now();

  auto add_event = [&](const std::string& kind, int64_t line, const std::string& message) {
    Stmt& e = st_->event;
    e.bind(1, run).bind(2, now).bind(3, kind);
    if (line > 0) e.bind(4, line);
    else e.bind_null(4);
    e.bind(5, message).run();
  };
  auto before_start = [&]() {
    if (!state.has_run_start && !state.warned_no_start) {
      state.warned_no_start = true;
      add_event("warning", 0, "records before run_start");
    }
  };

  WriteTxn txn(db_);
  for (const Record& rec : records) {
    if (auto* r = std::get_if<StepRecord>(&rec)) {
      before_start();
      // A step delivered twice (a re-read after reattach, a restarted writer) replaces its row; the
      // summary must count it once, so what the old row contributed is taken back out.
      Stmt& prior = st_->prior_step;
      prior.bind(1, run).bind(2, r->step);
      const bool repeated = prior.step();
      const int64_t prior_tokens = repeated ? prior.col_int(0) : 0;
      // The same step again with other figures: the rollups holding the old ones are spoiled
      // (roll_step drops a closed block and its parents, invalidates the open one). The same
      // figures again (a re-read after reattach) change nothing.
      const bool changed = repeated && (prior.col_double(1) != r->loss || prior.col_double(2) != r->aux_loss ||
                                        prior.col_double(3) != r->z_loss || prior.col_double(4) != r->lr ||
                                        prior_tokens != r->tokens || prior.col_double(5) != r->step_ms ||
                                        prior.col_double(6) != r->tokens_per_s);
      prior.reset();
      Stmt& s = st_->step;
      s.bind(1, run).bind(2, r->step).bind(3, r->loss).bind(4, r->aux_loss).bind(5, r->z_loss).bind(6, r->lr);
      s.bind(7, r->tokens).bind(8, r->step_ms).bind(9, r->tokens_per_s);
      bind_text_or_null(s, 10, metrics::stored_extra(rec));
      s.run();
      if (!repeated || changed) roll_step(run, *r, state);
      if (!repeated) ++n_steps;
      tokens += r->tokens - prior_tokens;
      if (r->step >= last_step) {
        last_step = r->step;
        last_loss = r->loss;
        last_tps = r->tokens_per_s;
      }
    } else if (auto* r = std::get_if<ExpertLoadRecord>(&rec)) {
      before_start();
      int64_t total = 0, mx = 0, drop = 0;
      for (size_t e = 0; e < r->counts.size(); ++e) {
        total += r->counts[e];
        mx = std::max(mx, r->counts[e]);
        drop += r->dropped[e];
      }
      const double E = static_cast<double>(r->counts.size());
      double cv = 0;
      if (total > 0) {
        double mean = total / E, var = 0;
        for (int64_t c : r->counts) var += (c - mean) * (c - mean);
        cv = std::sqrt(var / E) / mean;
      }
      Stmt& prior = st_->prior_load;
      prior.bind(1, run).bind(2, r->layer).bind(3, r->step);
      const bool repeated = prior.step();
      const int64_t prior_total = repeated ? prior.col_int(0) : 0, prior_drop = repeated ? prior.col_int(1) : 0;
      std::string counts = encode_ints(r->counts), drops = encode_ints(r->dropped);
      // Other counts for a step already stored: its rollups are spoiled (as for the step metrics).
      const bool changed = repeated && (decode_ints(prior.col_blob(2), "expert_load.counts") != r->counts ||
                                        decode_ints(prior.col_blob(3), "expert_load.dropped") != r->dropped);
      prior.reset();
      Stmt& s = st_->load;
      s.bind(1, run).bind(2, r->layer).bind(3, r->step).bind(4, static_cast<int64_t>(r->counts.size()));
      s.bind(5, total).bind(6, mx).bind(7, drop).bind(8, cv);
      s.bind_blob(9, counts.data(), counts.size()).bind_blob(10, drops.data(), drops.size());
      bind_text_or_null(s, 11, metrics::stored_extra(rec));
      s.run();
      if (!repeated || changed) roll_load(run, *r, state);
      n_layers = std::max(n_layers, r->layer + 1);
      n_experts = std::max<int64_t>(n_experts, r->counts.size());
      routed += total - prior_total;
      dropped += drop - prior_drop;
      if (r->step > load_step) {
        load_step = r->step;
        imbalance_sum = 0;
        imbalance_n = 0;
      }
      if (r->step == load_step && total > 0) {
        imbalance_sum += mx / (total / E);
        ++imbalance_n;
      }
    } else if (auto* r = std::get_if<A2aRecord>(&rec)) {
      before_start();
      add_a2a(run, *r, metrics::stored_extra(rec), state);
    } else if (auto* r = std::get_if<CheckpointRecord>(&rec)) {
      Stmt& s = st_->checkpoint;
      s.bind(1, run).bind(2, r->step).bind(3, r->path);
      bind_text_or_null(s, 4, metrics::stored_extra(rec));
      s.run();
    } else if (auto* r = std::get_if<PlacementRecord>(&rec)) {
      const std::string map = encode_ints(r->phy_to_log);
      Stmt& s = st_->placement;
      s.bind(1, run).bind(2, r->layer).bind(3, r->step).bind(4, r->slots_per_rank).bind_blob(5, map.data(), map.size());
      bind_text_or_null(s, 6, metrics::stored_extra(rec));
      s.run();
    } else if (auto* r = std::get_if<CoselectionRecord>(&rec)) {
      const std::string pairs = encode_ints(r->pairs);
      Stmt& s = st_->coselection;
      s.bind(1, run).bind(2, r->layer).bind(3, r->step).bind(4, r->experts).bind_blob(5, pairs.data(), pairs.size());
      bind_text_or_null(s, 6, metrics::stored_extra(rec));
      s.run();
    } else if (auto* r = std::get_if<RunStartRecord>(&rec)) {
      if (state.has_run_start) {
        add_event("warning", 0, "a second run_start was ignored");
        continue;
      }
      const std::string name = read_recorded_spec(r->spec).name;
      Stmt& s = st_->start;
      s.bind(1, run).bind(2, r->spec).bind(3, r->world_size).bind(4, r->backend).bind(5, r->started_at);
      s.bind(6, r->hosts).bind(7, r->schema);
      bind_text_or_null(s, 8, metrics::stored_extra(rec));
      s.bind(9, name.empty() ? std::string("run") : name).run();
      state.has_run_start = true;
    } else if (auto* r = std::get_if<RunEndRecord>(&rec)) {
      if (!state.has_run_start) {
        ++malformed;
        add_event("malformed", 0, "run_end without run_start (status " + r->status + ") was ignored");
        continue;
      }
      Stmt& s = st_->end;
      s.bind(1, run).bind(2, r->status).bind(3, r->steps);
      if (r->reason) s.bind(4, *r->reason);
      else s.bind_null(4);
      bind_text_or_null(s, 5, metrics::stored_extra(rec));
      s.bind(6, now).run();
      state.has_run_end = true;
    } else if (auto* r = std::get_if<EventRecord>(&rec)) {
      if (r->kind == "malformed") {
        ++malformed;
        if (state.malformed_events >= kMaxMalformedEvents) continue;
        ++state.malformed_events;
      }
      add_event(r->kind, r->line, r->message);
    }
  }
  flush_a2a(run, state);
  Stmt& s = st_->summary;
  s.bind(1, run).bind(2, n_steps).bind(3, tokens).bind(4, last_step).bind(5, last_loss).bind(6, last_tps);
  s.bind(7, n_layers).bind(8, n_experts).bind(9, routed).bind(10, dropped);
  s.bind(11, imbalance_n > 0 ? imbalance_sum / imbalance_n : NAN).bind(12, malformed).run();
  if (state.source_offset) {  // a remote run's resume point moves with its records, atomically
    Stmt off(db_, "UPDATE remote_runs SET metrics_offset = ?2 WHERE run_id = ?1");
    off.bind(1, run).bind(2, static_cast<int64_t>(*state.source_offset)).run();
    state.source_offset.reset();
  }
  txn.commit();
  return BatchResult{static_cast<int64_t>(records.size()), last_step};
}

}  // namespace moe::store
