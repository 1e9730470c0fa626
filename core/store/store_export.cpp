// Export of a stored run as JSON Lines (the stream again) or CSV (store_export.h).
#include "store_export.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "blob_codec.h"
#include "error.h"
#include "store_records.h"

namespace moe::store {

namespace {

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string num(double v) {
  if (std::isnan(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();

}  // namespace

int64_t export_jsonl(RunReader& reader, int64_t run, std::ostream& out) {
  Db& db = reader.db();
  ReadTxn txn(db);
  int64_t written = 0;
  std::string line;
  auto emit = [&](const metrics::Record& rec) {
    line.clear();
    metrics::append_line(line, rec);
    out << line;
    ++written;
  };
  auto text_or_empty = [](Stmt& st, int col) { return st.is_null(col) ? std::string() : st.col_text(col); };
  Stmt r(db, "SELECT stream_schema, spec, world_size, backend, started_at, hosts, start_extra, has_run_start,"
             " status, end_steps, end_reason, end_extra, (SELECT n_steps FROM run_summary WHERE run_id = ?1)"
             " FROM runs WHERE id = ?1");
  r.bind(1, run);
  if (!r.step()) throw Error(db.path() + ": no run with id " + std::to_string(run));
  if (r.col_int(7) != 0) {  // a run that never got its run_start has none to give back (world_size 0 breaks 3.3)
    RunStartRecord rec;
    rec.schema = r.is_null(0) ? metrics::kStreamSchema : r.col_int(0);
    rec.spec = r.col_text(1);
    rec.world_size = r.col_int(2);
    rec.backend = text_or_empty(r, 3);
    rec.started_at = text_or_empty(r, 4);
    rec.hosts = r.col_text(5);
    rec.extra = text_or_empty(r, 6);
    emit(rec);
  }

  Stmt steps(db, "SELECT step, loss, aux_loss, z_loss, lr, tokens, step_ms, tokens_per_s, extra FROM steps"
                 " WHERE run_id = ?1 ORDER BY step");
  Stmt loads(db, "SELECT step, layer, counts, dropped, extra FROM expert_load WHERE run_id = ?1 ORDER BY step, layer");
  Stmt a2a(db, "SELECT step, layer, phase, pass, rank_us, rank_bytes, intra_bytes, inter_bytes, extra FROM a2a"
               " WHERE run_id = ?1 ORDER BY step, layer, phase DESC, pass DESC");
  Stmt ckpt(db, "SELECT step, path, extra FROM checkpoints WHERE run_id = ?1 ORDER BY step, path");
  Stmt place(db, "SELECT step, layer, slots_per_rank, phy_to_log, extra FROM placements WHERE run_id = ?1 ORDER BY step, layer");
  Stmt cosel(db, "SELECT step, layer, n_experts, pairs, extra FROM coselection WHERE run_id = ?1 ORDER BY step, layer");
  // Per step: the placement in force from it, the routing (expert_load, coselection), a2a, step, checkpoint.
  Stmt* cursors[] = {&loads, &a2a, &steps, &ckpt, &place, &cosel};
  constexpr int kCursors = 6;
  bool live[kCursors];
  for (int i = 0; i < kCursors; ++i) {
    cursors[i]->bind(1, run);
    live[i] = cursors[i]->step();
  }
  auto step_of = [&](int i) { return live[i] ? cursors[i]->col_int(0) : kEnd; };
  for (;;) {
    int64_t s = kEnd;
    for (int i = 0; i < kCursors; ++i) s = std::min(s, step_of(i));
    if (s == kEnd) break;
    while (step_of(4) == s) {
      PlacementRecord rec;
      rec.step = s;
      rec.layer = place.col_int(1);
      rec.slots_per_rank = place.col_int(2);
      rec.phy_to_log = decode_ints(place.col_blob(3), "placements.phy_to_log");
      rec.extra = text_or_empty(place, 4);
      emit(rec);
      live[4] = place.step();
    }
    while (step_of(0) == s) {
      ExpertLoadRecord rec;
      rec.step = s;
      rec.layer = loads.col_int(1);
      rec.counts = decode_ints(loads.col_blob(2), "expert_load.counts");
      rec.dropped = decode_ints(loads.col_blob(3), "expert_load.dropped");
      rec.extra = text_or_empty(loads, 4);
      emit(rec);
      live[0] = loads.step();
    }
    while (step_of(5) == s) {
      CoselectionRecord rec;
      rec.step = s;
      rec.layer = cosel.col_int(1);
      rec.experts = cosel.col_int(2);
      rec.pairs = decode_ints(cosel.col_blob(3), "coselection.pairs");
      rec.extra = text_or_empty(cosel, 4);
      emit(rec);
      live[5] = cosel.step();
    }
    while (step_of(1) == s) {
      A2aRecord rec;
      rec.step = s;
      rec.layer = a2a.col_int(1);
      rec.phase = a2a.col_text(2);
      rec.pass = a2a.col_text(3);
      rec.rank_us = decode_doubles(a2a.col_blob(4), "a2a.rank_us");
      rec.rank_bytes = decode_ints(a2a.col_blob(5), "a2a.rank_bytes");
      if (!a2a.is_null(6)) rec.intra_bytes = a2a.col_int(6);
      if (!a2a.is_null(7)) rec.inter_bytes = a2a.col_int(7);
      rec.extra = text_or_empty(a2a, 8);
      emit(rec);
      live[1] = a2a.step();
    }
    while (step_of(2) == s) {
      StepRecord rec;
      rec.step = s;
      rec.loss = steps.col_double(1);
      rec.aux_loss = steps.col_double(2);
      rec.z_loss = steps.col_double(3);
      rec.lr = steps.col_double(4);
      rec.tokens = steps.col_int(5);
      rec.step_ms = steps.col_double(6);
      rec.tokens_per_s = steps.col_double(7);
      rec.extra = text_or_empty(steps, 8);
      emit(rec);
      live[2] = steps.step();
    }
    while (step_of(3) == s) {
      CheckpointRecord rec;
      rec.step = s;
      rec.path = ckpt.col_text(1);
      rec.extra = text_or_empty(ckpt, 2);
      emit(rec);
      live[3] = ckpt.step();
    }
  }

  std::string status = r.col_text(8);
  if (status == "completed" || status == "failed" || status == "cancelled") {
    RunEndRecord rec;
    rec.status = status;
    rec.steps = r.is_null(9) ? r.col_int(12) : r.col_int(9);
    if (!r.is_null(10)) rec.reason = r.col_text(10);
    rec.extra = text_or_empty(r, 11);
    emit(rec);
  }
  return written;
}

std::vector<std::string> csv_tables() {
  // The record tables are named after their record types (store_schema.cpp).
  return {"steps", std::string(metrics::type_name<ExpertLoadRecord>()), std::string(metrics::type_name<A2aRecord>()),
          "events", "a2a_steps"};
}

int64_t export_csv(RunReader& reader, int64_t run, const std::string& table, std::ostream& out) {
  const std::vector<std::string> tables = csv_tables();
  Db& db = reader.db();
  ReadTxn txn(db);
  reader.run(run);  // a clear error for a missing run
  int64_t rows = 0;
  if (table == "steps") {
    out << "step,loss,aux_loss,z_loss,lr,tokens,step_ms,tokens_per_s\n";
    Stmt st(db, "SELECT step, loss, aux_loss, z_loss, lr, tokens, step_ms, tokens_per_s FROM steps"
                " WHERE run_id = ?1 ORDER BY step");
    st.bind(1, run);
    while (st.step()) {
      out << st.col_int(0) << ',' << num(st.col_double(1)) << ',' << num(st.col_double(2)) << ','
          << num(st.col_double(3)) << ',' << num(st.col_double(4)) << ',' << st.col_int(5) << ','
          << num(st.col_double(6)) << ',' << num(st.col_double(7)) << '\n';
      ++rows;
    }
  } else if (table == tables[1]) {
    out << "step,layer,expert,count,dropped\n";
    Stmt st(db, "SELECT step, layer, counts, dropped FROM expert_load WHERE run_id = ?1 ORDER BY step, layer");
    st.bind(1, run);
    while (st.step()) {
      auto counts = decode_ints(st.col_blob(2), "expert_load.counts");
      auto dropped = decode_ints(st.col_blob(3), "expert_load.dropped");
      for (size_t e = 0; e < counts.size(); ++e) {
        out << st.col_int(0) << ',' << st.col_int(1) << ',' << e << ',' << counts[e] << ','
            << (e < dropped.size() ? dropped[e] : 0) << '\n';
        ++rows;
      }
    }
  } else if (table == tables[2]) {
    out << "step,layer,phase,pass,rank,us,bytes\n";
    Stmt st(db, "SELECT step, layer, phase, pass, rank_us, rank_bytes FROM a2a WHERE run_id = ?1"
                " ORDER BY step, layer, phase DESC, pass DESC");
    st.bind(1, run);
    while (st.step()) {
      auto us = decode_doubles(st.col_blob(4), "a2a.rank_us");
      auto bytes = decode_ints(st.col_blob(5), "a2a.rank_bytes");
      for (size_t p = 0; p < us.size(); ++p) {
        out << st.col_int(0) << ',' << st.col_int(1) << ',' << st.col_text(2) << ',' << st.col_text(3) << ','
            << p << ',' << num(us[p]) << ',' << (p < bytes.size() ? bytes[p] : 0) << '\n';
        ++rows;
      }
    }
  } else if (table == "a2a_steps") {
    out << "step,phase,pass,records,rank,sum_us,min_us,max_us,bytes\n";
    Stmt st(db, "SELECT step, phase, pass, records, sum_ns, min_ns, max_ns, sum_bytes FROM a2a_steps"
                " WHERE run_id = ?1 ORDER BY step, phase DESC, pass DESC");
    st.bind(1, run);
    while (st.step()) {
      auto sum = decode_ints(st.col_blob(4), "a2a_steps.sum_ns");
      auto mn = decode_ints(st.col_blob(5), "a2a_steps.min_ns");
      auto mx = decode_ints(st.col_blob(6), "a2a_steps.max_ns");
      auto bytes = decode_ints(st.col_blob(7), "a2a_steps.sum_bytes");
      for (size_t p = 0; p < sum.size(); ++p) {
        out << st.col_int(0) << ',' << st.col_text(1) << ',' << st.col_text(2) << ',' << st.col_int(3) << ',' << p
            << ',' << num(sum[p] * 1e-3) << ',' << num((p < mn.size() ? mn[p] : 0) * 1e-3) << ','
            << num((p < mx.size() ? mx[p] : 0) * 1e-3) << ',' << (p < bytes.size() ? bytes[p] : 0) << '\n';
        ++rows;
      }
    }
  } else if (table == "events") {
    out << "id,at,kind,line,message\n";
    for (const EventRow& e : reader.events(run, 0, std::numeric_limits<int64_t>::max())) {
      out << e.id << ',' << e.at << ',' << csv_quote(e.kind) << ',' << e.line << ',' << csv_quote(e.message) << '\n';
      ++rows;
    }
  } else {
    std::string known;
    for (const std::string& t : tables) known += (known.empty() ? "" : ", ") + t;
    throw Error("--table: unknown '" + table + "' (one of " + known + ")");
  }
  return rows;
}

}  // namespace moe::store
