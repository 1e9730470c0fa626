// Connecting to the real test sshd: host-key policy, changed keys, client auth, ssh config.
#include <gtest/gtest.h>

#include "error.h"
#include "remote_fixture.h"
#include "ssh_session.h"

using namespace moe::remote;
using namespace moe::remote::test;

namespace {

std::string connect_error(const HostEntry& h, const ConnectOptions& o) {
  try {
    SshSession::connect(h, o);
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "";
}

// The fingerprint ssh-keygen prints for a public key file ("SHA256:…").
std::string keygen_fingerprint(const fs::path& pub) {
  const std::string cmd = "ssh-keygen -l -E sha256 -f '" + pub.string() + "' | cut -d' ' -f2";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[256] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, p);
  pclose(p);
  std::string s(buf, n);
  while (!s.empty() && (s.back() == '\n')) s.pop_back();
  return s;
}

}  // namespace

TEST(Connect, UnknownHostKeyRefusedUnlessAccepted) {
  fs::path tmp = temp_dir("unknown");
  ConnectOptions o = trusted_options(tmp);
  write_file(o.known_hosts_file, "");  // trusts nobody
  const std::string fp = keygen_fingerprint(fixture_dir() / "node-a" / "host_key.pub");
  ASSERT_EQ(fp.rfind("SHA256:", 0), 0u);

  o.unknown_host = UnknownHostPolicy::reject;
  std::string err = connect_error(node(0), o);
  EXPECT_NE(err.find("unknown host key"), std::string::npos) << err;
  EXPECT_NE(err.find(fp), std::string::npos) << err;
  EXPECT_EQ(read_file(o.known_hosts_file), "") << "a refused key must not be recorded";

  // ask: the callback sees the fingerprint; saying no refuses.
  o.unknown_host = UnknownHostPolicy::ask;
  HostKeyInfo seen;
  o.prompts.confirm_new_host = [&](const HostKeyInfo& k) { seen = k; return false; };
  EXPECT_NE(connect_error(node(0), o).find("unknown host key"), std::string::npos);
  EXPECT_EQ(seen.fingerprint, fp);
  EXPECT_EQ(seen.key_type, "ssh-ed25519");
  EXPECT_EQ(seen.address, "127.0.0.1:2222");

  o.unknown_host = UnknownHostPolicy::accept_new;
  EXPECT_EQ(connect_error(node(0), o), "");
  const std::string kh = read_file(o.known_hosts_file);
  EXPECT_NE(kh.find("[127.0.0.1]:2222"), std::string::npos) << kh;
  // Now known: even the strict policy connects.
  o.unknown_host = UnknownHostPolicy::reject;
  EXPECT_EQ(connect_error(node(0), o), "");
  fs::remove_all(tmp);
}

TEST(Connect, ChangedHostKeyAlwaysRefusedWithBothFingerprints) {
  fs::path tmp = temp_dir("changed");
  ConnectOptions o = trusted_options(tmp);
  // known_hosts claims node-a's address has node-b's key: exactly what a MITM looks like.
  std::string line = known_hosts_line(1);
  line.replace(0, line.find(' '), "[127.0.0.1]:2222");
  write_file(o.known_hosts_file, line);
  const std::string expected = keygen_fingerprint(fixture_dir() / "node-b" / "host_key.pub");
  const std::string offered = keygen_fingerprint(fixture_dir() / "node-a" / "host_key.pub");
  for (UnknownHostPolicy p : {UnknownHostPolicy::reject, UnknownHostPolicy::accept_new, UnknownHostPolicy::ask}) {
    o.unknown_host = p;
    o.prompts.confirm_new_host = [](const HostKeyInfo&) { return true; };  // a click cannot override
    const std::string err = connect_error(node(0), o);
    EXPECT_NE(err.find("HOST KEY CHANGED"), std::string::npos) << err;
    EXPECT_NE(err.find("127.0.0.1"), std::string::npos) << err;
    EXPECT_NE(err.find(expected), std::string::npos) << err;
    EXPECT_NE(err.find(offered), std::string::npos) << err;
  }
  EXPECT_EQ(read_file(o.known_hosts_file), line) << "known_hosts must be left alone";
  fs::remove_all(tmp);
}

TEST(Connect, WrongClientKeyGivesClearAuthError) {
  fs::path tmp = temp_dir("wrongkey");
  ConnectOptions o = trusted_options(tmp);
  const std::string wrong = (fixture_dir() / "wrong_key").string();
  const std::string err = connect_error(node(1, wrong), o);
  EXPECT_NE(err.find("authentication as '"), std::string::npos) << err;
  EXPECT_NE(err.find("key " + wrong + " (rejected by the server)"), std::string::npos) << err;
  EXPECT_NE(err.find("password (not allowed by the server)"), std::string::npos) << err;
  // A key file that does not exist is named as such.
  const std::string err2 = connect_error(node(1, "/nonexistent/id_x"), o);
  EXPECT_NE(err2.find("key /nonexistent/id_x (file not found)"), std::string::npos) << err2;
  fs::remove_all(tmp);
}

TEST(Connect, PasswordPromptIsNotCalledWhenServerRefusesPasswords) {
  fs::path tmp = temp_dir("pw");
  ConnectOptions o = trusted_options(tmp);
  bool asked = false;
  o.prompts.password = [&](const std::string&) { asked = true; return std::optional<std::string>("x"); };
  EXPECT_NE(connect_error(node(0, (fixture_dir() / "wrong_key").string()), o), "");
  EXPECT_FALSE(asked);
  fs::remove_all(tmp);
}

TEST(Connect, HonoursSshConfigAliases) {
  fs::path tmp = temp_dir("config");
  ConnectOptions o = trusted_options(tmp);
  o.process_config = true;
  o.ssh_config_file = (fixture_dir() / "ssh_config").string();  // Host node-b → 127.0.0.1:2223 + key
  HostEntry h;
  h.host = "node-b";
  auto s = SshSession::connect(h, o);
  EXPECT_EQ(s->home(), node_home(1).string());
  // The hostfile's explicit port wins over the config's.
  h.port = 2222;
  auto s2 = SshSession::connect(h, o);
  EXPECT_EQ(s2->home(), node_home(0).string());
  // A port with no server: a connect error naming the host and address.
  h.port = 2299;
  EXPECT_NE(connect_error(h, o).find("node-b: cannot connect to 127.0.0.1:2299"), std::string::npos);
  fs::remove_all(tmp);
}
