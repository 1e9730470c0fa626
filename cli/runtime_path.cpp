// Locating moe-runtime (see runtime_path.h).
#include "runtime_path.h"

#include <limits.h>
#include <unistd.h>

#include <cstdlib>

#include "error.h"

namespace moe::cli {

namespace fs = std::filesystem;

fs::path self_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return fs::current_path();
  buf[n] = '\0';
  return fs::path(buf).parent_path();
}

fs::path find_runtime() {
  if (const char* env = std::getenv("MOE_RUNTIME"); env && *env) {
    if (::access(env, X_OK) != 0) throw Error(std::string("MOE_RUNTIME: ") + env + " is not an executable");
    return env;
  }
  const fs::path dir = self_dir();
  for (const fs::path& p : {dir / "../runtime/app/moe-runtime", dir / "moe-runtime"})
    if (::access(p.c_str(), X_OK) == 0) return fs::weakly_canonical(p);
  throw Error("moe-runtime: not found beside " + (dir / "moe").string() +
              " (looked in ../runtime/app and .); set MOE_RUNTIME to its path");
}

}  // namespace moe::cli
