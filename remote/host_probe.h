#pragma once
// "Test connection" for the Hosts panel: connect (host key + auth), then report round-trip
// latency, OS, cores, GPUs (nvidia-smi -L when present) and which runtime bundles are deployed.
#include <string>
#include <vector>

#include "connect_options.h"
#include "hostfile.h"

namespace moe::remote {

struct HostProbe {
  std::string host;
  double connect_ms = 0;  // TCP + key exchange + host key check + auth
  double latency_ms = 0;  // median of 5 channel-open round trips
  std::string os;         // PRETTY_NAME from /etc/os-release, or uname -s
  std::string kernel;     // uname -sr
  int cores = 0;
  std::vector<std::string> gpus;     // lines of nvidia-smi -L
  std::vector<std::string> bundles;  // complete bundle hashes in ~/.cache/moe-studio
  bool runtime_deployed = false;     // `bundle_hash` among them (any bundle when it is empty)
  std::string host_key;              // the server's key as verified: "ssh-ed25519 SHA256:…"
  std::string user;                  // the remote user (whoami)
  std::string summary() const;       // one line for a status bar / the CLI
};

// Throws moe::Error (connect, host key, auth) naming the host. Blocks: call it on a worker thread.
HostProbe probe_host(const HostEntry& host, const ConnectOptions& options, const std::string& bundle_hash = "");

}  // namespace moe::remote
