#pragma once
// safetensors (Hugging Face's tensor file format), F32 only:
//   [u64 little-endian header size N][N bytes of JSON header][data]
//   header: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//            "__metadata__": {"k": "v"}}   offsets are relative to the start of the data.
// Reading validates everything: a truncated or corrupt file, or a header that does not match the
// names and shapes a caller expects, is a one-line moe::Error naming the file and the tensor.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace moe::rt {

struct TensorRef {  // a tensor to write, not owned
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;
};

struct Tensor {  // a tensor read from a file
  std::vector<int64_t> shape;
  std::vector<float> data;
};
using TensorMap = std::map<std::string, Tensor>;

struct TensorDest {  // where an expected tensor goes when loading
  std::string name;
  std::vector<int64_t> shape;
  float* data = nullptr;
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[4, 128]"

// Writes `file` (and fsyncs it). Names must be unique.
void write_safetensors(const std::filesystem::path& file, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Reads and validates a whole file.
TensorMap read_safetensors(const std::filesystem::path& file, std::map<std::string, std::string>* metadata = nullptr);

// Copies the expected tensors out of `tensors` (read from `file`): every expected name must be
// there with its shape, and no other tensor may be.
void load_tensors(const TensorMap& tensors, const std::filesystem::path& file, const std::vector<TensorDest>& expected);

}  // namespace moe::rt
