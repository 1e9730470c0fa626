// Pruning per-rank detail and vacuuming (store_prune.h).
#include "store_prune.h"

#include <filesystem>

#include "error.h"

namespace moe::store {

namespace {

int64_t file_bytes(const std::string& path) {
  int64_t total = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path + suffix, ec);
    if (!ec) total += static_cast<int64_t>(n);
  }
  return total;
}

}  // namespace

PruneReport prune_a2a_detail(RunStore& store, const std::vector<int64_t>& runs, int64_t keep_last, bool dry_run) {
  if (keep_last < 0) throw Error("--keep-last: must be 0 or more steps");
  Db& db = store.db();
  PruneReport report;
  WriteTxn txn(db);
  const int64_t free_before = db.pragma_int("freelist_count");
  std::vector<int64_t> targets = runs;
  if (targets.empty()) {
    Stmt all(db, "SELECT id FROM runs ORDER BY id");
    while (all.step()) targets.push_back(all.col_int(0));
  }
  Stmt info(db, "SELECT r.status, s.last_step FROM runs r JOIN run_summary s ON s.run_id = r.id WHERE r.id = ?1");
  Stmt del(db, "DELETE FROM a2a WHERE run_id = ?1 AND step < ?2 AND extra IS NULL");
  for (int64_t run : targets) {
    info.reset();
    info.bind(1, run);
    if (!info.step()) throw Error(db.path() + ": no run with id " + std::to_string(run));
    if (!is_final_status(info.col_text(0))) {
      if (!runs.empty()) report.skipped_running.push_back(run);
      continue;
    }
    ++report.runs;
    if (info.is_null(1)) continue;
    del.reset();
    del.bind(1, run).bind(2, info.col_int(1) - keep_last).run();
    report.rows += db.changes();
  }
  report.freed_bytes = (db.pragma_int("freelist_count") - free_before) * db.pragma_int("page_size");
  if (!dry_run) txn.commit();  // else the destructor rolls back
  return report;
}

VacuumReport vacuum_store(RunStore& store, bool dry_run) {
  Db& db = store.db();
  VacuumReport r;
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing the WAL");
  r.bytes_before = file_bytes(db.path());
  if (dry_run) {
    r.bytes_after = r.bytes_before - db.pragma_int("freelist_count") * db.pragma_int("page_size");
    return r;
  }
  db.exec("VACUUM", "vacuuming");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing the WAL");
  r.bytes_after = file_bytes(db.path());
  return r;
}

}  // namespace moe::store
