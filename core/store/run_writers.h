#pragma once
// Local runs whose recorder died (schema version 5, table run_writers; version 6: detached,
// recorder). The recorder (`moe run`, or the studio: the process that ingests the stream) records
// itself and the runtime's process group (the local job's wrapper); a run still `running` whose
// recorder is gone — killed with -9, the machine rebooted — will never get its end recorded, so
// the next reader that opens the store (`moe runs`, the studio) marks it failed with the reason,
// and stops the runtime's processes if they somehow outlived it (the job's own watchdog normally
// stopped them within a second, remote_job.h). A detached run is left alone: its recorder stopped
// watching on purpose, the job goes on and a reattach records its end (or its failure) from the
// job directory. Remote runs have no row here: their client may die and reattach by design.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "run_store.h"

namespace moe::store {

// A process as (pid, start time in clock ticks since boot): a pid alone may have been reused.
struct ProcessId {
  int64_t pid = 0;
  int64_t start = 0;
};

ProcessId this_process();
// nullopt when there is no such process now.
std::optional<ProcessId> process_of(int64_t pid);

// `program` names the recorder in the reaper's reason ("moe run", "moe-studio"). Not detached.
void record_writer(RunStore& store, int64_t run, const ProcessId& writer, const std::string& program = "moe run");
// The recorder stopped watching (detach) or resumed; a detached run is never reaped.
void set_writer_detached(RunStore& store, int64_t run, bool detached);
// The run's recorder when it is alive on this machine and not detached: someone records it now.
std::optional<ProcessId> live_writer(RunStore& store, int64_t run);
// The runtime's first process (its launcher or trainer; it leads a process group of its own).
void record_runtime(RunStore& store, int64_t run, const ProcessId& runtime);

// Runs `running` or `created` recorded on this machine since its last boot whose writer is gone and
// did not detach: marked failed ("the recording process … ended without recording the run's end;
// last recorded step …") and their runtime's process group killed if it is still there. Returns
// their ids.
std::vector<int64_t> reap_abandoned_runs(RunStore& store);

}  // namespace moe::store
