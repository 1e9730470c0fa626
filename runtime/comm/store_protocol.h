#pragma once
// Wire format of the rendezvous store (store_server ↔ store_client). A message is
//   u32 length (of what follows) · u8 op-or-status · fields
// where a string/bytes field is u32 length + bytes and integers are little-endian as in memory
// (all ranks run the same binary on the same architecture).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "error.h"

namespace moe::rt::comm::store_wire {

enum Op : uint8_t { kHello = 1, kSet = 2, kGet = 3, kAdd = 4, kWait = 5, kCheck = 6, kDelete = 7 };
enum Status : uint8_t { kOk = 0, kNotFound = 1, kTimeout = 2, kRefused = 3 };

// Keys the store itself writes: one per rank that said hello (the join check lists absent ones).
inline std::string rank_key(int rank) { return "__rank/" + std::to_string(rank); }

struct Writer {
  std::vector<char> bytes = std::vector<char>(4);  // room for the length prefix
  void u8(uint8_t v) { bytes.push_back(static_cast<char>(v)); }
  template <typename T>
  void num(T v) {
    const char* p = reinterpret_cast<const char*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }
  void str(const std::string& s) { blob(s.data(), s.size()); }
  void blob(const char* p, size_t n) {
    num<uint32_t>(static_cast<uint32_t>(n));
    bytes.insert(bytes.end(), p, p + n);
  }
  // Fills in the length prefix; returns the bytes to send.
  const std::vector<char>& finish() {
    const uint32_t n = static_cast<uint32_t>(bytes.size() - 4);
    std::memcpy(bytes.data(), &n, 4);
    return bytes;
  }
};

struct Reader {
  const char* p;
  const char* end;
  Reader(const char* data, size_t n) : p(data), end(data + n) {}
  void need(size_t n) const {
    if (static_cast<size_t>(end - p) < n) throw Error("rendezvous store: malformed message");
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(*p++);
  }
  template <typename T>
  T num() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p, sizeof(T));
    p += sizeof(T);
    return v;
  }
  std::string str() {
    const uint32_t n = num<uint32_t>();
    need(n);
    std::string s(p, n);
    p += n;
    return s;
  }
  std::vector<char> blob() {
    const uint32_t n = num<uint32_t>();
    need(n);
    std::vector<char> v(p, p + n);
    p += n;
    return v;
  }
};

}  // namespace moe::rt::comm::store_wire
