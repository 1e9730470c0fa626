// Connecting to the real test sshd: host-key policy, changed keys, client auth, ssh config.
#include <gtest/gtest.h>
#include <unistd.h>

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
  EXPECT_EQ(seen.address, node_address(0));

  o.unknown_host = UnknownHostPolicy::accept_new;
  EXPECT_EQ(connect_error(node(0), o), "");
  const std::string kh = read_file(o.known_hosts_file);
  EXPECT_NE(kh.find("[127.0.0.1]:" + std::to_string(node_port(0))), std::string::npos) << kh;
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
  line.replace(0, line.find(' '), "[127.0.0.1]:" + std::to_string(node_port(0)));
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
  o.ssh_config_file = (fixture_dir() / "ssh_config").string();  // Host node-b → node-b's port + key
  HostEntry h;
  h.host = "node-b";
  auto s = SshSession::connect(h, o);
  EXPECT_EQ(s->home(), node_home(1).string());
  // The hostfile's explicit port wins over the config's.
  h.port = node_port(0);
  auto s2 = SshSession::connect(h, o);
  EXPECT_EQ(s2->home(), node_home(0).string());
  // A port with no server: a connect error naming the host and address.
  h.port = 2299;
  EXPECT_NE(connect_error(h, o).find("node-b: cannot connect to 127.0.0.1:2299"), std::string::npos);
  fs::remove_all(tmp);
}

// Hostile input: known_hosts, ssh config and key files in a directory whose name holds spaces,
// quotes, '$', '%' sequences and non-ASCII are used as those exact files. libssh expands %d, %u…
// in the first two; before ssh_session.cpp escaped '%', "100%done" became "100<home>one", every
// host looked unknown and an accepted key was written to that other path.
TEST(Connect, PathsWithQuotesDollarPercentAndNonAsciiAreUsedLiterally) {
  fs::path tmp = temp_dir("paths");
  const fs::path dir = tmp / "dir 'q' \"dq\" $HOME `id` ü 100%done %d%%";
  fs::create_directories(dir);
  ConnectOptions o = trusted_options(tmp);
  const fs::path known = dir / "known hosts";
  fs::copy_file(o.known_hosts_file, known);
  o.known_hosts_file = known.string();
  const fs::path key = dir / "key $x 'k'";
  fs::copy_file(fixture_dir() / "client_key", key);
  fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write);
  const fs::path config = dir / "ssh config";
  write_file(config, "Host literal-alias\n  HostName 127.0.0.1\n  Port " + std::to_string(node_port(1)) + "\n");
  o.process_config = true;
  o.ssh_config_file = config.string();

  HostEntry h;
  h.host = "literal-alias";  // only the config in that directory knows it
  h.key = key.string();
  std::unique_ptr<SshSession> s;
  ASSERT_NO_THROW(s = SshSession::connect(h, o)) << connect_error(h, o);
  EXPECT_EQ(s->home(), node_home(1).string()) << "the ssh config was not read";

  // A new key accepted into a known_hosts file in that directory lands in that very file.
  const fs::path fresh = dir / "fresh %h known_hosts";
  write_file(fresh, "");
  o.known_hosts_file = fresh.string();
  o.unknown_host = UnknownHostPolicy::accept_new;
  ASSERT_NO_THROW(SshSession::connect(h, o)) << connect_error(h, o);
  EXPECT_NE(read_file(fresh).find("[127.0.0.1]:" + std::to_string(node_port(1))), std::string::npos) << "known_hosts written elsewhere";
  o.unknown_host = UnknownHostPolicy::reject;
  EXPECT_EQ(connect_error(h, o), "") << "the key just accepted is not found again";
  fs::remove_all(tmp);
}

// A host entry built in code (the studio's table, a caller of the library) is checked as a
// hostfile line is: a user or host that is not plain data never reaches libssh, whose ssh config
// ProxyCommand expands %r and %h through /bin/sh (CVE-2023-6004 in libssh < 0.10.6).
TEST(Connect, HostileHostOrUserFromCodeIsRefusedBeforeLibssh) {
  fs::path tmp = temp_dir("hostile-entry");
  ConnectOptions o = trusted_options(tmp);
  const std::string marker = "/tmp/moe-pwned-connect-" + std::to_string(::getpid());
  o.process_config = true;
  o.ssh_config_file = (tmp / "ssh_config").string();
  write_file(o.ssh_config_file, "Host *\n  ProxyCommand true %h %r\n");
  for (const std::string& user : {"$(touch " + marker + ")", "`touch " + marker + "`", "me;touch " + marker,
                                  "me\ntouch " + marker, "-oProxyCommand=touch " + marker}) {
    HostEntry h = node(0);
    h.user = user;
    const std::string err = connect_error(h, o);
    EXPECT_EQ(err.rfind("host entry: user '", 0), 0u) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
  for (const std::string& host : {"$(touch " + marker + ")", "127.0.0.1;touch " + marker, std::string("a b"),
                                  std::string("ünï")}) {
    HostEntry h = node(0);
    h.host = host;
    const std::string err = connect_error(h, o);
    EXPECT_EQ(err.rfind("host entry: host '", 0), 0u) << err;
  }
  EXPECT_FALSE(fs::exists(marker)) << "a hostile field ran as a command";
  fs::remove(marker);
  fs::remove_all(tmp);
}
