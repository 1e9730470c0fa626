// `moe run SPEC --db FILE --hosts HOSTFILE`: the spec is checked against the hostfile's slots and
// the runtime bundle (scripts/bundle-runtime) located or made; remote::RunSession then deploys it to
// every node (skipped where its content hash is present), starts one launcher per node over SSH with
// the resolved spec in its job directory and ingests rank 0's metrics stream live, each committed
// batch with the metrics file's byte offset (store/remote_runs.h), so `--attach` after a killed
// client resumes exactly there. A failing node cancels the rest and fails the run naming the node.
#include "remote_run.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "error.h"
#include "hostfile.h"
#include "job_spec.h"
#include "spec_validation.h"

namespace moe::cli {

namespace {

namespace fs = std::filesystem;

// The directory to deploy: --bundle, $MOE_BUNDLE, else build-dir/runtime-bundle made by
// scripts/bundle-runtime from the moe-runtime of this build tree (remade when the runtime is newer).
fs::path locate_bundle(const Args& args) {
  std::string given = args.value("--bundle");
  if (given.empty()) {
    if (const char* env = std::getenv("MOE_BUNDLE"); env && *env) given = env;
  }
  try {
    return remote::locate_bundle(given, remote::find_runtime(), remote::default_bundle_script(),
                                 [](const std::string& what) { std::fprintf(stderr, "moe run: %s\n", what.c_str()); });
  } catch (const Error& e) {
    // The CLI's way to give a bundle is --bundle.
    std::string m = e.what();
    if (m.rfind("bundle: ", 0) == 0) m = "--" + m;
    throw Error(m);
  }
}

}  // namespace

remote::ConnectOptions connect_options(const Args& args) {
  remote::ConnectOptions o = remote::default_run_connect_options();
  o.unknown_host = args.flag("--accept-new-host-keys") ? remote::UnknownHostPolicy::accept_new
                                                        : remote::UnknownHostPolicy::reject;
  o.known_hosts_file = args.value("--known-hosts");
  o.ssh_config_file = args.value("--ssh-config");
  return o;
}

remote::RunRequest remote_request(const Args& args) {
  args.expect_positionals(1, "SPEC (a job spec JSON file)");
  remote::RunRequest r;
  r.db = args.value("--db");
  r.slurm = !args.value("--slurm").empty();
  r.hostfile_name = r.slurm ? args.value("--slurm") : args.value("--hosts");
  r.hostfile_text = read_text_file(r.hostfile_name);
  r.hosts = remote::parse_hostfile(r.hostfile_text, r.hostfile_name);
  // A hostfile may name a Slurm login node (role=slurm-login): --hosts then submits through it.
  for (const remote::HostEntry& h : r.hosts) {
    if (!h.slurm_login) continue;
    if (r.hosts.size() != 1)
      throw Error(r.hostfile_name + ":" + std::to_string(h.line) + ": a Slurm login node (role=slurm-login) must be the"
                  " hostfile's only host (Slurm picks the nodes; " + std::to_string(r.hosts.size()) + " listed)");
    r.slurm = true;
  }
  r.spec = load_spec(args.positionals()[0], args.values("--set"));
  if (r.slurm) {  // the login node: the allocation supplies the nodes
    if (r.hosts.size() != 1)
      throw Error(r.hostfile_name + ": --slurm takes one host, the login node (" + std::to_string(r.hosts.size()) + " listed)");
    r.slurm_bin = args.value("--slurm-bin");
    throw_if_invalid(validate_spec(remote::spec_for_slurm(r.spec)));  // fail on the spec before bundling
  } else {
    remote::check_hosts_against_spec(r.hosts, r.spec, r.hostfile_name);
    remote::spec_for_hosts(r.spec, r.hosts);  // fail on the spec before bundling
  }
  r.bundle = locate_bundle(args);
  r.name = args.value("--name", r.spec.name);
  r.tags = args.values("--tag");
  if (const std::string p = args.value("--master-port"); !p.empty()) {
    char* end = nullptr;
    const long v = std::strtol(p.c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > 65535) throw UsageError{"--master-port: expected a port (1-65535), got '" + p + "'"};
    r.master_port = static_cast<int>(v);
  }
  r.connect = connect_options(args);
  return r;
}

}  // namespace moe::cli
