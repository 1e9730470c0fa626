#pragma once
// Deploy a bundle to a node by SFTP into ~/.cache/moe-studio/<hash>/. The upload goes to a
// temporary directory, is verified on the node (sha256sum of every file, the manifest's own hash,
// the modes), then renamed into place with a .complete marker; a node that already holds a
// verified copy is skipped. Safe when several workers deploy to one shared (NFS) home at once.
#include <string>

#include "bundle.h"
#include "ssh_session.h"

namespace moe::remote {

struct DeployResult {
  std::string remote_dir;  // absolute path of the bundle on the node
  bool uploaded = false;   // false: a verified copy was already there
  uint64_t bytes = 0;      // bytes sent
  double seconds = 0;      // wall time of the whole deploy step (check + upload + verify)
};

// ~/.cache/moe-studio/<hash> on that node (absolute).
std::string remote_bundle_dir(SshSession& session, const std::string& hash);
// True when the node holds a complete, verified copy (a broken copy is removed).
bool bundle_present(SshSession& session, const Bundle& bundle);
DeployResult deploy_bundle(SshSession& session, const Bundle& bundle);

}  // namespace moe::remote
