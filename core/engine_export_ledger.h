#pragma once
// The bookkeeping every engine export shares (engine_export.h): which spec paths it read, and
// which of them it could not map, with the reason. Internal to core's export code.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine_export.h"

namespace moe {

class ExportLedger {
 public:
  explicit ExportLedger(const JobSpec& spec) : json_(spec_to_json(spec)) {}

  // The spec paths a mapping read ("model.moe.top_k"; "cluster.nodes" for a whole array).
  void use(std::initializer_list<const char*> paths) {
    for (const char* p : paths) accounted_.emplace_back(p);
  }
  // A spec setting the engine has no counterpart for, with its value and what the export does.
  void unmapped(const std::string& path, std::string why) {
    accounted_.push_back(path);
    unmapped_.push_back({path, value_text(path), std::move(why)});
  }
  const std::vector<UnmappedSetting>& unmapped_settings() const { return unmapped_; }

  EngineExport finish(std::string engine, std::string text) && {
    return EngineExport{std::move(engine), std::move(text), std::move(unmapped_), std::move(accounted_)};
  }

 private:
  std::string value_text(const std::string& path) const {
    const nlohmann::json* at = &json_;
    size_t start = 0;
    while (start <= path.size()) {
      const size_t dot = path.find('.', start);
      const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!at->is_object() || !at->contains(key)) return "?";
      at = &(*at)[key];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return at->dump();
  }

  nlohmann::json json_;
  std::vector<std::string> accounted_;
  std::vector<UnmappedSetting> unmapped_;
};

}  // namespace moe
