#pragma once
// A small argument parser shared by the subcommands: positionals, flags, options with a value
// (repeatable), "--opt=value" and "--opt value" forms, and one-line usage errors.
#include <map>
#include <string>
#include <vector>

namespace moe::cli {

// A usage mistake: the command prints the message and "see moe CMD --help", exit code 2.
struct UsageError {
  std::string message;
};

class Args {
 public:
  // `flags`: options without a value; `options`: options that take one (may repeat).
  // Short aliases map to long names, e.g. {"-o", "--output"}.
  Args(std::string command, const std::vector<std::string>& argv, const std::vector<std::string>& flags,
       const std::vector<std::string>& options, const std::map<std::string, std::string>& aliases = {});

  bool help() const { return help_; }
  bool flag(const std::string& name) const;
  std::vector<std::string> values(const std::string& name) const;  // every occurrence, in order
  std::string value(const std::string& name, const std::string& fallback = "") const;  // the last one
  const std::vector<std::string>& positionals() const { return positionals_; }
  // Exactly `n` positionals, else a UsageError naming `what`.
  void expect_positionals(size_t n, const std::string& what) const;

 private:
  std::string command_;
  bool help_ = false;
  std::vector<std::string> positionals_;
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, bool> flags_;
};

}  // namespace moe::cli
