#pragma once
// Host-key verification against known_hosts (ssh_session_is_known_server).
//   OK             → continue
//   UNKNOWN/NOT_FOUND → the policy decides (reject / accept_new / ask); accepted keys are written
//                    with ssh_session_update_known_hosts (unless the studio's answer was
//                    "accept once")
//   CHANGED/OTHER  → always refused; the message names the host and both SHA256 fingerprints
#include <libssh/libssh.h>

#include <string>

#include "connect_options.h"
#include "hostfile.h"

namespace moe::remote {

// "SHA256:…" fingerprint and key type of a public key.
std::string key_fingerprint(ssh_key key);
// Verifies the connected session's server key; throws moe::Error when refused.
void verify_host_key(ssh_session session, const HostEntry& host, const ConnectOptions& options);

}  // namespace moe::remote
