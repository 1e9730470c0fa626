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
  bool slurm_login = false;  // role=slurm-login: a Slurm login node, not a node to run ranks on
  int line = 0;       // line in the hostfile (0 when built in code)

  // "alice@node-a:2222" style name for messages (only the parts that were given).
  std::string label() const;
  // Address other nodes use to reach this one.
  const std::string& rendezvous_address() const { return addr.empty() ? host : addr; }
};

// Why a field cannot be used ("" when it can). Nothing of a host entry may reach a shell as code
// (an ssh config's ProxyCommand expands %h and %r through /bin/sh; `addr` is on the remote command
// line), so the fields are checked against what they can legitimately hold:
//  host, addr: a DNS name (ASCII letters, digits, '-', '.'; what libssh accepts, so a ~/.ssh/config
//              alias must be one too; non-ASCII names in their xn-- form) or an IPv4/IPv6 address;
//  user:       letters, digits, '.', '_', '-', '@', '+' and non-ASCII letters; not starting with '-';
//  key:        a local file path (read by libssh, never by a shell): anything but control characters.
std::string host_field_problem(std::string_view host);
std::string user_field_problem(std::string_view user);
std::string key_field_problem(std::string_view key);
// Throws moe::Error "WHERE: FIELD 'value' …" (one line) for the first field of `h` that cannot be used.
void check_host_entry(const HostEntry& h, const std::string& where);

// Parses hostfile text; `source` names the file in error messages ("hosts.txt:3: ...").
// '#' starts a comment at the start of a line or after a space (a '#' inside a word is kept).
std::vector<HostEntry> parse_hostfile(std::string_view text, const std::string& source);
// Reads and parses a hostfile; throws moe::Error naming the file and line.
std::vector<HostEntry> load_hostfile(const std::string& path);
// Writes entries back in hostfile form (for the GUI's Hosts panel); parse(format(x)) == x.
std::string format_hostfile(const std::vector<HostEntry>& hosts);

}  // namespace moe::remote
