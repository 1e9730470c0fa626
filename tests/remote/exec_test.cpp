// Remote exec: exit codes, separate streams, hostile strings through a remote printf, keepalive.
#include <gtest/gtest.h>

#include "remote_fixture.h"
#include "shell_quote.h"
#include "ssh_session.h"

std::vector<std::string> hostile_strings();  // shell_quote_test.cpp
std::string pwned_marker();                  // shell_quote_test.cpp

using namespace moe::remote;
using namespace moe::remote::test;

TEST(Exec, ExitCodesAndStreams) {
  fs::path tmp = temp_dir("exec");
  auto s = SshSession::connect(node(0), trusted_options(tmp));
  for (int code : {0, 1, 3, 255}) EXPECT_EQ(s->run("exit " + std::to_string(code)).exit_status, code);
  ExecResult r = s->run("echo out; echo err >&2; echo more");
  EXPECT_EQ(r.out, "out\nmore\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.exit_status, 0);
  // Large output arrives complete.
  r = s->run("head -c 3000000 /dev/zero | tr '\\0' x");
  EXPECT_EQ(r.out.size(), 3000000u);
  EXPECT_EQ(s->home(), node_home(0).string());
  fs::remove_all(tmp);
}

TEST(Exec, HostileStringsRoundTripThroughRemotePrintf) {
  fs::path tmp = temp_dir("hostile");
  auto s = SshSession::connect(node(1), trusted_options(tmp));
  for (const std::string& h : hostile_strings()) {
    ExecResult r = s->run("printf %s " + shell_quote(h));
    EXPECT_EQ(r.exit_status, 0);
    EXPECT_EQ(r.out, h) << "quoted as " << shell_quote(h);
  }
  // Several arguments keep their boundaries.
  ExecResult r = s->run("printf '<%s>' " + shell_join({"a b", "", "c'd", "$x"}));
  EXPECT_EQ(r.out, "<a b><><c'd><$x>");
  EXPECT_FALSE(fs::exists(pwned_marker())) << "a quoted string ran as a command on the node";
  fs::remove_all(tmp);
}

TEST(Exec, StreamDeliversIncrementallyAndKeepaliveAnswers) {
  fs::path tmp = temp_dir("stream");
  ConnectOptions o = trusted_options(tmp);
  o.keepalive_interval_s = 1;
  auto s = SshSession::connect(node(0), o);
  EXPECT_TRUE(s->keepalive());
  std::vector<std::pair<double, std::string>> chunks;
  const auto t0 = std::chrono::steady_clock::now();
  StreamHandlers h;
  h.on_stdout = [&](std::string_view b) { chunks.emplace_back(seconds_since(t0), std::string(b)); };
  // 2.5 s of output: spans two keepalive rounds, which must not disturb the stream.
  StreamResult r = s->stream("for i in 1 2 3 4 5; do echo $i; sleep 0.5; done; exit 7", h);
  EXPECT_EQ(r.exit_status, 7);
  EXPECT_TRUE(r.lost.empty()) << r.lost;
  std::string all;
  for (auto& c : chunks) all += c.second;
  EXPECT_EQ(all, "1\n2\n3\n4\n5\n");
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_LT(chunks.front().first, 1.0) << "the first line must arrive before the command ends";
  fs::remove_all(tmp);
}
