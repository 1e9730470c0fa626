// Content manifest of a directory bundle.
#include "bundle.h"

#include <algorithm>

#include "error.h"
#include "sha256.h"

namespace moe::remote {

namespace fs = std::filesystem;

Bundle scan_bundle(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw moe::Error(dir.string() + ": bundle directory not found");
  Bundle b;
  b.dir = dir;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw moe::Error(dir.string() + ": cannot list: " + ec.message());
    const fs::path& p = it->path();
    if (fs::is_directory(p, ec)) continue;
    if (!fs::is_regular_file(p, ec))
      throw moe::Error(p.string() + ": not a regular file (bundles hold files and directories only)");
    const std::string rel = fs::relative(p, dir).generic_string();
    if (rel.find_first_of("\n\\") != std::string::npos)
      throw moe::Error(p.string() + ": a bundle file name must not contain a newline or backslash");
    if (rel == ".manifest" || rel == ".modes" || rel == ".complete")
      throw moe::Error(p.string() + ": name reserved for the bundle's own bookkeeping");
    BundleFile f;
    f.path = rel;
    const auto perms = fs::status(p).permissions();
    f.executable = (perms & fs::perms::owner_exec) != fs::perms::none;
    f.size = fs::file_size(p);
    f.sha256 = sha256_file_hex(p);
    b.total_bytes += f.size;
    b.files.push_back(std::move(f));
  }
  if (b.files.empty()) throw moe::Error(dir.string() + ": bundle directory is empty");
  std::sort(b.files.begin(), b.files.end(), [](const BundleFile& x, const BundleFile& y) { return x.path < y.path; });
  // Modes are normalised (755 / 644) so the hash does not depend on the local umask.
  for (const BundleFile& f : b.files) b.modes += std::string(f.executable ? "755 " : "644 ") + f.path + "\n";
  for (const BundleFile& f : b.files) b.manifest += f.sha256 + "  " + f.path + "\n";
  b.manifest += sha256_hex(b.modes) + "  .modes\n";
  b.hash = sha256_hex(b.manifest);
  return b;
}

}  // namespace moe::remote
