// Blob encodings of blob_codec.h.
#include "blob_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

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

constexpr uint8_t kSparse = 0x40;     // tag: only the non-zero entries are stored
constexpr uint8_t kBitPacked = 0x80;  // tag bit: bit-packed with exceptions; the low bits are the width

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


uint64_t zigzag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t unzigzag(uint64_t z) { return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1)); }

// Bit-packed frame of reference with exceptions (schema 8 on): the values in [base, base + 2^bits)
// are stored in `bits` bits each; the few outside (a hot expert, a dead one) are exceptions, stored
// as (index gap, zigzag(v − base)) varints with 0 in their bit slots. base and bits are chosen to
// minimise the size, from a sorted copy: a cut of 0–3 or n/32 of the lowest values as exceptions,
// then the cheapest width for the rest. Expert counts of one step sit in a band of a few dozen
// values with one or two outliers: ~5–6 bits a count instead of the byte-aligned form's 8.
void put_dense(std::string& out, std::span<const int64_t> values) {
  const size_t n = values.size();
  std::vector<int64_t> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  int64_t base = n ? sorted[0] : 0;
  unsigned bits = 0;
  size_t best = SIZE_MAX;
  const size_t cuts[] = {0, 1, 2, 3, n / 32};
  for (size_t cut : cuts) {
    if (cut >= n && n > 0) continue;
    const int64_t b0 = n ? sorted[cut] : 0;
    for (unsigned b = 0; b <= 64; ++b) {
      // values above b0 + 2^b − 1 are exceptions
      size_t above = 0;
      if (b < 64 && n > 0) {
        const int64_t span = static_cast<int64_t>((uint64_t{1} << b) - 1);
        if (b0 <= std::numeric_limits<int64_t>::max() - span) {  // else nothing lies above
          auto it = std::upper_bound(sorted.begin(), sorted.end(), b0 + span);
          above = static_cast<size_t>(sorted.end() - it);
        }
      }
      const size_t size = (n * b + 7) / 8 + (cut + above) * 3;
      if (size < best) best = size, bits = b, base = b0;
      if (above == 0) break;  // wider widths only cost more
    }
  }
  out.push_back(static_cast<char>(kBitPacked | bits));
  put_varint(out, n);
  put_varint(out, zigzag(base));
  const uint64_t mask = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  std::string exceptions;
  size_t n_exc = 0, prev = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t d = static_cast<uint64_t>(values[i]) - static_cast<uint64_t>(base);
    if (values[i] >= base && d <= mask) continue;
    put_varint(exceptions, i - prev);
    put_varint(exceptions, zigzag(static_cast<int64_t>(d)));
    prev = i;
    ++n_exc;
  }
  put_varint(out, n_exc);
  out += exceptions;
  const size_t body = out.size();
  out.resize(body + (n * bits + 7) / 8, '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(out.data() + body);
  size_t bitpos = 0;
  for (size_t i = 0; i < n && bits > 0; ++i, bitpos += bits) {
    uint64_t d = static_cast<uint64_t>(values[i]) - static_cast<uint64_t>(base);
    if (values[i] < base || d > mask) d = 0;  // an exception: its slot holds 0
    for (unsigned done = 0; done < bits;) {  // little endian bit order, byte by byte
      const size_t at = (bitpos + done) >> 3;
      const unsigned shift = (bitpos + done) & 7, take = std::min(bits - done, 8 - shift);
      p[at] |= static_cast<uint8_t>(((d >> done) & ((1u << take) - 1)) << shift);
      done += take;
    }
  }
}

// Adds the bit-packed blob's values into acc; returns n.
size_t accumulate_bitpacked(std::span<const uint8_t> b, std::span<int64_t> acc, const char* what) {
  const unsigned bits = b[0] & 0x7f;
  size_t pos = 1;
  uint64_t n = 0, zz = 0, n_exc = 0;
  if (bits > 64 || !get_varint(b, pos, n) || !get_varint(b, pos, zz) || !get_varint(b, pos, n_exc) ||
      n > (1u << 26) || n_exc > n) {
    throw Error(std::string(what) + ": corrupt blob");
  }
  if (acc.size() < n) throw Error(std::string(what) + ": more values than expected");
  const int64_t base = unzigzag(zz);
  // Exceptions first (they precede the bits); applied after the packed values.
  std::vector<std::pair<uint64_t, int64_t>> exc(n_exc);
  uint64_t at = 0;
  for (uint64_t k = 0; k < n_exc; ++k) {
    uint64_t gap = 0, d = 0;
    if (!get_varint(b, pos, gap) || !get_varint(b, pos, d)) throw Error(std::string(what) + ": corrupt blob");
    at += gap;
    if (at >= n || (k > 0 && gap == 0)) throw Error(std::string(what) + ": corrupt blob");
    exc[k] = {at, unzigzag(d)};
  }
  if (b.size() - pos != (n * bits + 7) / 8) throw Error(std::string(what) + ": corrupt blob");
  const uint8_t* p = b.data() + pos;
  const size_t bytes = b.size() - pos;
  if (bits == 0) {
    for (size_t i = 0; i < n; ++i) acc[i] += base;
  } else if (bits <= 56) {
    // A 64-bit window per value; the last few values read through a zero-padded copy.
    const uint64_t mask = (uint64_t{1} << bits) - 1;
    size_t i = 0, bitpos = 0;
    for (; i < n && (bitpos >> 3) + 8 <= bytes; ++i, bitpos += bits) {
      uint64_t w;
      std::memcpy(&w, p + (bitpos >> 3), 8);
      acc[i] += base + static_cast<int64_t>((w >> (bitpos & 7)) & mask);
    }
    for (; i < n; ++i, bitpos += bits) {
      uint64_t w = 0;
      std::memcpy(&w, p + (bitpos >> 3), bytes - (bitpos >> 3));
      acc[i] += base + static_cast<int64_t>((w >> (bitpos & 7)) & mask);
    }
  } else {
    size_t bitpos = 0;
    for (size_t i = 0; i < n; ++i, bitpos += bits) {
      uint64_t d = 0;
      for (unsigned done = 0; done < bits;) {
        const size_t at_byte = (bitpos + done) >> 3;
        const unsigned shift = (bitpos + done) & 7, take = std::min(bits - done, 8 - shift);
        d |= static_cast<uint64_t>((p[at_byte] >> shift) & ((1u << take) - 1)) << done;
        done += take;
      }
      acc[i] += static_cast<int64_t>(static_cast<uint64_t>(base) + d);
    }
  }
  // Wrapping adds: an exception's delta may span the whole int64 range.
  for (auto [i, d] : exc) acc[i] = static_cast<int64_t>(static_cast<uint64_t>(acc[i]) + static_cast<uint64_t>(d));
  return n;
}

size_t count_of(std::span<const uint8_t> b, const char* what) {
  size_t pos = 1;
  uint64_t n = 0;
  if (!get_varint(b, pos, n) || n > (1u << 26)) throw Error(std::string(what) + ": corrupt blob");
  return n;
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
  if (!blob.empty() && (blob[0] & kBitPacked)) return accumulate_bitpacked(blob, acc, what);
  // The byte-aligned form of schema versions 1–7 (files in the field hold it).
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
  if (!blob.empty() && (blob[0] == kSparse || (blob[0] & kBitPacked))) {
    n = count_of(blob, what);
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
