// libFuzzer target: the metrics stream line parser (core/metrics/record_codec.h) and the line
// splitter in front of it. The input is a stream; every line must become a record, a Malformed with
// a reason, or Ignored — never an exception, crash or sanitizer report. Also checked: the splitter
// gives the same lines whatever the read sizes, and printable_prefix (the text of malformed-line
// events) is valid UTF-8 that nlohmann::json can dump. See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "line_splitter.h"
#include "store_records.h"

namespace {

using moe::store::LineSplitter;

// Lines (text or "<oversize N>") with their numbers, reading `text` in pieces of `piece` bytes.
std::vector<std::pair<int64_t, std::string>> split(std::string_view text, size_t piece, size_t max_line) {
  std::vector<std::pair<int64_t, std::string>> out;
  LineSplitter s(max_line);
  auto on_line = [&](std::string_view l, int64_t n) { out.emplace_back(n, std::string(l)); };
  auto on_over = [&](int64_t n, uint64_t bytes) { out.emplace_back(n, "<oversize " + std::to_string(bytes) + ">"); };
  for (size_t i = 0; i < text.size(); i += piece) s.feed(text.substr(i, piece), on_line, on_over);
  s.finish(on_line, on_over);
  return out;
}

void check_printable(std::string_view text, size_t max_bytes) {
  const std::string p = moe::store::printable_prefix(text, max_bytes);
  try {
    (void)nlohmann::json(p).dump();  // throws on invalid UTF-8
  } catch (const nlohmann::json::exception& e) {
    moe::fuzz::fail(std::string("printable_prefix gave invalid UTF-8: ") + e.what());
  }
  for (unsigned char c : p)
    if (c < 0x20 || c == 0x7f) moe::fuzz::fail("printable_prefix kept a control byte");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto lines = split(text, text.size() + 1, 1 << 20);
  for (const auto& [n, line] : lines) {
    moe::store::ParsedLine parsed = moe::store::parse_line(line);
    if (auto* bad = std::get_if<moe::store::Malformed>(&parsed)) {
      if (bad->reason.empty()) moe::fuzz::fail("Malformed without a reason");
      check_printable("line " + std::to_string(n) + ": " + bad->reason + ": " + line.substr(0, 80), 400);
    }
  }
  check_printable(text, 120);
  // The splitter must not depend on how the bytes arrive (small limit: oversize lines too).
  const size_t max_line = 1 + size % 97;
  const auto whole = split(text, text.size() + 1, max_line);
  for (size_t piece : {size_t{1}, size_t{7}}) {
    if (split(text, piece, max_line) != whole) moe::fuzz::fail("LineSplitter depends on the piece size " + std::to_string(piece));
  }
  return 0;
}
