// safetensors reader and writer with strict validation (see safetensors.h).
#include "safetensors.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "error.h"
#include "job_spec.h"

namespace moe::rt {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

constexpr uint64_t kMaxHeader = uint64_t{100} << 20;  // the reference implementation's limit

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Writes all bytes or throws; fsyncs before closing so a later rename publishes complete data.
void write_file_synced(const std::filesystem::path& file, const std::vector<std::pair<const void*, size_t>>& parts) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(file.string() + ": cannot create (" + std::strerror(errno) + ")");
  for (auto [ptr, size] : parts) {
    const char* p = static_cast<const char*>(ptr);
    while (size > 0) {
      const ssize_t n = ::write(fd, p, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        throw Error(file.string() + ": write failed (" + why + ")");
      }
      p += n;
      size -= static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw Error(file.string() + ": fsync failed (" + why + ")");
  }
  if (::close(fd) != 0) throw Error(file.string() + ": close failed (" + std::strerror(errno) + ")");
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void write_safetensors(const std::filesystem::path& file, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const TensorRef& t : tensors) {
    if (header.contains(t.name)) throw Error(file.string() + ": tensor " + t.name + " written twice");
    const uint64_t bytes = static_cast<uint64_t>(numel(t.shape)) * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the reference writer does
  const uint64_t size = text.size();
  std::vector<std::pair<const void*, size_t>> parts{{&size, sizeof size}, {text.data(), text.size()}};
  for (const TensorRef& t : tensors)
    if (numel(t.shape) > 0) parts.push_back({t.data, static_cast<size_t>(numel(t.shape)) * sizeof(float)});
  write_file_synced(file, parts);
}

TensorMap read_safetensors(const std::filesystem::path& file, std::map<std::string, std::string>* metadata) {
  const std::string where = "checkpoint file " + file.string();
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) throw Error(where + ": cannot be opened (" + std::strerror(errno) + ")");
  std::vector<char> bytes;
  char buffer[1 << 16];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) bytes.insert(bytes.end(), buffer, buffer + n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) throw Error(where + ": read error");

  if (bytes.size() < 8) throw Error(where + ": truncated (" + std::to_string(bytes.size()) + " bytes, no header size)");
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  if (header_size > kMaxHeader) throw Error(where + ": corrupt (header size " + std::to_string(header_size) + " bytes)");
  if (header_size > bytes.size() - 8)
    throw Error(where + ": truncated (header of " + std::to_string(header_size) + " bytes, file holds " +
                std::to_string(bytes.size() - 8) + ")");
  nlohmann::json header;
  // Dumping a value (in the messages below) recurses per level: refuse deep nesting (job_spec.h).
  if (json_nesting_exceeds(std::string_view(bytes.data() + 8, header_size)))
    throw Error(where + ": corrupt (the header nests deeper than " + std::to_string(kMaxJsonDepth) + " levels)");
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_size));
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": corrupt (the header is not valid JSON)");
  }
  if (!header.is_object()) throw Error(where + ": corrupt (the header is not a JSON object)");

  const uint64_t data_size = bytes.size() - 8 - header_size;
  const char* data = bytes.data() + 8 + header_size;
  TensorMap tensors;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw Error(where + ": corrupt (__metadata__ is not an object)");
      if (metadata)
        for (const auto& [k, v] : entry.items())
          if (v.is_string()) (*metadata)[k] = v.get<std::string>();
      continue;
    }
    const std::string at = where + ": tensor " + name;
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      throw Error(at + ": corrupt header entry (needs dtype, shape, data_offsets)");
    if (entry["dtype"] != "F32")
      throw Error(at + ": dtype " + entry["dtype"].dump() + " is not supported (only F32)");
    const auto& shape_json = entry["shape"];
    const auto& offsets = entry["data_offsets"];
    Tensor t;
    if (!shape_json.is_array()) throw Error(at + ": corrupt shape");
    // Element count with overflow checks, left to right as numel() multiplies: every accepted
    // shape has at most 2^62 elements (whose byte count fits in 64 bits), reached without overflow.
    uint64_t elements = 1;
    for (const auto& d : shape_json) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw Error(at + ": corrupt shape " + shape_json.dump());
      const uint64_t dim = d.get<uint64_t>();
      if (elements != 0 && dim > UINT64_MAX / sizeof(float) / elements)
        throw Error(at + ": corrupt shape " + shape_json.dump() + " (too many elements)");
      elements *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw Error(at + ": corrupt data_offsets");
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end) throw Error(at + ": corrupt data_offsets (begin after end)");
    if (end > data_size)
      throw Error(at + ": truncated (data ends at byte " + std::to_string(end) + ", file holds " +
                  std::to_string(data_size) + " data bytes)");
    const uint64_t n = elements;
    if (end - begin != n * sizeof(float))
      throw Error(at + ": corrupt (shape " + shape_string(t.shape) + " needs " + std::to_string(n * sizeof(float)) +
                  " bytes, data_offsets span " + std::to_string(end - begin) + ")");
    t.data.resize(n);
    if (n) std::memcpy(t.data.data(), data + begin, n * sizeof(float));
    ranges.push_back({begin, end});
    tensors.emplace(name, std::move(t));
  }
  // The data must be covered exactly: no overlaps, no holes, nothing after the last tensor.
  std::sort(ranges.begin(), ranges.end());
  uint64_t covered = 0;
  for (auto [begin, end] : ranges) {
    if (begin != covered) throw Error(where + ": corrupt (tensor data overlaps or leaves a hole at byte " + std::to_string(covered) + ")");
    covered = end;
  }
  if (covered != data_size)
    throw Error(where + ": corrupt (" + std::to_string(data_size - covered) + " bytes after the last tensor)");
  return tensors;
}

void load_tensors(const TensorMap& tensors, const std::filesystem::path& file, const std::vector<TensorDest>& expected) {
  const std::string where = "checkpoint file " + file.string();
  for (const TensorDest& d : expected) {
    auto it = tensors.find(d.name);
    if (it == tensors.end()) throw Error(where + ": tensor " + d.name + " is missing");
    if (it->second.shape != d.shape)
      throw Error(where + ": tensor " + d.name + " has shape " + shape_string(it->second.shape) + ", the model expects " +
                  shape_string(d.shape));
  }
  if (tensors.size() != expected.size()) {
    for (const auto& entry : tensors) {
      const std::string& name = entry.first;  // not a structured binding: clang < 16 cannot capture one
      const bool known = std::any_of(expected.begin(), expected.end(), [&](const TensorDest& d) { return d.name == name; });
      if (!known) throw Error(where + ": tensor " + name + " is not part of this model");
    }
  }
  for (const TensorDest& d : expected) {
    const Tensor& t = tensors.at(d.name);
    std::copy(t.data.begin(), t.data.end(), d.data);
  }
}

}  // namespace moe::rt
