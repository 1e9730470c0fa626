#pragma once
// Host inventory: a DeepSpeed-style hostfile, one node per line:
//   node-a slots=4 user=alice port=2222 key=~/.ssh/id_cluster addr=10.0.0.5
// `host` may be an alias from ~/.ssh/config. `addr` is the address the other nodes use to reach
// this one for the rendezvous (default: host). '#' starts a comment; blank lines are ignored.
#include <string>
#include <string_view>
#include <vector>

namespace moe::remote {

struct HostEntry {
  std::string host;   // ssh destination as written (alias or address)
  int slots = 1;      // processes (GPUs) on this node
  std::string user;   // empty: ~/.ssh/config or the local user
  int port = 0;       // 0: ~/.ssh/config or 22
  std::string key;    // private key file; empty: agent, ~/.ssh/config, default identities
  std::string addr;   // rendezvous address seen by other nodes; empty: host
  int line = 0;       // line in the hostfile (0 when built in code)

  // "alice@node-a:2222" style name for messages (only the parts that were given).
  std::string label() const;
  // Address other nodes use to reach this one.
  const std::string& rendezvous_address() const { return addr.empty() ? host : addr; }
};

// Parses hostfile text; `source` names the file in error messages ("hosts.txt:3: ...").
std::vector<HostEntry> parse_hostfile(std::string_view text, const std::string& source);
// Reads and parses a hostfile; throws moe::Error naming the file and line.
std::vector<HostEntry> load_hostfile(const std::string& path);
// Writes entries back in hostfile form (for the GUI's Hosts panel); parse(format(x)) == x.
std::string format_hostfile(const std::vector<HostEntry>& hosts);

}  // namespace moe::remote
