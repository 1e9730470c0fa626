// Megatron-LM training logs (megatron_log_reader.h).
#include "megatron_log_reader.h"

#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include "error.h"
#include "job_spec.h"

namespace moe::store {
namespace {

const std::regex& iteration_re() {
  static const std::regex re(R"(\biteration\s+(\d+)\s*/\s*(\d+)\s*\|)");
  return re;
}
const std::regex& validation_re() {
  static const std::regex re(R"(validation loss at iteration\s+(\d+)\s*\|)");
  return re;
}
const std::regex& argument_re() {
  static const std::regex re(R"(^\s+([A-Za-z_][A-Za-z0-9_]*) \.+ (.*?)\s*$)");
  return re;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// "key: value" fields between '|'.
std::vector<std::pair<std::string, std::string>> fields_of(const std::string& line) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream ss(line);
  for (std::string part; std::getline(ss, part, '|');) {
    const size_t colon = part.rfind(':');
    if (colon == std::string::npos) continue;
    out.emplace_back(trim(part.substr(0, colon)), trim(part.substr(colon + 1)));
  }
  return out;
}

double number(const std::string& v, const std::string& where, const std::string& key) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0') throw Error(where + ": '" + key + "' is not a number: '" + v + "'");
  return d;
}

}  // namespace

// An iteration line with a loss, or the arguments banner Megatron prints at start-up (a job's
// first iteration line may come after megabytes of start-up output; the banner comes first).
bool looks_like_megatron_log(const std::string& text) {
  static const std::regex banner(R"(^\s*-{8,} arguments -{8,}\s*$)");
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    if (std::regex_search(line, iteration_re()) && line.find("loss") != std::string::npos) return true;
    if (std::regex_match(line, banner)) return true;
  }
  return false;
}

MegatronLog parse_megatron_log(const std::string& text, const std::string& origin) {
  MegatronLog log;
  std::set<std::string> unmapped;
  std::stringstream ss(text);
  int64_t line_no = 0;
  bool in_arguments = false;
  for (std::string line; std::getline(ss, line);) {
    ++line_no;
    const std::string where = origin + ":" + std::to_string(line_no);
    if (line.find("-- arguments --") != std::string::npos) {
      in_arguments = true;
      continue;
    }
    if (line.find("end of arguments") != std::string::npos) {
      in_arguments = false;
      continue;
    }
    std::smatch m;
    if (in_arguments && std::regex_match(line, m, argument_re())) {
      log.arguments[m[1]] = m[2];
      continue;
    }
    if (std::regex_search(line, m, validation_re())) {
      const int64_t step = std::atoll(m[1].str().c_str());
      for (const auto& [key, value] : fields_of(m.suffix().str())) {
        if (key != "lm loss value") continue;
        const double v = number(value, where, key);
        bool placed = false;
        for (auto it = log.steps.rbegin(); it != log.steps.rend() && !placed; ++it)
          if (it->step == step) it->val_loss = v, placed = true;
        if (!placed) unmapped.insert("validation at iteration " + std::to_string(step) + " (no training line)");
      }
      continue;
    }
    if (!std::regex_search(line, m, iteration_re())) continue;
    metrics::StepRecord s;
    s.step = std::atoll(m[1].str().c_str());
    bool has_loss = false;
    int64_t batch = 0;
    for (const auto& [key, value] : fields_of(m.suffix().str())) {
      if (key == "lm loss") s.loss = number(value, where, key), has_loss = true;
      else if (key == "learning rate") s.lr = number(value, where, key);
      else if (key == "elapsed time per iteration (ms)") s.step_ms = number(value, where, key);
      else if (key == "grad norm") s.grad_norm = number(value, where, key);
      else if (key == "load_balancing_loss") s.aux_loss = number(value, where, key);
      else if (key == "z_loss") s.z_loss = number(value, where, key);
      else if (key == "global batch size") batch = static_cast<int64_t>(number(value, where, key));
      else unmapped.insert(key);
    }
    if (!has_loss) {
      unmapped.insert("iteration lines without 'lm loss' (skipped iterations)");
      continue;
    }
    const auto seq = log.arguments.find("seq_length");
    if (batch > 0 && seq != log.arguments.end()) s.tokens = batch * std::atoll(seq->second.c_str());
    if (s.tokens > 0 && s.step_ms > 0) s.tokens_per_s = static_cast<double>(s.tokens) / (s.step_ms / 1000.0);
    log.steps.push_back(s);
  }
  log.unmapped.assign(unmapped.begin(), unmapped.end());
  return log;
}

MegatronLog read_megatron_log(const std::string& path) { return parse_megatron_log(read_text_file(path), path); }

}  // namespace moe::store
