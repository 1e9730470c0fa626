// Hostile input over SSH (docs/reliability.md): `moe run --hosts` on the two sshd fixture nodes
// with a run name, tags, spec name and every local path (store, spec, hostfile, known_hosts, ssh
// config, key, bundle) holding quotes, '$', '`', ';', spaces, newlines, '%' and non-ASCII. They
// reach the store and the nodes as data: the names byte for byte, the spec (name included) as the
// node's spec.json, the remote command line single-quoted word by word; a hostfile whose host or
// user field is not plain data is refused in one line naming the file, the line and the field,
// before anything is recorded or started. The marker file a shell would create stays absent.
// The runtime on the nodes is store_fake_runtime (the spec's stream, no training), bundled.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe_cli_proc.h"
#include "remote_fixture.h"
#include "run_reader.h"
#include "shell_quote.h"
#include "sqlite_db.h"

namespace moe::remote::test {
namespace {

std::string marker() { return "/tmp/moe-pwned-remote-" + std::to_string(::getpid()); }

using Result = MoeResult;

size_t job_dirs(int n) {
  const fs::path jobs = node_home(n) / ".moe-studio" / "jobs";
  if (!fs::exists(jobs)) return 0;
  return static_cast<size_t>(std::distance(fs::directory_iterator(jobs), fs::directory_iterator{}));
}

class HostileRemote : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = temp_dir("hostile");
    dir_ = tmp_ / "d 'q' \"dq\" $HOME `id` ; x\nü ✓ 日本 100%d %%";
    fs::create_directories(dir_);
    db_ = (dir_ / "runs 'x' $y.sqlite").string();
    // The hostfile has no quoting: a key path may hold anything but blanks.
    const fs::path keys = tmp_ / "k'q\"$x`id`;ü#1%d";
    fs::create_directories(keys);
    key_ = (keys / "client_key").string();
    fs::copy_file(fixture_dir() / "client_key", key_);
    fs::permissions(key_, fs::perms::owner_read | fs::perms::owner_write);
    known_hosts_ = (dir_ / "known hosts %h").string();
    write_file(known_hosts_, known_hosts_line(0) + known_hosts_line(1));
    ssh_config_ = (dir_ / "ssh config %d").string();
    write_file(ssh_config_, "");
    // The bundle: store_fake_runtime as moe-runtime, in a hostile local directory.
    bundle_ = dir_ / "bundle $(id)";
    fs::create_directories(bundle_);
    fs::copy_file(STORE_FAKE_RUNTIME, bundle_ / "moe-runtime");
    spec_ = (dir_ / "spec $(id) `id`\n.json").string();
  }
  void TearDown() override {
    EXPECT_FALSE(fs::exists(marker())) << "a hostile string ran as a command";
    fs::remove_all(tmp_);
  }
  std::vector<std::string> moe_run(const std::string& hostfile, const std::vector<std::string>& extra) const {
    std::vector<std::string> a = {"run", spec_, "--db", db_, "--hosts", hostfile, "--known-hosts", known_hosts_,
                                  "--ssh-config", ssh_config_, "--bundle", bundle_.string(), "--master-port", "29655",
                                  "--set", "parallel.ep=2", "--set", "train.steps=3"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  fs::path tmp_, dir_, bundle_;
  std::string db_, key_, known_hosts_, ssh_config_, spec_;
};

TEST_F(HostileRemote, NamesTagsSpecAndPathsReachTheStoreAndTheNodesAsData) {
  const std::string name = "a'b\"c $(touch " + marker() + ") `touch " + marker() + "` x; rm -rf ~ line1\nline2 tab\there ünïcødé ✓ 日本";
  const std::vector<std::string> tags = {"a'b\"c", "$(touch " + marker() + ")", "`id`", "x; rm -rf ~", "two words",
                                         "line1\nline2", "tab\there", "ünïcødé ✓ 日本"};
  const std::string spec_name = "spec '$(touch " + marker() + ")' \"q\" \\ ;\n日本";
  auto spec = nlohmann::json::parse(read_file(MOE_TINY_SPEC));
  spec["name"] = spec_name;
  write_file(spec_, spec.dump(2));
  const std::string hostfile = (dir_ / "hosts $(id) 'h'").string();
  write_file(hostfile, "# two nodes\n127.0.0.1 slots=1 port=" + std::to_string(node_port(0)) + " key=" + key_ + "  # node-a\n127.0.0.1 slots=1 port=" + std::to_string(node_port(1)) + " key=" +
                           key_ + "\n");
  std::vector<std::string> extra = {"--name", name};
  for (const auto& t : tags) extra.insert(extra.end(), {"--tag", t});
  const Result r = run_moe(moe_run(hostfile, extra), tmp_);
  ASSERT_EQ(r.code, 0) << r.err;
  const int64_t run = std::stoll(r.out);

  // The store: the name and tags byte for byte, the spec with its hostile name, completed.
  store::RunReader reader(db_);
  const store::RunInfo info = reader.run(run);
  EXPECT_EQ(info.status, "completed") << info.end_reason;
  EXPECT_EQ(info.n_steps, 3);
  EXPECT_EQ(info.name, name);
  std::vector<std::string> sorted = tags;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(info.tags, sorted);
  EXPECT_EQ(nlohmann::json::parse(reader.spec_json(run))["name"], spec_name);

  // The nodes: spec.json is the resolved spec (its name intact), and run.sh runs one command line
  // whose every word is single-quoted.
  std::string job;
  {
    store::Db db(db_, store::Db::Mode::read_only);
    store::Stmt q(db, "SELECT job_id FROM remote_runs WHERE run_id = ?1");
    q.bind(1, run);
    ASSERT_TRUE(q.step());
    job = q.col_text(0);
  }
  for (int n : {0, 1}) {
    const fs::path jd = node_home(n) / ".moe-studio" / "jobs" / job / ("node-" + std::to_string(n));
    EXPECT_EQ(nlohmann::json::parse(read_file(jd / "spec.json"))["name"], spec_name) << "node " << n;
    const std::string script = read_file(jd / "run.sh");
    const std::string want = shell_join({"train", jd.string() + "/spec.json", "--nnodes", "2", "--node-rank",
                                         std::to_string(n), "--master", "127.0.0.1:29655", "--nproc-per-node", "1",
                                         "--metrics", "-", "--job-id", job});
    EXPECT_NE(script.find("/moe-runtime' " + want + " >> metrics.jsonl"), std::string::npos) << script;
    EXPECT_EQ(read_file(jd / "exit_code"), "0\n") << read_file(jd / "log");
  }
  // Console lines stay lines: no raw control byte (the newline in the store path is escaped).
  EXPECT_EQ(std::count_if(r.err.begin(), r.err.end(), [](char c) { return c != '\n' && static_cast<unsigned char>(c) < 0x20; }), 0)
      << r.err;
}

TEST_F(HostileRemote, AHostfileWithHostileHostOrUserIsRefusedBeforeAnythingStarts) {
  auto spec = nlohmann::json::parse(read_file(MOE_TINY_SPEC));
  write_file(spec_, spec.dump(2));
  const size_t jobs_before = job_dirs(0) + job_dirs(1);
  const std::string hostfile = (tmp_ / "hosts 'h' $x ü").string();  // no newline: the message is compared
  const std::string good = "127.0.0.1 slots=1 port=" + std::to_string(node_port(0)) + " key=" + key_ + "\n";
  struct Case {
    std::string line2, field;
  };
  for (const Case& c : std::vector<Case>{
           {"$(touch${IFS}" + marker() + ") slots=1 port=" + std::to_string(node_port(1)), "host '$(touch${IFS}" + marker() + ")'"},
           {"127.0.0.1;touch${IFS}" + marker() + " slots=1", "host '127.0.0.1;touch${IFS}" + marker() + "'"},
           {"`touch${IFS}" + marker() + "` slots=1", "host '`touch${IFS}" + marker() + "`'"},
           {"127.0.0.1 slots=1 port=" + std::to_string(node_port(1)) + " user=$(touch${IFS}" + marker() + ")", "user '$(touch${IFS}" + marker() + ")'"},
           {"127.0.0.1 slots=1 port=" + std::to_string(node_port(1)) + " user=a'b\"c", "user 'a'b\"c'"},
           {"127.0.0.1 slots=1 port=" + std::to_string(node_port(1)) + " addr=127.0.0.1;touch${IFS}" + marker(), "addr '127.0.0.1;touch${IFS}" + marker() + "'"},
           {"ünïcødé slots=1", "host 'ünïcødé'"},
       }) {
    write_file(hostfile, good + c.line2 + "\n");
    const Result r = run_moe(moe_run(hostfile, {"--name", "never"}), tmp_);
    EXPECT_EQ(r.code, 1) << c.line2;
    EXPECT_EQ(r.err.rfind("moe run: " + hostfile + ":2: " + c.field, 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
  EXPECT_FALSE(fs::exists(db_)) << "a refused hostfile recorded a run";
  EXPECT_EQ(job_dirs(0) + job_dirs(1), jobs_before) << "a job was started";
}

}  // namespace
}  // namespace moe::remote::test
