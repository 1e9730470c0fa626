// Hostfile parsing: DeepSpeed form, options, comments, errors naming file and line.
#include <gtest/gtest.h>

#include "error.h"
#include "hostfile.h"

using moe::remote::HostEntry;
using moe::remote::parse_hostfile;

TEST(Hostfile, ParsesDeepSpeedFormWithOptionsAndComments) {
  auto hosts = parse_hostfile(
      "# cluster\n"
      "node-a slots=4\n"
      "\n"
      "  node-b   slots=8 user=alice port=2222 key=~/.ssh/id_cluster addr=10.0.0.2  # fast one\r\n"
      "node-c\n",
      "hosts");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].host, "node-a");
  EXPECT_EQ(hosts[0].slots, 4);
  EXPECT_EQ(hosts[0].port, 0);
  EXPECT_EQ(hosts[0].line, 2);
  EXPECT_EQ(hosts[1].host, "node-b");
  EXPECT_EQ(hosts[1].slots, 8);
  EXPECT_EQ(hosts[1].user, "alice");
  EXPECT_EQ(hosts[1].port, 2222);
  EXPECT_EQ(hosts[1].key, "~/.ssh/id_cluster");
  EXPECT_EQ(hosts[1].rendezvous_address(), "10.0.0.2");
  EXPECT_EQ(hosts[1].label(), "alice@node-b:2222");
  EXPECT_EQ(hosts[2].slots, 1);
  EXPECT_EQ(hosts[2].rendezvous_address(), "node-c");
}

TEST(Hostfile, FormatRoundTrips) {
  auto hosts = parse_hostfile("a slots=2 user=u port=22 key=/k addr=1.2.3.4\nb slots=1\n", "h");
  auto again = parse_hostfile(moe::remote::format_hostfile(hosts), "h");
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].label(), hosts[0].label());
  EXPECT_EQ(again[0].key, "/k");
  EXPECT_EQ(again[0].addr, "1.2.3.4");
  EXPECT_EQ(again[1].slots, 1);
}

static std::string error_of(const std::string& text) {
  try {
    parse_hostfile(text, "cluster.txt");
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Hostfile, ErrorsNameTheLine) {
  EXPECT_EQ(error_of("a slots=2\nb slots=zero\n"),
            "cluster.txt:2: slots: 'zero' is not an integer in [1, 4096]");
  EXPECT_NE(error_of("a\n\nb colour=red\n").find("cluster.txt:3: unknown option 'colour'"), std::string::npos);
  EXPECT_NE(error_of("a port=70000\n").find("cluster.txt:1: port"), std::string::npos);
  EXPECT_NE(error_of("a slots\n").find("cluster.txt:1: expected key=value"), std::string::npos);
  EXPECT_NE(error_of("slots=4\n").find("cluster.txt:1: a line must start with a host name"), std::string::npos);
  EXPECT_NE(error_of("a slots=1 slots=2\n").find("'slots' given twice"), std::string::npos);
  EXPECT_NE(error_of("a\nb\na\n").find("cluster.txt:3: host 'a' already listed on line 1"), std::string::npos);
  EXPECT_NE(error_of("# only comments\n").find("cluster.txt: no hosts"), std::string::npos);
  EXPECT_NE(error_of("-oProxyCommand=x\n").find("must not start with '-'"), std::string::npos);
}

// role=slurm-login marks a Slurm login node (moe run --hosts then submits through it).
TEST(Hostfile, RoleMarksASlurmLoginNode) {
  auto hosts = parse_hostfile("login.cluster.example user=alice role=slurm-login  # sbatch here\n", "h");
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_TRUE(hosts[0].slurm_login);
  EXPECT_TRUE(parse_hostfile(moe::remote::format_hostfile(hosts), "h")[0].slurm_login);
  EXPECT_FALSE(parse_hostfile("a role=node\n", "h")[0].slurm_login);
  EXPECT_FALSE(parse_hostfile("a\n", "h")[0].slurm_login);
  EXPECT_EQ(error_of("a role=head\n"), "cluster.txt:1: role 'head' is not one of node, slurm-login");
  EXPECT_NE(error_of("a role=node role=node\n").find("'role' given twice"), std::string::npos);
}

TEST(Hostfile, LoadNamesAMissingFile) {
  try {
    moe::remote::load_hostfile("/nonexistent/hosts");
    FAIL() << "no error";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/hosts"), std::string::npos);
  }
}

// Hostile input (docs/reliability.md, "Hostile input"): a host, user or addr field that is not
// plain data is refused naming the file, the line and the field, in one line; valid unusual
// values (IPv6, non-ASCII users, key paths with quotes, '$', '#' or non-ASCII) are kept exactly.
TEST(Hostfile, RefusesHostileFieldsNamingLineAndField) {
  struct Case {
    std::string line, want;
  };
  const std::vector<Case> cases = {
      {"$(touch /tmp/moe-pwned) slots=1", "cluster.txt:2: host '$(touch' is not a host name or address"},
      {"`id` slots=1", "cluster.txt:2: host '`id`' is not a host name"},
      {"a'b\"c slots=1", "cluster.txt:2: host 'a'b\"c' is not a host name"},
      {"x;rm slots=1", "cluster.txt:2: host 'x;rm' is not a host name"},
      {"gpu_node slots=1", "cluster.txt:2: host 'gpu_node' is not a host name"},
      {"ünïcødé slots=1", "non-ASCII names must be given in their xn-- (IDNA) form"},
      {"alice@node slots=1", "cluster.txt:2: host 'alice@node' must not contain '@' (give the user with user=)"},
      {"a..b slots=1", "cluster.txt:2: host 'a..b' has an empty part between dots"},
      {"-oProxyCommand=x slots=1", "cluster.txt:2: host '-oProxyCommand=x' must not start with '-'"},
      {"node user=$(touch${IFS}/tmp/moe-pwned)", "cluster.txt:2: user '$(touch${IFS}/tmp/moe-pwned)' may hold only"},
      {"node user=`id`", "cluster.txt:2: user '`id`' may hold only"},
      {"node user=a'b", "cluster.txt:2: user 'a'b' may hold only"},
      {"node user=x;rm", "cluster.txt:2: user 'x;rm' may hold only"},
      {"node user=-oProxyCommand", "cluster.txt:2: user '-oProxyCommand' must not start with '-'"},
      {"node user=a\x1b[2Jb", "cluster.txt:2: user 'a\\x1b[2Jb' may hold only"},
      {"node addr=$(id)", "cluster.txt:2: addr '$(id)' is not a host name"},
      {"node addr=10.0.0.1;id", "cluster.txt:2: addr '10.0.0.1;id' is not a host name"},
      {"node key=/k\x01", "cluster.txt:2: key '/k\\x01' contains a control character"},
  };
  for (const Case& c : cases) {
    const std::string err = error_of("ok-node slots=1\n" + c.line + "\n");
    EXPECT_NE(err.find(c.want), std::string::npos) << "line: " << c.line << "\nerror: " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << "not one line: " << err;
  }
}

TEST(Hostfile, KeepsValidUnusualFieldsExactly) {
  const std::string text =
      "127.0.0.1 slots=1 user=üser.name+x@corp port=2222\n"
      "::1 slots=1 addr=[fe80::1]   # IPv6\n"
      "Node-7.xn--bcher-kva.example. slots=1 key=/tmp/keys'q'/$HOME/#1/ü/id addr=10.1.0.7\n";
  auto hosts = parse_hostfile(text, "h");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].user, "üser.name+x@corp");
  EXPECT_EQ(hosts[1].host, "::1");
  EXPECT_EQ(hosts[1].addr, "[fe80::1]");
  EXPECT_EQ(hosts[2].host, "Node-7.xn--bcher-kva.example.");
  EXPECT_EQ(hosts[2].key, "/tmp/keys'q'/$HOME/#1/ü/id") << "a '#' inside a word is not a comment";
  auto again = parse_hostfile(moe::remote::format_hostfile(hosts), "h");
  ASSERT_EQ(again.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(again[i].host, hosts[i].host);
    EXPECT_EQ(again[i].user, hosts[i].user);
    EXPECT_EQ(again[i].key, hosts[i].key);
    EXPECT_EQ(again[i].addr, hosts[i].addr);
  }
}
