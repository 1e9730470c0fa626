#pragma once
// How a rank process joins the job: the launcher hands each rank its identity in environment
// variables (RankEnv); init_process_group() connects to the store hosted by global rank 0, checks
// that every rank agrees on the world size, waits for all ranks (a timeout names the ones missing),
// and builds the world communicator. comm_groups.h then builds the layout's sub-groups.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "communicator.h"
#include "store_client.h"
#include "store_server.h"

namespace moe::rt::comm {

// Environment variable names (set by the launcher, read by the ranks).
inline constexpr const char* kEnvRank = "MOE_RANK";
inline constexpr const char* kEnvWorldSize = "MOE_WORLD_SIZE";
inline constexpr const char* kEnvLocalRank = "MOE_LOCAL_RANK";
inline constexpr const char* kEnvLocalWorldSize = "MOE_LOCAL_WORLD_SIZE";
inline constexpr const char* kEnvNodeRank = "MOE_NODE_RANK";
inline constexpr const char* kEnvNnodes = "MOE_NNODES";
inline constexpr const char* kEnvMaster = "MOE_MASTER";            // HOST:PORT of rank 0's store
inline constexpr const char* kEnvTimeout = "MOE_COMM_TIMEOUT_S";   // rendezvous and collectives
inline constexpr const char* kEnvHostAddress = "MOE_HOST_ADDR";    // optional: where peers reach this rank
inline constexpr const char* kEnvJobId = "MOE_JOB_ID";             // the launch's id: the store refuses other jobs' ranks

struct RankEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  int node_rank = 0;
  int nnodes = 1;
  std::string master_host = "127.0.0.1";
  int master_port = 29500;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::string host_address;  // empty: the local address of the connection to the master
  std::string job_id;        // the same on every rank of one launch (launcher.h)

  std::vector<std::pair<std::string, std::string>> to_env() const;
};

// The rank's identity from the environment, or nullopt when MOE_RANK is unset (not launched as a
// rank). Throws moe::Error naming the variable when one is malformed or inconsistent.
std::optional<RankEnv> rank_env_from_environment();

struct ProcessGroup {
  RankEnv env;
  std::unique_ptr<StoreServer> server;  // rank 0 only
  std::shared_ptr<StoreClient> store;
  std::unique_ptr<Communicator> world;
};

// Joins the job (see the file comment). Errors: master port busy (rank 0), master unreachable,
// world size mismatch, another job's rank (job id), duplicate rank, and "rendezvous timed out after N s: rank(s) … never
// arrived" — all moe::Error, one line, naming this rank.
std::unique_ptr<ProcessGroup> init_process_group(const RankEnv& env);

// Only the store part of init_process_group (no communicator): used by the tests and by backends
// that bootstrap their own transport through the store (NCCL's unique id).
void join_store(const RankEnv& env, std::unique_ptr<StoreServer>& server, std::shared_ptr<StoreClient>& store);

}  // namespace moe::rt::comm
