// POSIX single-quote shell quoting.
#include "shell_quote.h"

#include "error.h"

namespace moe::remote {

std::string shell_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  for (char c : s) {
    if (c == '\0') throw moe::Error("shell argument contains a NUL byte");
    if (c == '\'') out += "'\\''";  // close, escaped quote, reopen
    else out += c;
  }
  out += '\'';
  return out;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (i) out += ' ';
    out += shell_quote(argv[i]);
  }
  return out;
}

}  // namespace moe::remote
