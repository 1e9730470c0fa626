// Formats a failed library call as one line (see error_format.h).
#include "error_format.h"

#include <cstring>

namespace moe::rt::cuda {

std::string format_call_error(const char* library, long code, const char* code_name, const char* detail,
                              const char* file, int line, const char* call) {
  // Keep the path from the repository folder on so messages stay short and stable.
  const char* shown = file ? file : "?";
  for (const char* root : {"/runtime/", "/tests/", "/bench/"})
    if (const char* p = file ? std::strstr(file, root) : nullptr) { shown = p + 1; break; }
  std::string msg = std::string(library) + " error " + std::to_string(code);
  if (code_name && *code_name) {
    msg += " (" + std::string(code_name);
    if (detail && *detail) msg += ": " + std::string(detail);
    msg += ")";
  }
  msg += " at " + std::string(shown) + ":" + std::to_string(line) + " in " + (call ? call : "?");
  return msg;
}

}  // namespace moe::rt::cuda
