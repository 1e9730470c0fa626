// Argument parsing for the `moe` subcommands (see cli_args.h).
#include "cli_args.h"

#include <algorithm>

#include "text_suggest.h"

namespace moe::cli {

Args::Args(std::string command, const std::vector<std::string>& argv, const std::vector<std::string>& flags,
           const std::vector<std::string>& options, const std::map<std::string, std::string>& aliases)
    : command_(std::move(command)) {
  auto known = [](const std::vector<std::string>& list, const std::string& s) {
    return std::find(list.begin(), list.end(), s) != list.end();
  };
  bool only_positionals = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string a = argv[i];
    if (only_positionals || a.size() < 2 || a[0] != '-') {
      positionals_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positionals = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      help_ = true;
      continue;
    }
    std::string inline_value;
    bool has_inline = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_inline = true;
    }
    if (auto al = aliases.find(a); al != aliases.end()) a = al->second;
    if (known(flags, a)) {
      if (has_inline) throw UsageError{a + " takes no value"};
      flags_[a] = true;
    } else if (known(options, a)) {
      if (!has_inline) {
        if (i + 1 >= argv.size()) throw UsageError{a + " needs a value"};
        inline_value = argv[++i];
      }
      values_[a].push_back(inline_value);
    } else {
      std::vector<std::string> all = flags;
      all.insert(all.end(), options.begin(), options.end());
      all.push_back("--help");
      std::string hint = closest_match(a, all);
      throw UsageError{"unknown option '" + a + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)")};
    }
  }
}

bool Args::flag(const std::string& name) const { return flags_.count(name) > 0; }

std::vector<std::string> Args::values(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::value(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() || it->second.empty() ? fallback : it->second.back();
}

void Args::expect_positionals(size_t n, const std::string& what) const {
  if (positionals_.size() < n) throw UsageError{"missing " + what};
  if (positionals_.size() > n) throw UsageError{"unexpected argument '" + positionals_[n] + "'"};
}

}  // namespace moe::cli
