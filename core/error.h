#pragma once
// The one exception type of core, runtime and remote. Its message is a single line that names
// the field, file, host or rank at fault, so a command can print it as is and exit non-zero.
#include <stdexcept>
#include <string>

namespace moe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace moe
