#pragma once
// Compact blobs for the per-expert and per-rank arrays of the stream.
// Integers: frame of reference, bit-packed with exceptions (written since schema 8) —
// [0x80 | bits: u8][n: varint][base: zigzag varint][k: varint][k × (index gap, zigzag(v − base))
// varints][n × bits bits of (v − base), little endian, 0 for an exception]. Expert counts of one
// step sit in a band of a few dozen values with a hot or a cold outlier, so 256 counts take ~170
// bytes (5–6 bits each), an all-zero drop array 5 bytes. Mostly-zero arrays use a sparse form.
// Blobs of schema versions 1–7 (byte-aligned width: [width ∈ {0,1,2,4,8}][n][base][n × width
// bytes]) still decode. Decoding reads one 64-bit window per value (the heatmap decodes millions).
// Doubles: n × 8 bytes, little endian (exact round trip of the stream's numbers).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace moe::store {

std::string encode_ints(std::span<const int64_t> values);
// Throws moe::Error("<what>: corrupt blob") when the blob is malformed.
std::vector<int64_t> decode_ints(std::span<const uint8_t> blob, const char* what = "blob");
// Adds the decoded values into acc (acc.size() must be ≥ n); returns n. For the heatmap's sums.
size_t accumulate_ints(std::span<const uint8_t> blob, std::span<int64_t> acc, const char* what = "blob");

std::string encode_doubles(std::span<const double> values);
std::vector<double> decode_doubles(std::span<const uint8_t> blob, const char* what = "blob");

}  // namespace moe::store
