#pragma once
// Helpers shared by the run store tests: a fresh temporary directory per test, whole-stream ingest,
// and reading a file back.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "ingestor.h"
#include "run_store.h"

namespace moe::store::test {

// A fresh directory under the system temp dir, removed when the test ends.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("moe-store-") + (info ? info->test_suite_name() + std::string("-") + info->name() : "x");
    for (char& c : name) if (c == '/') c = '_';
    path_ = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Creates a run and ingests `stream` in pieces of `piece` bytes; returns the run id.
inline int64_t ingest_string(const std::string& db, const std::string& stream, size_t piece = 4096,
                             IngestResult* result = nullptr, IngestOptions options = {}) {
  int64_t run;
  {
    RunStore store(db);
    run = store.create_run("");
  }
  Ingestor ing(db, run, options);
  for (size_t i = 0; i < stream.size(); i += piece) ing.feed(std::string_view(stream).substr(i, piece));
  IngestResult r = ing.finish();
  if (result) *result = r;
  return run;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace moe::store::test
