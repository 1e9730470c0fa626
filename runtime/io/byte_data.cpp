// Byte-level data: loading, the train/validation split and eval windows.
#include "byte_data.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "error.h"
#include "resources.h"
#include "synthetic_data.h"

namespace moe::rt {

std::filesystem::path bundled_corpus_path() {
  if (const char* env = std::getenv("MOE_CORPUS"); env && *env) return env;
  // resources_dir() looks beside the executable first (a deployed bundle carries resources/), then
  // in the source tree: a node without the sources needs no train.data.path.
  return resources_dir() / "corpus" / "kjv.txt";
}

Bytes read_bytes_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw Error("data file " + file.string() + ": no such file");
  if (std::filesystem::is_directory(file, ec)) throw Error("data file " + file.string() + ": is a directory");
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) throw Error("data file " + file.string() + ": cannot be opened");
  const std::streamoff size = in.tellg();
  in.seekg(0);
  Bytes bytes(size > 0 ? static_cast<size_t>(size) : 0);  // exact size: no growth, no slack
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw Error("data file " + file.string() + ": read error");
  if (bytes.empty()) throw Error("data file " + file.string() + ": is empty");
  return bytes;
}

DataSplit split_data(const Bytes& data, double val_fraction, int64_t seq_len, const std::string& origin) {
  if (seq_len < 1) throw Error("model.seq_len: must be at least 1, got " + std::to_string(seq_len));
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    throw Error("train.data.val_fraction: must be in [0, 1), got " + std::to_string(val_fraction));
  const int64_t need = seq_len + 1;
  const int64_t n = static_cast<int64_t>(data.size());
  const int64_t n_val = val_fraction > 0.0 ? static_cast<int64_t>(static_cast<double>(n) * val_fraction) : 0;
  const int64_t n_train = n - n_val;
  if (n_train < need)
    throw Error("data " + origin + ": " + std::to_string(n) + " bytes leave " + std::to_string(n_train) +
                " for training, shorter than one sequence (model.seq_len + 1 = " + std::to_string(need) + " bytes)");
  if (val_fraction > 0.0 && n_val < need)
    throw Error("data " + origin + ": the validation part (train.data.val_fraction " + std::to_string(val_fraction) +
                " of " + std::to_string(n) + " bytes = " + std::to_string(n_val) +
                ") is shorter than one sequence (" + std::to_string(need) + " bytes)");
  DataSplit split;
  split.train.assign(data.begin(), data.begin() + n_train);
  split.val.assign(data.begin() + n_train, data.end());
  split.origin = origin;
  return split;
}

DataSplit load_training_data(const JobSpec& spec) {
  const DataSpec& d = spec.train.data;
  if (d.kind == "synthetic") {
    // Enough bytes for every step to see fresh text, at least 1 MiB.
    const int64_t tokens = spec.train.steps * spec.train.global_batch(spec.parallel) * (spec.model.seq_len + 1);
    const int64_t n = std::max<int64_t>(int64_t{1} << 20, std::min<int64_t>(tokens, int64_t{16} << 20));
    return split_data(generate_synthetic(static_cast<uint64_t>(spec.train.seed), n), d.val_fraction,
                      spec.model.seq_len, "synthetic");
  }
  if (d.kind != "text") throw Error("train.data.kind: expected text or synthetic, got " + d.kind);
  const std::filesystem::path file = d.path.empty() ? bundled_corpus_path() : std::filesystem::path(d.path);
  return split_data(read_bytes_file(file), d.val_fraction, spec.model.seq_len, file.string());
}

std::vector<Window> eval_windows(int64_t text_bytes, int64_t seq_len) {
  std::vector<Window> windows;
  for (int64_t begin = 0; begin + 1 < text_bytes; begin += seq_len)
    windows.push_back({begin, std::min(seq_len + 1, text_bytes - begin)});
  return windows;
}

}  // namespace moe::rt
