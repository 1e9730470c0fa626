// Joining the job (see rendezvous.h).
#include "rendezvous.h"

#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <netinet/in.h>
#include <sys/socket.h>

#include "error.h"
#include "socket_util.h"
#include "store_protocol.h"
#ifdef MOE_HAVE_GLOO
#include "gloo_communicator.h"
#endif

namespace moe::rt::comm {

std::vector<std::pair<std::string, std::string>> RankEnv::to_env() const {
  std::vector<std::pair<std::string, std::string>> out = {
      {kEnvRank, std::to_string(rank)},
      {kEnvWorldSize, std::to_string(world_size)},
      {kEnvLocalRank, std::to_string(local_rank)},
      {kEnvLocalWorldSize, std::to_string(local_world_size)},
      {kEnvNodeRank, std::to_string(node_rank)},
      {kEnvNnodes, std::to_string(nnodes)},
      {kEnvMaster, master_host + ":" + std::to_string(master_port)},
      {kEnvTimeout, std::to_string(std::chrono::duration<double>(timeout).count())},
  };
  if (!host_address.empty()) out.emplace_back(kEnvHostAddress, host_address);
  if (!job_id.empty()) out.emplace_back(kEnvJobId, job_id);
  return out;
}

namespace {

int env_int(const char* name, int fallback, int min_value) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (*end != '\0' || v < min_value || v > 1 << 20)
    throw Error(std::string("environment variable ") + name + ": expected an integer ≥ " + std::to_string(min_value) +
                ", got '" + text + "'");
  return static_cast<int>(v);
}

std::string join_ranks(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (i == 8 && ranks.size() > 9) return s + ", … (" + std::to_string(ranks.size()) + " in all)";
    s += (i ? ", " : "") + std::to_string(ranks[i]);
  }
  return s;
}

std::string local_address_of(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "127.0.0.1";
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &addr.sin_addr, buf, sizeof(buf)) ? buf : "127.0.0.1";
}

}  // namespace

std::optional<RankEnv> rank_env_from_environment() {
  if (!std::getenv(kEnvRank)) return std::nullopt;
  RankEnv env;
  env.rank = env_int(kEnvRank, 0, 0);
  env.world_size = env_int(kEnvWorldSize, 1, 1);
  env.local_rank = env_int(kEnvLocalRank, env.rank, 0);
  env.local_world_size = env_int(kEnvLocalWorldSize, env.world_size, 1);
  env.node_rank = env_int(kEnvNodeRank, 0, 0);
  env.nnodes = env_int(kEnvNnodes, 1, 1);
  if (env.rank >= env.world_size)
    throw Error(std::string(kEnvRank) + "=" + std::to_string(env.rank) + " is not below " + kEnvWorldSize + "=" +
                std::to_string(env.world_size));
  if (const char* master = std::getenv(kEnvMaster)) parse_host_port(master, env.master_host, env.master_port, kEnvMaster);
  if (const char* t = std::getenv(kEnvTimeout)) {
    char* end = nullptr;
    const double secs = std::strtod(t, &end);
    if (*end != '\0' || !(secs > 0)) throw Error(std::string(kEnvTimeout) + ": expected seconds > 0, got '" + t + "'");
    env.timeout = std::chrono::milliseconds(static_cast<int64_t>(secs * 1000));
  }
  if (const char* host = std::getenv(kEnvHostAddress)) env.host_address = host;
  if (const char* job = std::getenv(kEnvJobId)) env.job_id = job;
  return env;
}

void join_store(const RankEnv& env, std::unique_ptr<StoreServer>& server, std::shared_ptr<StoreClient>& store) {
  const std::string who = "rank " + std::to_string(env.rank);
  const std::string master = env.master_host + ":" + std::to_string(env.master_port);
  try {
    if (env.rank == 0) server = std::make_unique<StoreServer>(env.master_host, env.master_port, env.world_size, env.job_id);
    store = std::make_shared<StoreClient>(env.master_host, env.master_port, env.timeout, env.timeout);
    store->hello(env.rank, env.world_size, env.job_id);
  } catch (const Error& e) {
    throw Error(who + ": " + e.what());
  }
  std::vector<std::string> keys;
  for (int r = 0; r < env.world_size; ++r) keys.push_back(store_wire::rank_key(r));
  std::vector<std::string> absent;
  if (!store->wait(keys, env.timeout, &absent)) {
    std::vector<int> missing;
    for (const auto& k : absent) missing.push_back(std::stoi(k.substr(k.find('/') + 1)));
    char secs[32];
    std::snprintf(secs, sizeof(secs), "%g", std::chrono::duration<double>(env.timeout).count());
    throw Error(who + ": rendezvous at " + master + " timed out after " + secs + " s: rank" +
                (missing.size() > 1 ? "s " : " ") + join_ranks(missing) + " never arrived (world size " +
                std::to_string(env.world_size) + ")");
  }
}

std::unique_ptr<ProcessGroup> init_process_group(const RankEnv& env) {
  std::signal(SIGPIPE, SIG_IGN);  // a vanished peer must be an error message, not a silent death
  auto group = std::make_unique<ProcessGroup>();
  group->env = env;
  join_store(env, group->server, group->store);
#ifdef MOE_HAVE_GLOO
  std::string host = env.host_address;
  if (host.empty()) host = env.master_host == "localhost" ? "127.0.0.1" : "";
  if (host.empty()) {
    // The address this host used to reach the master is one the other nodes can reach too.
    const int fd = connect_tcp(env.master_host, env.master_port, env.timeout);
    host = local_address_of(fd);
    close_fd(fd);
  }
  group->world = GlooCommunicator::create_world(group->store, env.rank, env.world_size, host, env.timeout);
#else
  throw Error("rank " + std::to_string(env.rank) + ": this build has no Gloo (CPU collectives); rebuild with libgloo-dev");
#endif
  return group;
}

}  // namespace moe::rt::comm
