// Blob encodings of blob_codec.h.
#include "blob_codec.h"

#include <algorithm>
#include <cstring>

#include "error.h"

namespace moe::store {

namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(std::span<const uint8_t> b, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= b.size()) return false;
    uint8_t byte = b[pos++];
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

struct Header {
  unsigned width = 0;
  size_t n = 0;
  int64_t base = 0;
  size_t body = 0;  // offset of the packed values
};

Header read_header(std::span<const uint8_t> b, const char* what) {
  Header h;
  size_t pos = 0;
  uint64_t n = 0, zz = 0;
  if (b.empty()) throw Error(std::string(what) + ": corrupt blob (empty)");
  h.width = b[pos++];
  bool ok = (h.width == 0 || h.width == 1 || h.width == 2 || h.width == 4 || h.width == 8) &&
            get_varint(b, pos, n) && get_varint(b, pos, zz) && n <= (1u << 26);
  if (!ok || (b.size() - pos) != n * h.width) throw Error(std::string(what) + ": corrupt blob");
  h.n = n;
  h.base = static_cast<int64_t>((zz >> 1) ^ (~(zz & 1) + 1));
  h.body = pos;
  return h;
}

template <typename T>
void add_packed(const uint8_t* p, size_t n, int64_t base, int64_t* acc) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    acc[i] += base + static_cast<int64_t>(v);
  }
}

}  // namespace

std::string encode_ints(std::span<const int64_t> values) {
  int64_t lo = 0, hi = 0;
  if (!values.empty()) {
    auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    lo = *mn;
    hi = *mx;
  }
  uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  unsigned width = range == 0 ? 0 : range <= 0xff ? 1 : range <= 0xffff ? 2 : range <= 0xffffffffu ? 4 : 8;
  std::string out;
  out.reserve(12 + values.size() * width);
  out.push_back(static_cast<char>(width));
  put_varint(out, values.size());
  put_varint(out, (static_cast<uint64_t>(lo) << 1) ^ static_cast<uint64_t>(lo >> 63));
  size_t body = out.size();
  out.resize(body + values.size() * width);
  char* p = out.data() + body;
  for (int64_t v : values) {
    uint64_t d = static_cast<uint64_t>(v) - static_cast<uint64_t>(lo);
    std::memcpy(p, &d, width);  // little endian: the low bytes first
    p += width;
  }
  return out;
}

size_t accumulate_ints(std::span<const uint8_t> blob, std::span<int64_t> acc, const char* what) {
  Header h = read_header(blob, what);
  if (acc.size() < h.n) throw Error(std::string(what) + ": more values than expected");
  const uint8_t* p = blob.data() + h.body;
  switch (h.width) {
    case 0: for (size_t i = 0; i < h.n; ++i) acc[i] += h.base; break;
    case 1: add_packed<uint8_t>(p, h.n, h.base, acc.data()); break;
    case 2: add_packed<uint16_t>(p, h.n, h.base, acc.data()); break;
    case 4: add_packed<uint32_t>(p, h.n, h.base, acc.data()); break;
    default: add_packed<uint64_t>(p, h.n, h.base, acc.data()); break;
  }
  return h.n;
}

std::vector<int64_t> decode_ints(std::span<const uint8_t> blob, const char* what) {
  Header h = read_header(blob, what);
  std::vector<int64_t> out(h.n, 0);
  accumulate_ints(blob, out, what);
  return out;
}

std::string encode_doubles(std::span<const double> values) {
  std::string out(values.size() * sizeof(double), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::vector<double> decode_doubles(std::span<const uint8_t> blob, const char* what) {
  if (blob.size() % sizeof(double) != 0) throw Error(std::string(what) + ": corrupt blob");
  std::vector<double> out(blob.size() / sizeof(double));
  if (!out.empty()) std::memcpy(out.data(), blob.data(), blob.size());
  return out;
}

}  // namespace moe::store
