#pragma once
// Training text as tokens: every byte of a file is one token (vocabulary 256). Loads the data a
// spec names (a file, the bundled corpus or the synthetic generator), splits it into train and
// validation (the validation part is the last `val_fraction` of the bytes), and cuts a text into
// the eval windows of docs/architecture.md 3.5.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "job_spec.h"

namespace moe::rt {

using Bytes = std::vector<uint8_t>;

// The bundled corpus (resources/corpus/kjv.txt); $MOE_CORPUS overrides the path.
std::filesystem::path bundled_corpus_path();

// All bytes of a file; one-line errors for a missing, unreadable or empty file.
Bytes read_bytes_file(const std::filesystem::path& file);

struct DataSplit {
  Bytes train;
  Bytes val;
  std::string origin;  // the file or "synthetic", for messages
};

// Splits `data` into train (first part) and validation (last val_fraction). Each part must hold at
// least one sequence (seq_len + 1 bytes); otherwise a one-line error naming `origin`.
DataSplit split_data(const Bytes& data, double val_fraction, int64_t seq_len, const std::string& origin);

// The data of a spec: train.data.kind text (path, or the bundled corpus when empty) or synthetic.
DataSplit load_training_data(const JobSpec& spec);

// Eval windows (docs/architecture.md 3.5): consecutive windows of up to seq_len + 1 bytes that share
// their boundary byte, so every byte after the first is predicted exactly once.
struct Window {
  int64_t begin = 0;
  int64_t length = 0;  // bytes in the window (≥ 2); it predicts length − 1 of them
};
std::vector<Window> eval_windows(int64_t text_bytes, int64_t seq_len);

}  // namespace moe::rt
