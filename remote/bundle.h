#pragma once
// A deployable directory (the runtime bundle, or any directory) described by content: every file's
// SHA-256 and mode go into a manifest, and the manifest's own SHA-256 names the bundle. The same
// bytes give the same name on every machine, so a node that has the name has the bundle.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moe::remote {

struct BundleFile {
  std::string path;  // relative, '/'-separated
  bool executable = false;
  uint64_t size = 0;
  std::string sha256;
};

struct Bundle {
  std::filesystem::path dir;
  std::vector<BundleFile> files;  // sorted by path
  std::string modes;              // ".modes": "755 path" / "644 path" lines
  std::string manifest;           // ".manifest": sha256sum lines for every file and .modes
  std::string hash;               // sha256(manifest): the remote directory name
  uint64_t total_bytes = 0;
};

// Hashes every regular file under `dir` (symlinks are followed: a library's soname link becomes a
// copy). Throws moe::Error for names a manifest cannot hold (newline, backslash) or reserved names.
Bundle scan_bundle(const std::filesystem::path& dir);

}  // namespace moe::remote
