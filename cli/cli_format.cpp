// Number formatting for the `moe` tables (see cli_format.h).
#include "cli_format.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace moe::cli {

namespace {

std::string scaled(double v, double base, const char* const* units, int n, int decimals) {
  int i = 0;
  double a = std::fabs(v);
  while (i + 1 < n && a >= base) a /= base, v /= base, ++i;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f %s", i == 0 && decimals > 0 && v == std::floor(v) ? 0 : decimals, v, units[i]);
  return buf;
}

}  // namespace

std::string fmt_count(double n) {
  static const char* const u[] = {"", "K", "M", "B", "T", "P"};
  std::string s = scaled(n, 1000, u, 6, 2);
  if (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string fmt_bytes(double b) {
  static const char* const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  return scaled(b, 1024, u, 6, 2);
}

std::string fmt_flops(double f) {
  static const char* const u[] = {"FLOP", "KFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP", "ZFLOP"};
  return scaled(f, 1000, u, 8, 2);
}

std::string fmt_seconds(double s) {
  char buf[64];
  if (s == 0) return "0";
  if (s < 1e-3) std::snprintf(buf, sizeof buf, "%.1f µs", s * 1e6);
  else if (s < 1) std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  else std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

std::string fmt_percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * fraction);
  return buf;
}

std::string fmt_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

namespace {

// Length of the valid UTF-8 sequence at s[i] and its code point, or 0.
size_t utf8_at(std::string_view s, size_t i, uint32_t& cp) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  const size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
  for (size_t k = 1; k < n; ++k) {
    const unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  const uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Code points a terminal may act on or that reorder the text around them (C1 controls such as
// CSI, bidi embeddings, overrides and isolates, line/paragraph separators).
bool unsafe_code_point(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

}  // namespace

// s with every control byte, invalid UTF-8 byte and unsafe code point written as an escape;
// with `quoted`, '"' and '\\' are escaped too.
static std::string escaped(std::string_view s, bool quoted) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t n = utf8_at(s, i, cp);
    if (n == 0) {  // a byte that is not UTF-8
      const unsigned char b = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
      ++i;
      continue;
    }
    if (quoted && cp == '"') out += "\\\"";
    else if (quoted && cp == '\\') out += "\\\\";
    else if (cp == '\n') out += "\\n";
    else if (cp == '\t') out += "\\t";
    else if (cp == '\r') out += "\\r";
    else if (cp < 0x20 || cp == 0x7f) {
      out += "\\x";
      out += hex[cp >> 4];
      out += hex[cp & 15];
    } else if (unsafe_code_point(cp)) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u{%04x}", static_cast<unsigned>(cp));
      out += buf;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string display_text(std::string_view s, std::string_view separators) {
  bool plain = !s.empty() && s.front() != ' ' && s.back() != ' ';
  for (size_t i = 0; plain && i < s.size();) {
    uint32_t cp = 0;
    const size_t n = utf8_at(s, i, cp);
    if (n == 0 || cp < 0x20 || cp == 0x7f || cp == '"' || cp == '\\' || unsafe_code_point(cp) ||
        (n == 1 && separators.find(s[i]) != std::string_view::npos))
      plain = false;
    i += n ? n : 1;
  }
  if (plain) return std::string(s);
  return "\"" + escaped(s, true) + "\"";
}

std::string one_line(std::string_view s) { return escaped(s, false); }

std::string fit_column(const std::string& s, size_t width) {
  size_t chars = 0, cut = s.size();
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) continue;  // a continuation byte
    if (chars == width - 1 && cut == s.size()) cut = i;  // room for "…" if the rest does not fit
    ++chars;
  }
  std::string out = chars <= width ? s : s.substr(0, cut) + "…";
  for (size_t n = std::min(chars, width); n < width; ++n) out += ' ';
  return out;
}

}  // namespace moe::cli
