#pragma once
// `moe run --hosts HOSTFILE`: the remote half of `moe run`'s arguments (remote_run.cpp); the run
// itself is remote::RunSession, as for a local run (run_command.cpp).
#include "cli_args.h"
#include "run_session.h"

namespace moe::cli {

// Options of `moe run` that only a remote run reads (added to the run command's parser).
inline const char* const kRemoteRunFlags[] = {"--accept-new-host-keys"};
inline const char* const kRemoteRunOptions[] = {"--known-hosts", "--ssh-config", "--bundle", "--master-port", "--slurm",
                                                "--slurm-bin"};

// `moe run SPEC --hosts HOSTFILE …` (or --slurm LOGINFILE, one host): the hostfile read and checked against the spec (before the
// bundle is located or made), the bundle, the port and the connection options.
remote::RunRequest remote_request(const Args& args);
// Host-key policy (--accept-new-host-keys), --known-hosts, --ssh-config; the run's keepalive.
remote::ConnectOptions connect_options(const Args& args);

}  // namespace moe::cli
