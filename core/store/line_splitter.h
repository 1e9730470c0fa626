#pragma once
// Splits a byte stream that arrives in arbitrary pieces (pipe reads, SSH packets, a growing file)
// into lines. A line split across pieces is joined; a line longer than max_line_bytes is not
// buffered: its bytes are counted and dropped up to the next newline, and it is reported once with
// its length, so a 100 MB line costs no more memory than the limit.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace moe::store {

class LineSplitter {
 public:
  // on_line(text, line_number); on_oversize(line_number, total_bytes).
  using LineFn = std::function<void(std::string_view, int64_t)>;
  using OversizeFn = std::function<void(int64_t, uint64_t)>;

  explicit LineSplitter(size_t max_line_bytes) : max_line_(max_line_bytes) {}

  void feed(std::string_view bytes, const LineFn& on_line, const OversizeFn& on_oversize);
  // The stream ended: a last line without '\n' is still a line (it may be truncated JSON).
  void finish(const LineFn& on_line, const OversizeFn& on_oversize);

  int64_t lines() const { return line_no_; }

 private:
  size_t max_line_;
  std::string partial_;
  bool skipping_ = false;  // inside an oversize line
  uint64_t skipped_ = 0;
  int64_t line_no_ = 0;
};

}  // namespace moe::store
