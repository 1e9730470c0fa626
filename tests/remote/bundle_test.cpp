// Bundle manifests: the hash depends on content, names and the exec bit, nothing else.
#include <gtest/gtest.h>

#include <filesystem>

#include "bundle.h"
#include "error.h"
#include "remote_fixture.h"
#include "sha256.h"

namespace fs = std::filesystem;
using namespace moe::remote;
using namespace moe::remote::test;

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Bundle, HashFollowsContentNamesAndModes) {
  fs::path a = temp_dir("bundle-a"), b = temp_dir("bundle-b");
  for (const fs::path& d : {a, b}) {
    fs::create_directories(d / "lib");
    write_file(d / "run", "#!/bin/sh\necho hi\n");
    write_file(d / "lib" / "libx.so", std::string(100000, 'x'));
    fs::permissions(d / "run", fs::perms::owner_all);
  }
  Bundle ba = scan_bundle(a), bb = scan_bundle(b);
  EXPECT_EQ(ba.hash, bb.hash);  // same bytes in another place → same name
  ASSERT_EQ(ba.files.size(), 2u);
  EXPECT_EQ(ba.files[0].path, "lib/libx.so");
  EXPECT_FALSE(ba.files[0].executable);
  EXPECT_TRUE(ba.files[1].executable);
  EXPECT_EQ(ba.total_bytes, 100000u + 18u);
  EXPECT_NE(ba.manifest.find(sha256_hex(std::string(100000, 'x')) + "  lib/libx.so\n"), std::string::npos);

  fs::permissions(b / "run", fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_NE(scan_bundle(b).hash, ba.hash) << "exec bit must change the hash";
  fs::permissions(b / "run", fs::perms::owner_all);
  write_file(b / "lib" / "libx.so", std::string(100000, 'y'));
  EXPECT_NE(scan_bundle(b).hash, ba.hash) << "content must change the hash";
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(Bundle, RejectsUnrepresentableNames) {
  fs::path d = temp_dir("bundle-bad");
  write_file(d / "new\nline", "x");
  EXPECT_THROW(scan_bundle(d), moe::Error);
  fs::remove_all(d);
  EXPECT_THROW(scan_bundle(d), moe::Error);  // missing directory
}
