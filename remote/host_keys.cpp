// Known-hosts verification with an explicit policy for new keys and no override for changed ones.
#include "host_keys.h"

#include <fstream>

#include "error.h"

namespace moe::remote {

namespace {

std::string address_of(ssh_session s) {
  char* h = nullptr;
  std::string addr = "?";
  if (ssh_options_get(s, SSH_OPTIONS_HOST, &h) == SSH_OK && h) {
    addr = h;
    ssh_string_free_char(h);
  }
  unsigned int port = 0;
  if (ssh_options_get_port(s, &port) == SSH_OK) addr += ":" + std::to_string(port);
  return addr;
}

// Every key known_hosts lists for this host ("type SHA256:…, …"). libssh's own lookup does not
// return the entry of a CHANGED key, so the files are read here with libssh's line parser.
std::string known_keys_for(ssh_session s) {
  char* h = nullptr;
  if (ssh_options_get(s, SSH_OPTIONS_HOST, &h) != SSH_OK || !h) return "";
  std::string host = h;
  ssh_string_free_char(h);
  unsigned int port = 22;
  ssh_options_get_port(s, &port);
  if (port != 22) host = "[" + host + "]:" + std::to_string(port);
  std::string out;
  for (enum ssh_options_e opt : {SSH_OPTIONS_KNOWNHOSTS, SSH_OPTIONS_GLOBAL_KNOWNHOSTS}) {
    char* file = nullptr;
    if (ssh_options_get(s, opt, &file) != SSH_OK || !file) continue;
    std::ifstream in(file);
    ssh_string_free_char(file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      struct ssh_knownhosts_entry* e = nullptr;
      if (ssh_known_hosts_parse_line(host.c_str(), line.c_str(), &e) == SSH_OK && e && e->publickey) {
        if (!out.empty()) out += ", ";
        out += std::string(ssh_key_type_to_char(ssh_key_type(e->publickey))) + " " + key_fingerprint(e->publickey);
      }
      ssh_knownhosts_entry_free(e);
    }
  }
  return out;
}

struct KeyHolder {
  ssh_key key = nullptr;
  ~KeyHolder() { ssh_key_free(key); }
};

}  // namespace

std::string key_fingerprint(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != 0)
    throw moe::Error("cannot hash a public key");
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  if (!fp) throw moe::Error("cannot format a key fingerprint");
  std::string out = fp;
  ssh_string_free_char(fp);
  return out;
}

void verify_host_key(ssh_session session, const HostEntry& host, const ConnectOptions& options) {
  KeyHolder server;
  if (ssh_get_server_publickey(session, &server.key) != SSH_OK)
    throw moe::Error(host.host + ": cannot read the server's host key: " + ssh_get_error(session));
  HostKeyInfo info;
  info.host = host.host;
  info.address = address_of(session);
  info.key_type = ssh_key_type_to_char(ssh_key_type(server.key));
  info.fingerprint = key_fingerprint(server.key);

  enum ssh_known_hosts_e state = ssh_session_is_known_server(session);
  switch (state) {
    case SSH_KNOWN_HOSTS_OK:
      return;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER: {
      // Name the key we expected too, so the admin can compare both.
      std::string known = known_keys_for(session);
      if (known.empty()) known = "another key";
      throw moe::Error(host.host + " (" + info.address + "): HOST KEY " +
                       (state == SSH_KNOWN_HOSTS_CHANGED ? "CHANGED" : "OF ANOTHER TYPE") +
                       ": known_hosts has " + known + ", the server offers " + info.key_type + " " +
                       info.fingerprint +
                       "; refusing to connect (possible man-in-the-middle). If the host was "
                       "reinstalled, remove its old line with ssh-keygen -R");
    }
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND: {
      bool accept = false, remember = true;
      switch (options.unknown_host) {
        case UnknownHostPolicy::reject: accept = false; break;
        case UnknownHostPolicy::accept_new: accept = true; break;
        case UnknownHostPolicy::ask:
          if (options.prompts.decide_new_host) {
            const HostKeyDecision d = options.prompts.decide_new_host(info);
            accept = d != HostKeyDecision::refuse;
            remember = d == HostKeyDecision::accept_and_remember;
          } else {
            accept = options.prompts.confirm_new_host && options.prompts.confirm_new_host(info);
          }
          break;
      }
      if (!accept)
        throw moe::Error(host.host + " (" + info.address + "): unknown host key " + info.key_type +
                         " " + info.fingerprint +
                         "; not in known_hosts and not accepted (use --accept-new-host-keys or "
                         "confirm it in the studio)");
      if (!remember) return;  // accepted for this connection only
      if (ssh_session_update_known_hosts(session) != SSH_OK)
        throw moe::Error(host.host + ": cannot write known_hosts: " + ssh_get_error(session));
      return;
    }
    case SSH_KNOWN_HOSTS_ERROR:
    default:
      throw moe::Error(host.host + ": cannot check known_hosts: " + ssh_get_error(session));
  }
}

}  // namespace moe::remote
