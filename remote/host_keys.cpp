// Known-hosts verification with an explicit policy for new keys and no override for changed ones.
#include "host_keys.h"

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
      std::string known = "unknown";
      struct ssh_knownhosts_entry* entry = nullptr;
      ssh_session_get_known_hosts_entry(session, &entry);
      if (entry && entry->publickey)
        known = std::string(ssh_key_type_to_char(ssh_key_type(entry->publickey))) + " " +
                key_fingerprint(entry->publickey);
      ssh_knownhosts_entry_free(entry);
      throw moe::Error(host.host + " (" + info.address + "): HOST KEY " +
                       (state == SSH_KNOWN_HOSTS_CHANGED ? "CHANGED" : "OF ANOTHER TYPE") +
                       ": known_hosts has " + known + ", the server offers " + info.key_type + " " +
                       info.fingerprint +
                       "; refusing to connect (possible man-in-the-middle). If the host was "
                       "reinstalled, remove its old line with ssh-keygen -R");
    }
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND: {
      bool accept = false;
      switch (options.unknown_host) {
        case UnknownHostPolicy::reject: accept = false; break;
        case UnknownHostPolicy::accept_new: accept = true; break;
        case UnknownHostPolicy::ask:
          accept = options.prompts.confirm_new_host && options.prompts.confirm_new_host(info);
          break;
      }
      if (!accept)
        throw moe::Error(host.host + " (" + info.address + "): unknown host key " + info.key_type +
                         " " + info.fingerprint +
                         "; not in known_hosts and not accepted (use --accept-new-host-keys or "
                         "confirm it in the studio)");
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
