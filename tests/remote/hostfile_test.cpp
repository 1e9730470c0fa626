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

TEST(Hostfile, LoadNamesAMissingFile) {
  try {
    moe::remote::load_hostfile("/nonexistent/hosts");
    FAIL() << "no error";
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/hosts"), std::string::npos);
  }
}
