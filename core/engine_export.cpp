// `moe export`'s dispatch and the spec's leaf paths (engine_export.h).
#include "engine_export.h"

#include <functional>

#include "error.h"
#include "spec_validation.h"
#include "text_suggest.h"

namespace moe {

const std::vector<std::string>& export_engines() {
  static const std::vector<std::string> engines = {"megatron", "deepspeed"};
  return engines;
}

EngineExport export_spec(const std::string& engine, const JobSpec& spec) {
  for (const auto& d : validate_spec(spec))  // an inconsistent design would export inconsistent flags
    if (d.severity == Severity::error) throw Error("the spec is invalid: " + d.path + ": " + d.message);
  if (engine == "megatron") return export_megatron(spec);
  if (engine == "deepspeed") return export_deepspeed(spec);
  const std::string hint = closest_match(engine, export_engines());
  throw Error("unknown engine '" + engine + "' (megatron or deepspeed)" +
              (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
}

std::vector<std::string> spec_leaf_paths(const JobSpec& spec) {
  std::vector<std::string> paths;
  const std::function<void(const nlohmann::json&, const std::string&)> walk = [&](const nlohmann::json& j,
                                                                                   const std::string& prefix) {
    if (!j.is_object()) {
      paths.push_back(prefix);
      return;
    }
    for (const auto& [key, value] : j.items()) walk(value, prefix.empty() ? key : prefix + "." + key);
  };
  walk(spec_to_json(spec), "");
  return paths;
}

}  // namespace moe
