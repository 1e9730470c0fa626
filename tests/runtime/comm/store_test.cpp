// The rendezvous store: key-value semantics, waits and their timeouts, the world checks (size
// mismatch, duplicate rank, missing ranks) and the port errors — with real sockets on 127.0.0.1.
#include <chrono>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "error.h"
#include "proc_util.h"
#include "rendezvous.h"
#include "store_client.h"
#include "store_server.h"

using namespace moe::rt::comm;
using namespace std::chrono_literals;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Store, SetGetAddCheckErase) {
  StoreServer server("127.0.0.1", 0, 0);
  StoreClient a("127.0.0.1", server.port(), 2s, 2s);
  StoreClient b("127.0.0.1", server.port(), 2s, 2s);
  a.set("x", std::string("hello"));
  EXPECT_EQ(b.get_string("x"), "hello");
  const std::vector<char> binary = {'\0', '\x01', '\xff', '\0'};
  b.set("bin", binary);
  EXPECT_EQ(a.get("bin"), binary);
  EXPECT_EQ(a.add("n", 5), 5);
  EXPECT_EQ(b.add("n", -2), 3);
  EXPECT_EQ(a.get_string("n"), "3");
  EXPECT_TRUE(a.check({"x", "n"}));
  EXPECT_FALSE(a.check({"x", "nope"}));
  a.erase("x");
  EXPECT_FALSE(b.check({"x"}));
}

TEST(Store, WaitIsReleasedBySetFromAnotherClient) {
  StoreServer server("127.0.0.1", 0, 0);
  StoreClient waiter("127.0.0.1", server.port(), 2s, 5s);
  StoreClient setter("127.0.0.1", server.port(), 2s, 5s);
  const auto t0 = std::chrono::steady_clock::now();
  std::thread t([&] {
    std::this_thread::sleep_for(150ms);
    setter.set("late", std::string("v"));
    setter.add("counter", 1);
  });
  waiter.wait({"late", "counter"}, 5s);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t.join();
  EXPECT_GE(waited, 0.14);
  EXPECT_LT(waited, 2.0);
  EXPECT_EQ(waiter.get_string("late"), "v");
}

TEST(Store, WaitTimesOutNamingTheMissingKeys) {
  StoreServer server("127.0.0.1", 0, 0);
  StoreClient c("127.0.0.1", server.port(), 2s, 2s);
  c.set("present", std::string("1"));
  std::vector<std::string> missing;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(c.wait({"present", "absent1", "absent2"}, 200ms, &missing));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(waited, 0.19);
  EXPECT_LT(waited, 1.5);
  EXPECT_EQ(missing, (std::vector<std::string>{"absent1", "absent2"}));
  const std::string msg = error_of([&] { c.wait({"absent1"}, 100ms); });
  EXPECT_NE(msg.find("timed out"), std::string::npos) << msg;
  EXPECT_NE(msg.find("absent1"), std::string::npos) << msg;
}

TEST(Store, RefusesMismatchedWorldSizeAndDuplicateRanks) {
  StoreServer server("127.0.0.1", 0, 4);
  StoreClient r0("127.0.0.1", server.port(), 2s);
  r0.hello(0, 4);
  StoreClient r1("127.0.0.1", server.port(), 2s);
  std::string msg = error_of([&] { r1.hello(1, 6); });
  EXPECT_NE(msg.find("world size 6"), std::string::npos) << msg;
  EXPECT_NE(msg.find("world size 4"), std::string::npos) << msg;
  msg = error_of([&] { r1.hello(0, 4); });
  EXPECT_NE(msg.find("joined twice"), std::string::npos) << msg;
  msg = error_of([&] { r1.hello(7, 4); });
  EXPECT_NE(msg.find("outside the world"), std::string::npos) << msg;
  r1.hello(1, 4);  // a correct hello still works after refusals
}

// A rank of another job (another id) is refused before it counts as present; the job's own rank
// of the same number still joins.
TEST(Store, RefusesAnotherJobsRank) {
  StoreServer server("127.0.0.1", 0, 2, "alpha");
  StoreClient mine("127.0.0.1", server.port(), 2s), theirs("127.0.0.1", server.port(), 2s);
  const std::string msg = error_of([&] { theirs.hello(1, 2, "beta"); });
  EXPECT_NE(msg.find("rank 1 belongs to job 'beta' but the master (rank 0) serves job 'alpha'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("give each its own --master port"), std::string::npos) << msg;
  mine.hello(1, 2, "alpha");
}

TEST(Store, BusyPortIsAClearError) {
  StoreServer first("127.0.0.1", 0, 0);
  const std::string msg = error_of([&] { StoreServer second("127.0.0.1", first.port(), 0); });
  EXPECT_NE(msg.find("busy"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(first.port())), std::string::npos) << msg;
}

TEST(Store, UnreachableMasterTimesOutWithAClearError) {
  const int port = test::free_port();  // nothing listens there
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { StoreClient c("127.0.0.1", port, 300ms); });
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(msg.find("could not reach master 127.0.0.1:" + std::to_string(port)), std::string::npos) << msg;
  EXPECT_GE(waited, 0.25);
  EXPECT_LT(waited, 3.0);
}

TEST(Rendezvous, MissingRankTimesOutNamingIt) {
  const int port = test::free_port();
  // Ranks 0, 1, 2 of a world of 4 arrive; rank 3 never does.
  auto result = test::fork_ranks(3, [&](int rank) {
    RankEnv env;
    env.rank = rank;
    env.world_size = 4;
    env.master_port = port;
    env.timeout = 1500ms;
    std::unique_ptr<StoreServer> server;
    std::shared_ptr<StoreClient> store;
    try {
      join_store(env, server, store);
    } catch (const moe::Error& e) {
      const std::string msg = e.what();
      if (msg.find("rank 3 never arrived") == std::string::npos || msg.find("timed out") == std::string::npos)
        throw moe::Error("unexpected message: " + msg);
      if (rank == 0) std::this_thread::sleep_for(300ms);  // keep the store up for the others' replies
      return;
    }
    throw moe::Error("join_store returned without rank 3");
  });
  EXPECT_EQ(test::failures(result), "");
}

TEST(Rendezvous, RankEnvRoundTripsThroughTheEnvironment) {
  RankEnv env;
  env.rank = 3, env.world_size = 8, env.local_rank = 1, env.local_world_size = 2;
  env.node_rank = 1, env.nnodes = 4, env.master_host = "10.0.0.1", env.master_port = 12345;
  env.timeout = 2500ms;
  for (const auto& [k, v] : env.to_env()) ::setenv(k.c_str(), v.c_str(), 1);
  auto back = rank_env_from_environment();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->rank, 3);
  EXPECT_EQ(back->world_size, 8);
  EXPECT_EQ(back->local_rank, 1);
  EXPECT_EQ(back->node_rank, 1);
  EXPECT_EQ(back->nnodes, 4);
  EXPECT_EQ(back->master_host, "10.0.0.1");
  EXPECT_EQ(back->master_port, 12345);
  EXPECT_EQ(back->timeout.count(), 2500);
  ::setenv(kEnvRank, "9", 1);
  const std::string msg = error_of([] { rank_env_from_environment(); });
  EXPECT_NE(msg.find("MOE_RANK=9"), std::string::npos) << msg;
  for (const auto& kv : env.to_env()) ::unsetenv(kv.first.c_str());
  EXPECT_FALSE(rank_env_from_environment().has_value());
}
