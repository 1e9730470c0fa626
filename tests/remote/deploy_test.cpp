// SFTP deploy into ~/.cache/moe-studio/<hash>/: uploads once, verifies, skips when present,
// repairs a corrupted copy; and the host probe for "Test connection".
#include <gtest/gtest.h>

#include <random>

#include "deploy.h"
#include "host_probe.h"
#include "remote_fixture.h"
#include "sha256.h"
#include "ssh_session.h"

using namespace moe::remote;
using namespace moe::remote::test;

namespace {

fs::path make_bundle(const fs::path& tmp) {
  fs::path b = tmp / "bundle dir with 'odd' name";
  fs::create_directories(b / "lib");
  fs::copy_file(MOE_FAKE_RUNTIME, b / "moe-runtime");
  std::string blob(8 << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : blob) c = static_cast<char>(rng());
  write_file(b / "lib" / "libbig.so.1", blob);
  write_file(b / "lib" / "name with spaces & $dollar.txt", "odd names are fine\n");
  return b;
}

}  // namespace

TEST(Deploy, UploadsOnceThenSkipsAndRepairs) {
  fs::path tmp = temp_dir("deploy");
  fs::remove_all(node_home(0) / ".cache" / "moe-studio");
  Bundle bundle = scan_bundle(make_bundle(tmp));
  auto s = SshSession::connect(node(0), trusted_options(tmp));
  EXPECT_FALSE(bundle_present(*s, bundle));

  DeployResult first = deploy_bundle(*s, bundle);
  EXPECT_TRUE(first.uploaded);
  EXPECT_GE(first.bytes, bundle.total_bytes);
  const fs::path remote = node_home(0) / ".cache" / "moe-studio" / bundle.hash;
  EXPECT_EQ(first.remote_dir, remote.string());
  EXPECT_TRUE(fs::exists(remote / ".complete"));
  EXPECT_EQ(sha256_file_hex(remote / "lib" / "libbig.so.1"), bundle.files[0].sha256);
  EXPECT_EQ(read_file(remote / "lib" / "name with spaces & $dollar.txt"), "odd names are fine\n");
  EXPECT_TRUE((fs::status(remote / "moe-runtime").permissions() & fs::perms::owner_exec) != fs::perms::none);
  // No temporary directory left behind.
  int entries = 0;
  for (auto& e : fs::directory_iterator(remote.parent_path())) entries += e.path().filename().string()[0] == '.';
  EXPECT_EQ(entries, 0);

  // The second deploy sends nothing and leaves the copy alone (the same file, not rewritten). Not
  // timed: which of two deploys is faster depends on the machine's load, not on the code.
  const auto before = fs::last_write_time(remote / "lib" / "libbig.so.1");
  DeployResult second = deploy_bundle(*s, bundle);
  EXPECT_FALSE(second.uploaded);
  EXPECT_EQ(second.bytes, 0u);
  EXPECT_EQ(fs::last_write_time(remote / "lib" / "libbig.so.1"), before);
  std::printf("[ deploy ] %.1f MiB: first %.3f s (upload), second %.3f s (skipped)\n",
              static_cast<double>(bundle.total_bytes) / (1 << 20), first.seconds, second.seconds);

  // A corrupted copy fails verification and is replaced.
  write_file(remote / "lib" / "libbig.so.1", "tampered");
  EXPECT_FALSE(bundle_present(*s, bundle));
  DeployResult third = deploy_bundle(*s, bundle);
  EXPECT_TRUE(third.uploaded);
  EXPECT_EQ(sha256_file_hex(remote / "lib" / "libbig.so.1"), bundle.files[0].sha256);
  fs::remove_all(tmp);
}

TEST(Deploy, ProbeReportsTheHost) {
  fs::path tmp = temp_dir("probe");
  fs::remove_all(node_home(1) / ".cache" / "moe-studio");
  Bundle bundle = scan_bundle(make_bundle(tmp));
  ConnectOptions o = trusted_options(tmp);
  HostProbe p = probe_host(node(1), o, bundle.hash);
  EXPECT_EQ(p.cores, static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_FALSE(p.os.empty());
  EXPECT_NE(p.kernel.find("Linux"), std::string::npos);
  EXPECT_GT(p.latency_ms, 0.0);
  EXPECT_LT(p.latency_ms, 1000.0);
  const bool has_nvidia_smi = std::system("command -v nvidia-smi >/dev/null 2>&1") == 0;
  if (!has_nvidia_smi) {
    EXPECT_TRUE(p.gpus.empty());
  }
  EXPECT_FALSE(p.runtime_deployed);
  {
    auto s = SshSession::connect(node(1), o);
    deploy_bundle(*s, bundle);
  }
  p = probe_host(node(1), o, bundle.hash);
  EXPECT_TRUE(p.runtime_deployed);
  ASSERT_EQ(p.bundles.size(), 1u);
  EXPECT_EQ(p.bundles[0], bundle.hash);
  std::printf("[ probe ] %s\n", p.summary().c_str());
  fs::remove_all(tmp);
}
