#pragma once
// Helpers for the moe-runtime tests: run the executable, read a metrics stream, write a small spec.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace moe::rt::test {

struct Run {
  int exit_code = -1;
  std::string err;  // stderr
  std::string out;  // stdout
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q.append("'\\''");
    else q.push_back(c);
  }
  q.push_back('\'');
  return q;
}

// Runs `moe-runtime ARGS` (with `env` prefixed, e.g. "MOE_FAULT_NAN_STEP=3"), capturing both streams.
inline Run run_runtime(const std::vector<std::string>& args, const std::string& env = "") {
  TempDir dir;
  // Built with append: GCC 12's -Wrestrict misfires on chains of operator+ at -O2.
  std::string cmd = env;
  cmd.append(" ").append(MOE_RUNTIME_EXE);
  for (const auto& a : args) cmd.append(" ").append(shell_quote(a));
  cmd.append(" >").append((dir / "out").string()).append(" 2>").append((dir / "err").string());
  Run r;
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(dir / "out");
  r.err = read_file(dir / "err");
  return r;
}

inline std::vector<nlohmann::json> read_stream(const std::filesystem::path& file) {
  std::vector<nlohmann::json> records;
  std::istringstream in(read_file(file));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  return records;
}

inline std::vector<nlohmann::json> of_type(const std::vector<nlohmann::json>& recs, const std::string& type) {
  std::vector<nlohmann::json> out;
  for (const auto& r : recs)
    if (r["type"] == type) out.push_back(r);
  return out;
}

// Runs the contract checker; returns its exit code and output.
inline int check_stream(const std::filesystem::path& file, std::string* output) {
  const std::string cmd = std::string("python3 ") + MOE_CHECK_STREAM + " " + file.string() + " 2>&1";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) *output += buf;
  return WEXITSTATUS(::pclose(p));
}

// A small, fast model (2 layers, 4 experts) as a spec file; `extra` is merged on top.
inline std::filesystem::path write_small_spec(const std::filesystem::path& file, const nlohmann::json& extra = {}) {
  nlohmann::json spec = {
      {"schema", 1},
      {"name", "app-test"},
      {"model", {{"seq_len", 32}, {"d_model", 32}, {"n_layers", 2}, {"n_heads", 4}, {"n_kv_heads", 2},
                 {"moe", {{"num_experts", 4}, {"top_k", 2}, {"d_expert", 48}}}}},
      {"train", {{"steps", 8}, {"micro_batch", 4}, {"grad_accum", 2}, {"lr", 3e-3}, {"warmup_steps", 2}, {"seed", 7},
                 {"data", {{"kind", "synthetic"}}}}},
      {"runtime", {{"threads", 1}}},
      {"cluster", {{"hardware", "cpu-2core"}, {"nodes", {{{"host", "localhost"}, {"slots", 1}}}}}},
  };
  if (!extra.is_null()) spec.merge_patch(extra);
  write_file(file, spec.dump(2));
  return file;
}

}  // namespace moe::rt::test
