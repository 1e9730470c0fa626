#pragma once
// Client authentication in a fixed order: ssh-agent → key files (the hostfile's key=, else the
// ssh config's IdentityFile and the default ~/.ssh/id_*; passphrases asked through a callback) →
// password (asked through a callback). Secrets are wiped after use, never stored or logged.
#include <libssh/libssh.h>

#include "connect_options.h"
#include "hostfile.h"

namespace moe::remote {

// Throws moe::Error naming the host, the user and what was tried when nothing was accepted.
void authenticate(ssh_session session, const HostEntry& host, const ConnectOptions& options);

}  // namespace moe::remote
