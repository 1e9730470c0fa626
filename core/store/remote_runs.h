#pragma once
// The job behind a run (schema version 4, table remote_runs; version 6 adds local runs): the job id
// naming ~/.moe-studio/jobs/<id>/ on every node (a local run: <local_root>/<id>/ on this machine),
// the hostfile it ran on ("" for a local run), the rendezvous port, and the resume point: the byte
// offset of rank 0's metrics file up to which the records are stored (advanced by the Ingestor
// inside each batch's transaction, see Ingestor::feed_line) and each node's log offset (advisory:
// a reattach re-shows at most a little of the logs).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "run_store.h"

namespace moe::store {

struct RemoteRunRow {
  int64_t run_id = 0;
  std::string job_id;
  std::string hostfile;  // the hostfile's text as launched
  int master_port = 0;
  uint64_t metrics_offset = 0;
  std::vector<uint64_t> log_offsets;
  std::string local_root;  // a local run: the directory holding its job directory; "" on hosts
};

// Records a run's job (metrics_offset 0) and, unless empty, sets runs.hosts to the JSON list `hosts_json`.
void add_remote_run(RunStore& store, const RemoteRunRow& row, const std::string& hosts_json);
std::optional<RemoteRunRow> find_remote_run(RunStore& store, int64_t run);
void set_remote_log_offsets(RunStore& store, int64_t run, const std::vector<uint64_t>& offsets);

}  // namespace moe::store
