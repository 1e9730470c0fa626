// libFuzzer target: the safetensors reader (runtime/io/safetensors.h). The input is the file
// (written to tmpfs, read back with read_safetensors: the reader takes a path). A file that reads
// must survive load_tensors with its own names and shapes and a write_safetensors → read round trip
// with identical tensors; anything else must be one moe::Error naming the file. See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "error.h"
#include "fuzz_util.h"
#include "safetensors.h"

using namespace moe::rt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = moe::fuzz::scratch_dir() / "in.safetensors";
  moe::fuzz::write_bytes(file, std::string_view(reinterpret_cast<const char*>(data), size));
  TensorMap tensors;
  std::map<std::string, std::string> metadata;
  try {
    tensors = read_safetensors(file, &metadata);
  } catch (const moe::Error& e) {
    const std::string m = e.what();
    if (m.find(file.string()) == std::string::npos || m.find('\n') != std::string::npos)
      moe::fuzz::fail("error does not name the file in one line: " + m);
    return 0;
  }
  // Every tensor as the model would expect it.
  std::vector<std::vector<float>> copies;
  std::vector<TensorDest> dest;
  std::vector<TensorRef> refs;
  copies.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    copies.emplace_back(t.data.size());
    dest.push_back({name, t.shape, copies.back().data()});
    refs.push_back({name, t.shape, t.data.data()});
  }
  load_tensors(tensors, file, dest);
  const auto out = moe::fuzz::scratch_dir() / "out.safetensors";
  write_safetensors(out, refs, metadata);
  std::map<std::string, std::string> metadata2;
  const TensorMap again = read_safetensors(out, &metadata2);
  if (again.size() != tensors.size() || metadata2 != metadata) moe::fuzz::fail("round trip changed the file");
  for (const auto& [name, t] : tensors) {
    auto it = again.find(name);
    if (it == again.end() || it->second.shape != t.shape || it->second.data.size() != t.data.size() ||
        (!t.data.empty() && std::memcmp(it->second.data.data(), t.data.data(), t.data.size() * sizeof(float)) != 0))
      moe::fuzz::fail("round trip changed tensor " + name);
  }
  return 0;
}
