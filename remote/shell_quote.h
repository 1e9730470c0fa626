#pragma once
// POSIX shell quoting for every command sent to a node. A remote command is one string parsed by
// the user's login shell (sh/bash/zsh/dash), so each argument is wrapped in single quotes, with an
// embedded ' written as '\''. Nothing inside single quotes is special ($, `, ;, \, newline).
#include <string>
#include <string_view>
#include <vector>

namespace moe::remote {

// One argument, quoted so the shell yields exactly `s` (also for "", newlines, non-ASCII bytes).
// Throws moe::Error for a NUL byte, which no shell argument can hold.
std::string shell_quote(std::string_view s);
// argv → "'a' 'b c'" (each quoted, space separated).
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace moe::remote
