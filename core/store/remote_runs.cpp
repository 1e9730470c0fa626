// Rows of remote_runs (see remote_runs.h).
#include "remote_runs.h"

#include <nlohmann/json.hpp>

#include "error.h"

namespace moe::store {

namespace {

std::string offsets_json(const std::vector<uint64_t>& offsets) { return nlohmann::json(offsets).dump(); }

}  // namespace

void add_remote_run(RunStore& store, const RemoteRunRow& row, const std::string& hosts_json) {
  Db& db = store.db();
  WriteTxn txn(db);
  Stmt ins(db, "INSERT INTO remote_runs(run_id, job_id, hostfile, master_port, metrics_offset, log_offsets, local_root)"
               " VALUES(?1, ?2, ?3, ?4, 0, ?5, nullif(?6, ''))");
  ins.bind(1, row.run_id).bind(2, row.job_id).bind(3, row.hostfile).bind(4, static_cast<int64_t>(row.master_port));
  ins.bind(5, offsets_json(row.log_offsets)).bind(6, row.local_root).run();
  if (!hosts_json.empty()) {
    Stmt hosts(db, "UPDATE runs SET hosts = ?2 WHERE id = ?1");
    hosts.bind(1, row.run_id).bind(2, hosts_json).run();
  }
  txn.commit();
}

std::optional<RemoteRunRow> find_remote_run(RunStore& store, int64_t run) {
  Stmt q(store.db(), "SELECT job_id, hostfile, master_port, metrics_offset, log_offsets, coalesce(local_root, '')"
                     " FROM remote_runs WHERE run_id = ?1");
  q.bind(1, run);
  if (!q.step()) return std::nullopt;
  RemoteRunRow r;
  r.run_id = run;
  r.job_id = q.col_text(0);
  r.hostfile = q.col_text(1);
  r.master_port = static_cast<int>(q.col_int(2));
  r.metrics_offset = static_cast<uint64_t>(q.col_int(3));
  r.local_root = q.col_text(5);
  const nlohmann::json offs = nlohmann::json::parse(q.col_text(4), nullptr, false);
  if (offs.is_array()) {
    for (const auto& o : offs) {
      if (o.is_number_unsigned()) r.log_offsets.push_back(o.get<uint64_t>());
    }
  }
  return r;
}

void set_remote_log_offsets(RunStore& store, int64_t run, const std::vector<uint64_t>& offsets) {
  Stmt up(store.db(), "UPDATE remote_runs SET log_offsets = ?2 WHERE run_id = ?1");
  up.bind(1, run).bind(2, offsets_json(offsets)).run();
}

}  // namespace moe::store
