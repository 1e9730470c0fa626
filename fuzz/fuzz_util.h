#pragma once
// Helpers shared by the libFuzzer targets: a private scratch directory (on tmpfs when there is
// one, so the file-based readers cost no disk I/O), writing bytes to a file, and a check that
// aborts with a message (a broken invariant is a finding, like a crash).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace moe::fuzz {

// A directory made once per fuzzer process, under $MOE_FUZZ_TMP when set (fuzz/run-all.sh sets it
// and removes it: libFuzzer ends with _Exit, so the atexit removal below only covers plain runs).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    const char* env = std::getenv("MOE_FUZZ_TMP");
    std::filesystem::path base = env && *env                                    ? std::filesystem::path(env)
                                 : std::filesystem::is_directory("/dev/shm", ec) ? std::filesystem::path("/dev/shm")
                                                                                : std::filesystem::temp_directory_path();
    std::string tmpl = (base / "moe-fuzz-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::filesystem::path keep = tmpl;
    std::atexit([] {
      std::error_code e;
      std::filesystem::remove_all(keep, e);
    });
    return keep;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", file.c_str());
    std::abort();
  }
}

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace moe::fuzz
