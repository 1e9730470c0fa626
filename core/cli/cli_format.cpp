// Number formatting for the `moe` tables (see cli_format.h).
#include "cli_format.h"

#include <cmath>
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

}  // namespace moe::cli
