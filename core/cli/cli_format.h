#pragma once
// Human-readable numbers for the command line: 46.70 B params, 12.3 GiB, 1.25 PFLOP, 84.2 ms.
#include <string>

namespace moe::cli {

std::string fmt_count(double n);    // 1.23 K / M / B / T
std::string fmt_bytes(double b);    // B, KiB, MiB, GiB, TiB
std::string fmt_flops(double f);    // FLOP, GFLOP, TFLOP, PFLOP, EFLOP
std::string fmt_seconds(double s);  // µs, ms, s
std::string fmt_percent(double fraction);
std::string fmt_fixed(double v, int decimals);

}  // namespace moe::cli
