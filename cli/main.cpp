// `moe`: the command-line face of core. Dispatches to the subcommands of commands.h; every
// failure becomes one line on stderr and a non-zero exit (1: the input is wrong, 2: usage).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli_args.h"
#include "cli_format.h"
#include "commands.h"
#include "error.h"
#include "text_suggest.h"

namespace {

using moe::cli::Command;

const std::vector<Command>& command_table() {
#define MOE_TABLE_ROW(fn, name, summary) Command{name, summary, &moe::cli::cmd_##fn},
  static const std::vector<Command> table = {MOE_COMMAND_TABLE(MOE_TABLE_ROW)};
#undef MOE_TABLE_ROW
  return table;
}

void usage(std::FILE* out) {
  std::fprintf(out, "usage: moe COMMAND [ARGS…]   (moe COMMAND --help for its options)\n\ncommands:\n");
  for (const auto& c : command_table()) std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    usage(stderr);
    return 2;
  }
  const std::string name = args[0];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(stdout);
    return 0;
  }
  std::vector<std::string> names;
  for (const auto& c : command_table()) {
    names.push_back(c.name);
    if (name != c.name) continue;
    std::vector<std::string> rest(args.begin() + 1, args.end());
    try {
      return c.run(rest);
    } catch (const moe::cli::UsageError& e) {
      // One line even when the message quotes a hostile argument (a name with a newline).
      std::fprintf(stderr, "moe %s: %s (see moe %s --help)\n", c.name, moe::cli::one_line(e.message).c_str(), c.name);
      return 2;
    } catch (const moe::Error& e) {
      std::fprintf(stderr, "moe %s: %s\n", c.name, moe::cli::one_line(e.what()).c_str());
      return 1;
    } catch (const std::exception& e) {  // a bug, still one line and no abort
      std::fprintf(stderr, "moe %s: internal error: %s\n", c.name, moe::cli::one_line(e.what()).c_str());
      return 3;
    }
  }
  std::string hint = moe::closest_match(name, names);
  std::fprintf(stderr, "moe: unknown command '%s'%s (see moe --help)\n", moe::cli::one_line(name).c_str(),
               hint.empty() ? "" : (" (did you mean '" + hint + "'?)").c_str());
  return 2;
}
