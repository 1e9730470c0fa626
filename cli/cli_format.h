#pragma once
// Human-readable numbers for the command line: 46.70 B params, 12.3 GiB, 1.25 PFLOP, 84.2 ms.
#include <string>
#include <string_view>

namespace moe::cli {

std::string fmt_count(double n);    // 1.23 K / M / B / T
std::string fmt_bytes(double b);    // B, KiB, MiB, GiB, TiB
std::string fmt_flops(double f);    // FLOP, GFLOP, TFLOP, PFLOP, EFLOP
std::string fmt_seconds(double s);  // µs, ms, s
std::string fmt_percent(double fraction);
std::string fmt_fixed(double v, int decimals);

// A user's string (run name, tag, note, path) for line-oriented output, unambiguous and on one
// line: printed as is when it is "plain" (valid UTF-8, no control or bidi-override characters,
// no '"' or '\\', no leading/trailing space, none of `separators`), else in double quotes with
// C escapes: \" \\ \n \t \r, \xNN for other control bytes and invalid UTF-8, \u{NNNN} for
// C1 controls and bidi overrides. A displayed value starting with '"' is therefore always quoted.
// `moe runs list --json` has the exact bytes.
std::string display_text(std::string_view s, std::string_view separators = {});
// Free text (a message, a reason) on one line: control characters, invalid UTF-8 and the code
// points above as escapes (\n, \xNN, \u{NNNN}); nothing is quoted.
std::string one_line(std::string_view s);
// `s` cut to at most `width` characters (code points; "…" marks a cut) and padded to `width`.
std::string fit_column(const std::string& s, size_t width);

}  // namespace moe::cli
