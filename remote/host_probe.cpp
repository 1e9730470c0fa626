// Host probe: one connect, five keepalive round trips, one script printing key=value lines.
#include "host_probe.h"

#include <algorithm>
#include <chrono>
#include <sstream>

#include "error.h"
#include "host_keys.h"
#include "ssh_session.h"

namespace moe::remote {

namespace {

const char* kProbeScript =
    "echo \"kernel=$(uname -sr)\"; "
    "echo \"user=$(id -un)\"; "
    "if [ -r /etc/os-release ]; then ( . /etc/os-release; echo \"os=$PRETTY_NAME\" ); else echo \"os=$(uname -s)\"; fi; "
    "echo \"cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)\"; "
    "if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L 2>/dev/null | sed 's/^/gpu=/'; fi; "
    "for d in \"$HOME\"/.cache/moe-studio/*/; do [ -f \"$d.complete\" ] && echo \"bundle=$(basename \"$d\")\"; done; "
    "true";

}  // namespace

std::string HostProbe::summary() const {
  std::ostringstream s;
  s << host << ": " << os << " (" << kernel << "), " << cores << " cores, " << gpus.size() << " GPU"
    << (gpus.size() == 1 ? "" : "s") << ", latency " << latency_ms << " ms, runtime "
    << (runtime_deployed ? "deployed" : "not deployed");
  return s.str();
}

HostProbe probe_host(const HostEntry& host, const ConnectOptions& options, const std::string& bundle_hash) {
  HostProbe p;
  p.host = host.host;
  auto session = SshSession::connect(host, options);
  p.connect_ms = static_cast<double>(session->connect_time().count());
  {
    ssh_key key = nullptr;  // verified by connect(); shown so the user can compare it
    if (ssh_get_server_publickey(session->raw(), &key) == SSH_OK) {
      p.host_key = std::string(ssh_key_type_to_char(ssh_key_type(key))) + " " + key_fingerprint(key);
      ssh_key_free(key);
    }
  }
  std::vector<double> rtt;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!session->keepalive()) throw moe::Error(host.host + ": no answer to a round trip");
    rtt.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(rtt.begin(), rtt.end());
  p.latency_ms = rtt[rtt.size() / 2];
  ExecResult r = session->run(kProbeScript);
  if (r.exit_status != 0) throw moe::Error(host.host + ": probe script failed: " + r.err);
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "kernel") p.kernel = v;
    else if (k == "os") p.os = v;
    else if (k == "cores") p.cores = std::atoi(v.c_str());
    else if (k == "gpu") p.gpus.push_back(v);
    else if (k == "user") p.user = v;
    else if (k == "bundle") p.bundles.push_back(v);
  }
  p.runtime_deployed = bundle_hash.empty()
                           ? !p.bundles.empty()
                           : std::find(p.bundles.begin(), p.bundles.end(), bundle_hash) != p.bundles.end();
  return p;
}

}  // namespace moe::remote
