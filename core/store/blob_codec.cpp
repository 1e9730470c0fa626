// Blob encodings of blob_codec.h.
#include "blob_codec.h"

#include <algorithm>
#include <cmath>
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

constexpr uint8_t kSparse = 0x40;  // tag bit: only the non-zero entries are stored

bool valid_width(unsigned w) { return w == 0 || w == 1 || w == 2 || w == 4 || w == 8; }

Header read_header(std::span<const uint8_t> b, const char* what) {
  Header h;
  size_t pos = 0;
  uint64_t n = 0, zz = 0;
  if (b.empty()) throw Error(std::string(what) + ": corrupt blob (empty)");
  h.width = b[pos++];
  bool ok = valid_width(h.width) &&
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


unsigned width_of(uint64_t range) {
  return range == 0 ? 0 : range <= 0xff ? 1 : range <= 0xffff ? 2 : range <= 0xffffffffu ? 4 : 8;
}

void put_dense(std::string& out, std::span<const int64_t> values) {
  int64_t lo = 0, hi = 0;
  if (!values.empty()) {
    auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    lo = *mn;
    hi = *mx;
  }
  unsigned width = width_of(static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo));
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
}

}  // namespace

// Sparse form: [0x40][n][k non-zeros][k index gaps as varints][dense blob of the k values].
// Chosen when smaller — drop arrays are mostly zero with a few hot experts.
std::string encode_ints(std::span<const int64_t> values) {
  std::string dense;
  dense.reserve(12 + values.size());
  put_dense(dense, values);
  size_t nonzero = 0;
  for (int64_t v : values) nonzero += v != 0;
  if (nonzero == 0 || nonzero * 4 > values.size()) return dense;
  std::string sparse;
  sparse.push_back(static_cast<char>(kSparse));
  put_varint(sparse, values.size());
  put_varint(sparse, nonzero);
  std::vector<int64_t> nz;
  nz.reserve(nonzero);
  size_t prev = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] == 0) continue;
    put_varint(sparse, i - prev);
    prev = i;
    nz.push_back(values[i]);
  }
  put_dense(sparse, nz);
  return sparse.size() < dense.size() ? sparse : dense;
}

namespace {

size_t accumulate_sparse(std::span<const uint8_t> b, std::span<int64_t> acc, const char* what) {
  size_t pos = 1;
  uint64_t n = 0, k = 0;
  if (!get_varint(b, pos, n) || !get_varint(b, pos, k) || k > n || n > (1u << 26) || acc.size() < n) {
    throw Error(std::string(what) + ": corrupt blob");
  }
  std::vector<uint64_t> idx(k);
  uint64_t at = 0;
  for (uint64_t i = 0; i < k; ++i) {
    uint64_t gap = 0;
    if (!get_varint(b, pos, gap)) throw Error(std::string(what) + ": corrupt blob");
    at += gap;
    if (at >= n) throw Error(std::string(what) + ": corrupt blob");
    idx[i] = at;
  }
  std::vector<int64_t> vals(k, 0);
  if (accumulate_ints(b.subspan(pos), vals, what) != k) throw Error(std::string(what) + ": corrupt blob");
  for (uint64_t i = 0; i < k; ++i) acc[idx[i]] += vals[i];
  return n;
}

}  // namespace

size_t accumulate_ints(std::span<const uint8_t> blob, std::span<int64_t> acc, const char* what) {
  if (!blob.empty() && blob[0] == kSparse) return accumulate_sparse(blob, acc, what);
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
  size_t n = 0;
  if (!blob.empty() && blob[0] == kSparse) {
    size_t pos = 1;
    uint64_t v = 0;
    if (!get_varint(blob, pos, v) || v > (1u << 26)) throw Error(std::string(what) + ": corrupt blob");
    n = v;
  } else {
    n = read_header(blob, what).n;
  }
  std::vector<int64_t> out(n, 0);
  accumulate_ints(blob, out, what);
  return out;
}

// Doubles: [0xd0 | k][int blob of v·10^k] when every value is exactly a decimal with k ≤ 6 places
// (timings printed as 123.456), else [0xff][n × 8 bytes].
std::string encode_doubles(std::span<const double> values) {
  static const double kPow10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
  for (int k = 0; k <= 6; ++k) {
    std::vector<int64_t> ints;
    ints.reserve(values.size());
    bool exact = true;
    for (double v : values) {
      double scaled = v * kPow10[k];
      if (!(std::fabs(scaled) < 9.0e15)) {
        exact = false;
        break;
      }
      int64_t x = std::llround(scaled);
      if (static_cast<double>(x) / kPow10[k] != v || (v == 0 && std::signbit(v))) {
        exact = false;
        break;
      }
      ints.push_back(x);
    }
    if (exact) return static_cast<char>(0xd0 | k) + encode_ints(ints);
  }
  std::string out(1 + values.size() * sizeof(double), '\0');
  out[0] = static_cast<char>(0xff);
  if (!values.empty()) std::memcpy(out.data() + 1, values.data(), values.size() * sizeof(double));
  return out;
}

std::vector<double> decode_doubles(std::span<const uint8_t> blob, const char* what) {
  static const double kPow10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
  if (blob.empty()) throw Error(std::string(what) + ": corrupt blob (empty)");
  uint8_t tag = blob[0];
  if (tag == 0xff) {
    if ((blob.size() - 1) % sizeof(double) != 0) throw Error(std::string(what) + ": corrupt blob");
    std::vector<double> out((blob.size() - 1) / sizeof(double));
    if (!out.empty()) std::memcpy(out.data(), blob.data() + 1, blob.size() - 1);
    return out;
  }
  if ((tag & 0xf0) != 0xd0 || (tag & 0x0f) > 6) throw Error(std::string(what) + ": corrupt blob");
  std::vector<int64_t> ints = decode_ints(blob.subspan(1), what);
  std::vector<double> out(ints.size());
  for (size_t i = 0; i < ints.size(); ++i) out[i] = static_cast<double>(ints[i]) / kPow10[tag & 0x0f];
  return out;
}

}  // namespace moe::store
