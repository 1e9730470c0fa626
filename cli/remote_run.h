#pragma once
// `moe run --hosts HOSTFILE` and `moe run --attach RUN`: the remote half of `moe run` (remote_run.cpp).
#include "cli_args.h"

namespace moe::cli {

// Options of `moe run` that only the remote path reads (added to the run command's parser).
inline const char* const kRemoteRunFlags[] = {"--accept-new-host-keys"};
inline const char* const kRemoteRunOptions[] = {"--attach", "--known-hosts", "--ssh-config", "--bundle",
                                               "--master-port"};

// True when the arguments ask for a remote launch or a reattach.
bool is_remote_run(const Args& args);
// Runs (or reattaches to) a job on the hostfile's nodes, recording rank 0's metrics into --db.
// Returns the exit status of `moe run`: 0 completed, 1 failed, 130 cancelled.
int run_remote(const Args& args);

}  // namespace moe::cli
