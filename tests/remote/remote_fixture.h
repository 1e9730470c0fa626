#pragma once
// Shared helpers of the remote tests: the two sshd "nodes" of tests/remote/sshd-fixture, their
// known_hosts lines, connect options, a local view of each node's home directory, and the plan of
// a job of tests/remote/fake-runtime (also used by remote_test_client).
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "connect_options.h"
#include "hostfile.h"
#include "job_controller.h"

namespace moe::remote::test {

namespace fs = std::filesystem;

inline fs::path fixture_dir() { return MOE_SSHD_DIR; }
inline const char* node_name(int i) { return i == 0 ? "node-a" : "node-b"; }
inline fs::path node_home(int i) { return fixture_dir() / node_name(i) / "home"; }

// Node i's port: `sshd-fixture start` picks two free ones and writes them to DIR/ports.
inline int node_port(int i) {
  std::ifstream in(fixture_dir() / "ports");
  int a = 0, b = 0;
  in >> a >> b;
  return i == 0 ? a : b;
}
// "127.0.0.1:PORT", as connect errors, consoles and known_hosts name node i.
inline std::string node_address(int i) { return "127.0.0.1:" + std::to_string(node_port(i)); }

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

// Runs the fixture script (kill-node, start-node, …) on the fixture directory; true on success.
inline bool fixture(const std::string& verb, int node_index) {
  const std::string cmd = std::string(MOE_SSHD_FIXTURE) + " " + verb + " " + fixture_dir().string() + " " +
                          std::to_string(node_index);
  return std::system(cmd.c_str()) == 0;
}

// A fresh temporary directory per test.
inline fs::path temp_dir(const std::string& tag) {
  std::random_device rd;
  fs::path d = fs::temp_directory_path() / ("moe-remote-" + tag + "-" + std::to_string(rd()));
  fs::create_directories(d);
  return d;
}

inline HostEntry node(int i, const std::string& key = "") {
  HostEntry h;
  h.host = "127.0.0.1";
  h.port = node_port(i);
  h.key = key.empty() ? (fixture_dir() / "client_key").string() : key;
  h.slots = 2;
  return h;
}

// "[127.0.0.1]:PORT ssh-ed25519 AAAA…" for node i (its real host key).
inline std::string known_hosts_line(int i) {
  std::string pub = read_file(fixture_dir() / node_name(i) / "host_key.pub");
  std::istringstream in(pub);
  std::string type, blob;
  in >> type >> blob;
  return "[127.0.0.1]:" + std::to_string(node_port(i)) + " " + type + " " + blob + "\n";
}

// Options with a private known_hosts that already trusts both nodes, no ssh config, no agent.
inline ConnectOptions trusted_options(const fs::path& tmp) {
  ConnectOptions o;
  o.known_hosts_file = (tmp / "known_hosts").string();
  write_file(o.known_hosts_file, known_hosts_line(0) + known_hosts_line(1));
  o.process_config = false;
  o.use_agent = false;
  o.connect_timeout_s = 5;
  o.keepalive_interval_s = 2;
  o.keepalive_timeout_s = 3;
  return o;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A bundle holding fake-runtime as moe-runtime (content-addressed, so deployed once per node).
inline fs::path fake_bundle() {
  fs::path b = fixture_dir() / "fake-bundle";
  if (!fs::exists(b / "moe-runtime")) {
    fs::create_directories(b);
    fs::copy_file(MOE_FAKE_RUNTIME, b / "moe-runtime", fs::copy_options::overwrite_existing);
  }
  return b;
}

// A 2-node job of fake-runtime: `steps` records every `interval_ms` on each node.
inline JobPlan fake_plan(const std::string& job_id, int steps, int interval_ms, const ConnectOptions& o,
                         const std::string& tag = "", const std::string& spec_name = "spec.json") {
  JobPlan p;
  p.job_id = job_id;
  p.hosts = {node(0), node(1)};
  p.master_port = 29555;
  p.connect = o;
  p.bundle = fake_bundle();
  p.files = {JobFile{spec_name, "{\"schema\": 1, \"name\": \"fake\"}\n", 0600}};
  p.cancel_grace_s = 2;
  p.command = [=](const NodeContext& c) {
    return std::vector<std::string>{c.bundle_dir + "/moe-runtime", "--node-rank", std::to_string(c.node_rank),
                                    "--nnodes", std::to_string(c.nnodes), "--master",
                                    c.master_addr + ":" + std::to_string(c.master_port), "--steps",
                                    std::to_string(steps), "--interval-ms", std::to_string(interval_ms),
                                    "--spec", c.job_dir + "/" + spec_name, "--tag", tag};
  };
  return p;
}

}  // namespace moe::remote::test
