#pragma once
// Compact blobs for the per-expert and per-rank arrays of the stream.
// Integers: frame of reference with a byte-aligned width — [width: u8][n: varint][base: zigzag
// varint][n × width bytes of (v − base), little endian], width ∈ {0,1,2,4,8}. Expert counts of one
// step sit in a narrow band, so 256 counts usually take ~260 bytes, an all-zero drop array 3 bytes,
// and decoding is a plain widening loop the compiler vectorises (the heatmap query decodes millions).
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
