// TensorBoard event files: TFRecord frames of tensorflow.Event messages (tfevents_reader.h).
// Field numbers are those of tensorflow/core/util/event.proto, framework/summary.proto and
// framework/tensor.proto.
#include "tfevents_reader.h"

#include <array>
#include <cstring>

#include "error.h"
#include "job_spec.h"

namespace moe::store {
namespace {

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

// A protocol buffer being read: fields in order, unknown ones skipped. Throws Bad on malformed input.
struct Bad {
  std::string what;
};
class Proto {
 public:
  Proto(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  bool next(uint32_t& field, uint32_t& wire) {
    if (p_ >= end_) return false;
    const uint64_t key = varint();
    field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    return true;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) throw Bad{"varint runs past the end"};
      const uint8_t b = *p_++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw Bad{"varint longer than 10 bytes"};
  }
  uint64_t fixed64() {
    need(8);
    const uint64_t v = le64(p_);
    p_ += 8;
    return v;
  }
  uint32_t fixed32() {
    need(4);
    const uint32_t v = le32(p_);
    p_ += 4;
    return v;
  }
  Proto bytes() {
    const uint64_t n = varint();
    need(n);
    Proto sub(p_, n);
    p_ += n;
    return sub;
  }
  std::string string() {
    Proto s = bytes();
    return std::string(reinterpret_cast<const char*>(s.p_), s.end_ - s.p_);
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: fixed64(); break;
      case 2: bytes(); break;
      case 5: fixed32(); break;
      default: throw Bad{"wire type " + std::to_string(wire) + " is not used by these messages"};
    }
  }
  bool done() const { return p_ >= end_; }
  size_t size() const { return end_ - p_; }
  const uint8_t* data() const { return p_; }

 private:
  void need(uint64_t n) {
    if (n > static_cast<uint64_t>(end_ - p_)) throw Bad{"a field runs past the end of its message"};
  }
  const uint8_t* p_;
  const uint8_t* end_;
};

double as_double(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}
float as_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// tensorflow.DataType values of the numeric scalars.
enum DType : uint64_t { kFloat = 1, kDouble = 2, kInt32 = 3, kInt64 = 9 };

// A TensorProto holding exactly one number with no dimensions, or nothing.
bool tensor_scalar(Proto t, double& out) {
  uint64_t dtype = 0;
  bool has_dims = false;
  std::vector<double> values;
  std::string content;
  uint32_t f, w;
  while (t.next(f, w)) {
    if (f == 1 && w == 0) {
      dtype = t.varint();
    } else if (f == 2 && w == 2) {  // TensorShapeProto: any dim (field 2) makes it not a scalar
      Proto shape = t.bytes();
      uint32_t sf, sw;
      while (shape.next(sf, sw)) {
        if (sf == 2) has_dims = true;
        shape.skip(sw);
      }
    } else if (f == 4 && w == 2) {
      content = t.string();
    } else if (f == 5) {  // float_val, packed or not
      if (w == 2) {
        Proto p = t.bytes();
        while (!p.done()) values.push_back(as_float(p.fixed32()));
      } else {
        values.push_back(as_float(t.fixed32()));
      }
    } else if (f == 6) {  // double_val
      if (w == 2) {
        Proto p = t.bytes();
        while (!p.done()) values.push_back(as_double(p.fixed64()));
      } else {
        values.push_back(as_double(t.fixed64()));
      }
    } else if ((f == 7 || f == 10) && (w == 0 || w == 2)) {  // int_val, int64_val
      if (w == 2) {
        Proto p = t.bytes();
        while (!p.done()) values.push_back(static_cast<double>(static_cast<int64_t>(p.varint())));
      } else {
        values.push_back(static_cast<double>(static_cast<int64_t>(t.varint())));
      }
    } else {
      t.skip(w);
    }
  }
  if (has_dims) return false;
  if (!content.empty()) {
    const auto* c = reinterpret_cast<const uint8_t*>(content.data());
    if (dtype == kFloat && content.size() == 4) values.push_back(as_float(le32(c)));
    else if (dtype == kDouble && content.size() == 8) values.push_back(as_double(le64(c)));
    else if (dtype == kInt32 && content.size() == 4) values.push_back(static_cast<int32_t>(le32(c)));
    else if (dtype == kInt64 && content.size() == 8) values.push_back(static_cast<double>(static_cast<int64_t>(le64(c))));
  }
  if (values.size() != 1 || (dtype != kFloat && dtype != kDouble && dtype != kInt32 && dtype != kInt64)) return false;
  out = values[0];
  return true;
}

void read_summary(Proto summary, int64_t step, double wall_time, TfEventsScalars& out) {
  uint32_t f, w;
  while (summary.next(f, w)) {
    if (f != 1 || w != 2) {
      summary.skip(w);
      continue;
    }
    Proto value = summary.bytes();
    std::string tag;
    bool have = false;
    double number = 0;
    uint32_t vf, vw;
    while (value.next(vf, vw)) {
      if (vf == 1 && vw == 2) {
        tag = value.string();
      } else if (vf == 2 && vw == 5) {
        number = as_float(value.fixed32());
        have = true;
      } else if (vf == 8 && vw == 2) {
        have = tensor_scalar(value.bytes(), number);
      } else {
        value.skip(vw);
      }
    }
    if (have && !tag.empty()) out.series[tag].push_back({step, wall_time, number});
    else ++out.skipped_values;
  }
}

}  // namespace

uint32_t crc32c(const uint8_t* data, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const uint8_t* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

bool looks_like_tfevents(const std::string& bytes) {
  if (bytes.size() < 12) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  return le32(p + 8) == masked_crc32c(p, 8);
}

TfEventsScalars parse_tfevents_scalars(const std::string& bytes, const std::string& origin) {
  TfEventsScalars out;
  const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t at = 0;
  while (at < bytes.size()) {
    const std::string where = origin + ": record at byte " + std::to_string(at);
    if (bytes.size() - at < 12) {
      out.truncated = true;
      break;
    }
    const uint8_t* p = base + at;
    if (le32(p + 8) != masked_crc32c(p, 8)) throw Error(where + ": length CRC mismatch (not an event file, or corrupt)");
    const uint64_t len = le64(p);
    if (len > bytes.size() - at - 12 || bytes.size() - at - 12 - len < 4) {
      out.truncated = true;
      break;
    }
    const uint8_t* data = p + 12;
    if (le32(data + len) != masked_crc32c(data, len)) throw Error(where + ": data CRC mismatch (corrupt)");
    try {
      Proto event(data, len);
      int64_t step = 0;
      double wall_time = 0;
      std::vector<Proto> summaries;
      uint32_t f, w;
      while (event.next(f, w)) {
        if (f == 1 && w == 1) wall_time = as_double(event.fixed64());
        else if (f == 2 && w == 0) step = static_cast<int64_t>(event.varint());
        else if (f == 5 && w == 2) summaries.push_back(event.bytes());
        else event.skip(w);
      }
      for (const Proto& s : summaries) read_summary(s, step, wall_time, out);
    } catch (const Bad& b) {
      throw Error(where + ": malformed event: " + b.what);
    }
    ++out.events;
    at += 12 + len + 4;
  }
  return out;
}

TfEventsScalars read_tfevents_scalars(const std::string& path) {
  return parse_tfevents_scalars(read_text_file(path), path);
}

}  // namespace moe::store
