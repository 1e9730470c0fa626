#pragma once
// What a caller decides about a connection: host-key policy, where known_hosts and the ssh config
// live, timeouts, keepalive, and the prompts for secrets. Secrets come from callbacks at the moment
// they are needed and are wiped after use: nothing here stores a passphrase or password.
#include <functional>
#include <optional>
#include <string>

namespace moe::remote {

// What to do with a host whose key is not in known_hosts (never applies to a CHANGED key).
enum class UnknownHostPolicy {
  reject,      // fail (CLI default)
  accept_new,  // add the key to known_hosts (CLI --accept-new-host-keys)
  ask,         // call Prompts::confirm_new_host (the studio shows the fingerprint)
};

struct HostKeyInfo {
  std::string host;         // the host as written in the hostfile
  std::string address;      // host:port actually connected to
  std::string key_type;     // e.g. "ssh-ed25519"
  std::string fingerprint;  // "SHA256:…" (base64, as OpenSSH prints it)
};

// The studio's three answers to an unknown host key.
enum class HostKeyDecision {
  refuse,
  accept_once,          // connect this time; known_hosts is not written
  accept_and_remember,  // connect and record the key in known_hosts
};

struct Prompts {
  // UnknownHostPolicy::ask: return true to trust and record the key. Called on a worker thread.
  std::function<bool(const HostKeyInfo&)> confirm_new_host;
  // UnknownHostPolicy::ask, when set (instead of confirm_new_host): refuse, accept once, or accept
  // and remember. Called on a worker thread.
  std::function<HostKeyDecision(const HostKeyInfo&)> decide_new_host;
  // Passphrase of an encrypted key file; std::nullopt = skip this key.
  std::function<std::optional<std::string>(const std::string& prompt)> passphrase;
  // Password for the user; std::nullopt = skip password authentication.
  std::function<std::optional<std::string>(const std::string& prompt)> password;
};

struct ConnectOptions {
  UnknownHostPolicy unknown_host = UnknownHostPolicy::reject;
  std::string known_hosts_file;  // empty: ~/.ssh/known_hosts
  std::string ssh_config_file;   // empty: ~/.ssh/config then /etc/ssh/ssh_config
  bool process_config = true;    // honour the ssh config at all
  bool use_agent = true;         // try ssh-agent (SSH_AUTH_SOCK) first
  int connect_timeout_s = 10;
  int keepalive_interval_s = 5;  // a round trip on the connection this often while watching
  int keepalive_timeout_s = 5;   // no answer within this → the node is reported lost
  Prompts prompts;
};

}  // namespace moe::remote
