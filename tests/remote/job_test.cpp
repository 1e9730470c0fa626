// Two-node jobs of fake-runtime over the real sshd pair: run to completion, cancel, failures
// (a rank killed, a node's sshd killed, a silent node), reattach after the client is killed,
// hostile job ids and file names.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/wait.h>

#include <mutex>
#include <thread>

#include "error.h"
#include "job_controller.h"
#include "remote_fixture.h"
#include "sha256.h"
#include "shell_quote.h"
#include "ssh_session.h"

extern char** environ;

using namespace moe::remote;
using namespace moe::remote::test;
using namespace std::chrono_literals;

namespace {

struct Collector {
  std::mutex mu;
  std::vector<std::string> metrics, logs, events;
  std::vector<uint64_t> offsets;
  JobState final_state = JobState::idle;
  std::string final_reason;
  std::chrono::steady_clock::time_point finished_at;

  JobEvents events_sink() {
    JobEvents e;
    e.on_metrics_line = [this](std::string_view l, uint64_t off) {
      std::lock_guard lock(mu);
      metrics.emplace_back(l);
      offsets.push_back(off);
    };
    e.on_log_line = [this](int, const std::string& l) {
      std::lock_guard lock(mu);
      logs.push_back(l);
    };
    e.on_node_event = [this](int, const std::string& w) {
      std::lock_guard lock(mu);
      events.push_back(w);
    };
    e.on_finished = [this](JobState s, const std::string& r) {
      std::lock_guard lock(mu);
      final_state = s;
      final_reason = r;
      finished_at = std::chrono::steady_clock::now();
    };
    return e;
  }
  size_t metric_count() {
    std::lock_guard lock(mu);
    return metrics.size();
  }
  std::string dump() {
    std::lock_guard lock(mu);
    std::string s;
    for (auto& e : events) s += "  event: " + e + "\n";
    return s;
  }
};

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

std::string unique_id(const std::string& base) {
  std::random_device rd;
  return base + "-" + std::to_string(rd() % 1000000000u);
}

fs::path local_job_dir(int node_index, const std::string& id) {
  return node_home(node_index) / ".moe-studio" / "jobs" / id / ("node-" + std::to_string(node_index));
}

// Over ssh, like an admin would check: processes whose command line holds `mark`, and whether
// the job's process group still has live members. Returns "" when nothing is left.
std::string leftovers(int node_index, const std::string& id, const std::string& mark, const ConnectOptions& o) {
  auto s = SshSession::connect(node(node_index), o);
  // Both test nodes share one machine, so match this node's home in the command line too;
  // "MAR[K]" matches MARK but not this command line itself.
  const std::string pattern = std::string(node_name(node_index)) + "/home/.*" + mark.substr(0, mark.size() - 1) +
                              "[" + mark.back() + "]";
  ExecResult ps = s->run("pgrep -a -f " + shell_quote(pattern) + " || true");
  std::string out = ps.out;
  const std::string pid = read_file(local_job_dir(node_index, id) / "pid");
  ExecResult grp = s->run("ps -e -o pgid= -o stat= -o pid= -o args= | awk -v g=" + shell_quote(pid) +
                          " '$1==g && $2 !~ /^Z/'");
  out += grp.out;
  return out;
}

void kill_group_locally(int node_index, const std::string& id) {
  const std::string pid = read_file(local_job_dir(node_index, id) / "pid");
  if (!pid.empty()) ::kill(-std::stoi(pid), SIGKILL);
}

}  // namespace

TEST(Job, TwoNodesRunToCompletion) {
  fs::path tmp = temp_dir("job-ok");
  const std::string id = unique_id("ok");
  Collector c;
  JobController job(fake_plan(id, 20, 20, trusted_options(tmp)), c.events_sink());
  job.launch();  // returns at once (Job.LaunchAndCancelReturnWhileANodeNeverAnswers proves it)
  ASSERT_TRUE(job.wait_for(30s)) << c.dump();
  EXPECT_EQ(job.state(), JobState::completed) << job.reason() << "\n" << c.dump();
  EXPECT_EQ(c.final_state, JobState::completed);

  // Node 0's stream, every line once and in order, with offsets that end at the file's size.
  const std::string file = read_file(local_job_dir(0, id) / "metrics.jsonl");
  std::string joined;
  for (auto& l : c.metrics) joined += l + "\n";
  EXPECT_EQ(joined, file);
  ASSERT_EQ(c.metrics.size(), 22u);
  EXPECT_NE(c.metrics[0].find("\"master\":\"127.0.0.1:29555\""), std::string::npos) << c.metrics[0];
  EXPECT_NE(c.metrics[0].find(sha256_hex("{\"schema\": 1, \"name\": \"fake\"}\n")), std::string::npos);
  EXPECT_NE(c.metrics[20].find("\"step\":20"), std::string::npos);
  for (auto& l : c.metrics) EXPECT_EQ(l.find("\"node_rank\":1"), std::string::npos) << "node 1's stream leaked";
  EXPECT_EQ(c.offsets.back(), file.size());
  EXPECT_EQ(job.metrics_offset(), file.size());
  // Other nodes' stderr, prefixed with the node.
  EXPECT_NE(std::find(c.logs.begin(), c.logs.end(), "[127.0.0.1:" + std::to_string(node_port(1)) + "] node 1 step 20"), c.logs.end());
  EXPECT_NE(std::find(c.logs.begin(), c.logs.end(), "[127.0.0.1:" + std::to_string(node_port(0)) + "] node 0 step 1"), c.logs.end());
  EXPECT_EQ(read_file(local_job_dir(1, id) / "exit_code"), "0\n");
  fs::remove_all(tmp);
}

// launch() and cancel() must not block on the network, proven without timing the machine: the
// node is a socket that takes the TCP connection and never says a word, so anything that waited on
// it would take the whole 10 s connect timeout; both calls return long before (bound: half of it),
// and the job ends cancelled.
TEST(Job, LaunchAndCancelReturnWhileANodeNeverAnswers) {
  const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(silent, 4), 0);  // never accepted: the kernel completes the handshake, no banner
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len), 0);
  fs::path tmp = temp_dir("job-silent-node");
  ConnectOptions o = trusted_options(tmp);
  o.connect_timeout_s = 10;
  JobPlan plan = fake_plan(unique_id("silent-node"), 10, 10, o);
  HostEntry h;
  h.host = "127.0.0.1";
  h.port = ntohs(a.sin_port);
  plan.hosts = {h};
  Collector c;
  JobController job(plan, c.events_sink());
  auto t0 = std::chrono::steady_clock::now();
  job.launch();
  EXPECT_LT(seconds_since(t0), o.connect_timeout_s / 2.0) << "launch() waited on the silent node";
  std::this_thread::sleep_for(500ms);  // the controller is now inside the SSH handshake
  t0 = std::chrono::steady_clock::now();
  job.cancel();
  EXPECT_LT(seconds_since(t0), o.connect_timeout_s / 2.0) << "cancel() waited on the silent node";
  ASSERT_TRUE(job.wait_for(60s)) << c.dump();
  EXPECT_EQ(job.state(), JobState::cancelled) << job.reason() << "\n" << c.dump();
  ::close(silent);
  fs::remove_all(tmp);
}

TEST(Job, CancelLeavesNoProcessOnEitherNode) {
  fs::path tmp = temp_dir("job-cancel");
  ConnectOptions o = trusted_options(tmp);
  const std::string id = unique_id("cancel");
  const std::string mark = "CANCELMARK" + id.substr(id.find('-') + 1);
  Collector c;
  JobController job(fake_plan(id, 100000, 50, o, mark), c.events_sink());
  job.launch();
  ASSERT_TRUE(wait_until([&] { return c.metric_count() >= 5; }, 20s)) << c.dump();
  ASSERT_EQ(leftovers(0, id, mark, o).empty(), false) << "the job should be running before the cancel";
  const auto t0 = std::chrono::steady_clock::now();
  job.cancel();  // returns at once (Job.LaunchAndCancelReturnWhileANodeNeverAnswers proves it)
  ASSERT_TRUE(job.wait_for(20s)) << c.dump();
  EXPECT_EQ(job.state(), JobState::cancelled) << job.reason();
  std::printf("[ cancel ] both nodes stopped %.2f s after cancel()\n", seconds_since(t0));
  for (int n : {0, 1}) {
    EXPECT_EQ(leftovers(n, id, mark, o), "") << "node " << n;
    EXPECT_TRUE(fs::exists(local_job_dir(n, id) / "cancelled"));
  }
  fs::remove_all(tmp);
}

TEST(Job, KilledRankFailsTheJobWithReason) {
  fs::path tmp = temp_dir("job-rank");
  ConnectOptions o = trusted_options(tmp);
  const std::string id = unique_id("rank");
  const std::string mark = "RANKMARK" + id.substr(id.find('-') + 1);
  Collector c;
  JobController job(fake_plan(id, 100000, 50, o, mark), c.events_sink());
  job.launch();
  const fs::path pid_file = local_job_dir(1, id) / "fake.pid";
  ASSERT_TRUE(wait_until([&] { return c.metric_count() >= 3 && !read_file(pid_file).empty(); }, 20s)) << c.dump();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(std::stoi(read_file(pid_file)), SIGKILL), 0);
  ASSERT_TRUE(job.wait_for(15s)) << "not failed within 15 s\n" << c.dump();
  const double took = seconds_since(t0);
  EXPECT_LT(seconds_since(t0), 15.0);
  EXPECT_EQ(job.state(), JobState::failed);
  EXPECT_NE(job.reason().find("node 1 (127.0.0.1:" + std::to_string(node_port(1)) + ")"), std::string::npos) << job.reason();
  EXPECT_NE(job.reason().find("exited with status 137 (signal 9)"), std::string::npos) << job.reason();
  std::printf("[ failure ] killed rank → job failed in %.2f s: %s\n", took, job.reason().c_str());
  for (int n : {0, 1}) EXPECT_EQ(leftovers(n, id, mark, o), "") << "node " << n;
  fs::remove_all(tmp);
}

TEST(Job, KilledSshdFailsTheJobWithReason) {
  fs::path tmp = temp_dir("job-sshd");
  ConnectOptions o = trusted_options(tmp);
  const std::string id = unique_id("sshd");
  const std::string mark = "SSHDMARK" + id.substr(id.find('-') + 1);
  Collector c;
  {
    JobController job(fake_plan(id, 100000, 50, o, mark), c.events_sink());
    job.launch();
    ASSERT_TRUE(wait_until([&] { return c.metric_count() >= 3; }, 20s)) << c.dump();
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(fixture("kill-node", 1));
    const bool finished = job.wait_for(15s);
    const double took = seconds_since(t0);
    EXPECT_TRUE(finished) << "not failed within 15 s\n" << c.dump();
    EXPECT_EQ(job.state(), JobState::failed);
    EXPECT_NE(job.reason().find("node 1 (127.0.0.1:" + std::to_string(node_port(1)) + ")"), std::string::npos) << job.reason();
    EXPECT_NE(job.reason().find("connection lost"), std::string::npos) << job.reason();
    // Unreachable node: the reason says its processes may remain.
    EXPECT_NE(job.reason().find("processes may remain"), std::string::npos) << job.reason();
    std::printf("[ failure ] killed sshd → job failed in %.2f s: %s\n", took, job.reason().c_str());
    EXPECT_EQ(leftovers(0, id, mark, o), "");
  }
  kill_group_locally(1, id);  // what an admin would do on the node
  ASSERT_TRUE(fixture("start-node", 1));
  fs::remove_all(tmp);
}

TEST(Job, SilentNodeFailsOnKeepalive) {
  fs::path tmp = temp_dir("job-silent");
  ConnectOptions o = trusted_options(tmp);
  o.keepalive_interval_s = 1;
  o.keepalive_timeout_s = 2;
  const std::string id = unique_id("silent");
  const std::string mark = "SILENTMARK" + id.substr(id.find('-') + 1);
  Collector c;
  {
    JobController job(fake_plan(id, 100000, 50, o, mark), c.events_sink());
    job.launch();
    ASSERT_TRUE(wait_until([&] { return c.metric_count() >= 3; }, 20s)) << c.dump();
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(fixture("pause-node", 1));  // the node's session processes stop answering
    const bool finished = job.wait_for(15s);
    const double took = seconds_since(t0);
    fixture("resume-node", 1);
    EXPECT_TRUE(finished) << c.dump();
    EXPECT_EQ(job.state(), JobState::failed);
    EXPECT_NE(job.reason().find("node 1 (127.0.0.1:" + std::to_string(node_port(1)) + ")"), std::string::npos) << job.reason();
    EXPECT_NE(job.reason().find("keepalive"), std::string::npos) << job.reason();
    std::printf("[ failure ] silent node → job failed in %.2f s: %s\n", took, job.reason().c_str());
  }
  // The node's listener still answered, so its job was stopped over a new connection.
  for (int n : {0, 1}) EXPECT_EQ(leftovers(n, id, mark, o), "") << "node " << n;
  fs::remove_all(tmp);
}

TEST(Job, ReattachAfterClientKilledRecoversEveryLineOnce) {
  fs::path tmp = temp_dir("job-reattach");
  ConnectOptions o = trusted_options(tmp);
  const std::string id = unique_id("reattach");
  const fs::path out = tmp / "ingested.jsonl";
  const int steps = 120;
  // The client: a separate process that launches the job and appends each line to `out`.
  const std::string kh = o.known_hosts_file, out_s = out.string(), steps_s = std::to_string(steps);
  const char* argv[] = {MOE_REMOTE_TEST_CLIENT, kh.c_str(), id.c_str(), steps_s.c_str(), "50", out_s.c_str(), nullptr};
  pid_t client = 0;
  ASSERT_EQ(posix_spawn(&client, MOE_REMOTE_TEST_CLIENT, nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  auto lines_in = [&] {
    const std::string s = read_file(out);
    return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
  };
  ASSERT_TRUE(wait_until([&] { return lines_in() >= 10; }, 30s));
  ::kill(client, SIGKILL);
  int status = 0;
  waitpid(client, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  const size_t before = lines_in();
  std::this_thread::sleep_for(500ms);  // the job keeps writing while no client watches
  // The dead client's watchers end with their sshd sessions (their command line holds the id).
  EXPECT_TRUE(wait_until([&] { return std::system(("pgrep -f -- " + shell_quote(id + "/node-[0-9].*metrics[.]jsonl") +
                                                   " >/dev/null").c_str()) != 0; }, 5s))
      << "a watcher of the killed client is still running";
  {
    auto s = SshSession::connect(node(0), o);
    EXPECT_EQ(job_status(*s, s->home() + "/.moe-studio/jobs/" + id + "/node-0").state, NodeJobState::running);
  }
  // The store's view: complete lines only; their bytes are the offset to resume from.
  std::string have = read_file(out);
  have.resize(have.rfind('\n') + 1);
  write_file(out, have);
  Collector c;
  JobPlan plan = fake_plan(id, steps, 50, o);
  JobController job(plan, c.events_sink());
  job.attach(have.size());
  ASSERT_TRUE(job.wait_for(30s)) << c.dump();
  EXPECT_EQ(job.state(), JobState::completed) << job.reason();
  for (auto& l : c.metrics) have += l + "\n";
  const std::string file = read_file(local_job_dir(0, id) / "metrics.jsonl");
  EXPECT_EQ(have, file) << "ingested stream differs from the node's metrics file";
  for (int step = 1; step <= steps; ++step) {
    const std::string key = "\"step\":" + std::to_string(step) + ",";
    size_t count = 0;
    for (size_t p = have.find(key); p != std::string::npos; p = have.find(key, p + 1)) ++count;
    EXPECT_EQ(count, 1u) << "step " << step;
  }
  std::printf("[ reattach ] %zu lines before the kill, %zu after reattach, %d steps each once\n", before,
              c.metrics.size(), steps);
  fs::remove_all(tmp);
}

TEST(Job, HostileJobIdTagAndFileNamesRoundTrip) {
  fs::path tmp = temp_dir("job-hostile");
  ConnectOptions o = trusted_options(tmp);
  // Would create ~/pwned-… on the node if any shell expanded it (no '/': job ids may not hold one).
  const std::string pwned = "pwned-" + std::to_string(std::random_device{}() % 100000);
  const std::string inject = "$(cd; touch " + pwned + ")`cd; touch " + pwned + "`";
  const std::string id = unique_id("run 'q' \"dq\" " + inject + "; echo x\nline2 *");
  const std::string tag = "tag with ' \" $HOME ; & | \n newline " + inject;
  const std::string spec_name = "spec 'name' $(x); \\ \n.json";
  Collector c;
  JobController job(fake_plan(id, 3, 10, o, tag, spec_name), c.events_sink());
  job.launch();
  ASSERT_TRUE(job.wait_for(30s)) << c.dump();
  EXPECT_EQ(job.state(), JobState::completed) << job.reason() << "\n" << c.dump();
  ASSERT_FALSE(c.metrics.empty());
  EXPECT_NE(c.metrics[0].find(sha256_hex(tag)), std::string::npos) << "the tag did not arrive intact";
  EXPECT_NE(c.metrics[0].find(sha256_hex("{\"schema\": 1, \"name\": \"fake\"}\n")), std::string::npos);
  for (int n : {0, 1}) {
    EXPECT_TRUE(fs::exists(local_job_dir(n, id) / spec_name));
    EXPECT_EQ(read_file(local_job_dir(n, id) / "exit_code"), "0\n");
  }
  for (int n : {0, 1}) EXPECT_FALSE(fs::exists(node_home(n) / pwned)) << "a command substitution ran";
  EXPECT_THROW(JobController bad(fake_plan("a/b", 1, 1, o), JobEvents{}), moe::Error);
  fs::remove_all(tmp);
}
