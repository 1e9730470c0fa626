#pragma once
// Reads the scalars of a TensorBoard event file (events.out.tfevents.*), as written by TensorFlow,
// torch.utils.tensorboard, Megatron-LM and DeepSpeed's monitor: TFRecord framing (length, masked
// CRC-32C of the length, the record, masked CRC-32C of the record) around tensorflow.Event protocol
// buffers. A scalar is a Summary.Value's simple_value (the old style) or a 0-d numeric tensor (the
// TF2 style). Histograms, images, text and graphs are counted and skipped. No protobuf library: the
// few fields needed are decoded by hand (docs/run-store.md, "Importing other engines' runs").
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moe::store {

struct ScalarPoint {
  int64_t step = 0;
  double wall_time = 0;  // seconds since the epoch
  double value = 0;
};

struct TfEventsScalars {
  std::map<std::string, std::vector<ScalarPoint>> series;  // by tag, in file order
  int64_t events = 0;        // records read
  int64_t skipped_values = 0;  // summary values that are not scalars
  bool truncated = false;    // the file ends inside a record (still being written): read up to it
};

// Throws moe::Error naming the file and byte offset for a corrupt record (a CRC mismatch or a
// malformed protocol buffer); a record cut off at the end of the file is not an error.
TfEventsScalars read_tfevents_scalars(const std::string& path);
// The same from bytes already in memory (`origin` names them in errors).
TfEventsScalars parse_tfevents_scalars(const std::string& bytes, const std::string& origin);

// True when `bytes` start with a TFRecord whose length CRC matches: how a file is recognised.
bool looks_like_tfevents(const std::string& bytes);

// CRC-32C (Castagnoli), as TFRecord frames use it, and TFRecord's masking of it.
uint32_t crc32c(const uint8_t* data, size_t n);
uint32_t masked_crc32c(const uint8_t* data, size_t n);

}  // namespace moe::store
