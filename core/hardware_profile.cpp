// Loading and looking up hardware profiles (resources/hardware.json).
#include "hardware_profile.h"

#include <cmath>
#include <mutex>

#include "error.h"
#include "job_spec.h"
#include "resources.h"
#include "text_suggest.h"

namespace moe {

namespace {

using json = nlohmann::json;

double number(const json& p, const std::string& key, const std::string& at, bool required, double fallback,
              double max) {
  if (!p.contains(key)) {
    if (required) throw Error(at + "." + key + ": missing");
    return fallback;
  }
  const json& v = p[key];
  if (!v.is_number()) throw Error(at + "." + key + ": expected a number");
  double x = v.get<double>();
  if (!std::isfinite(x) || x <= 0) throw Error(at + "." + key + ": must be positive");
  if (x > max) throw Error(at + "." + key + ": " + v.dump() + " is out of range (at most " + json(max).dump() + ")");
  return x;
}

const std::vector<std::string> kKeys = {"kind", "memory_gib", "peak_tflops_bf16", "peak_tflops_fp32", "peak_tflops_fp8", "sms",
                                        "intra_node_gb_s", "inter_node_gb_s", "efficiency",
                                        "comm_efficiency", "intra_node_latency_us", "inter_node_latency_us",
                                        "source", "comment"};

}  // namespace

std::vector<HardwareProfile> parse_hardware_profiles(const json& doc, const std::string& origin) {
  if (!doc.is_object() || !doc.contains("profiles") || !doc["profiles"].is_object())
    throw Error(origin + ": expected an object with a \"profiles\" object");
  std::vector<HardwareProfile> out;
  for (auto it = doc["profiles"].begin(); it != doc["profiles"].end(); ++it) {
    const std::string at = origin + ": profiles." + it.key();
    const json& p = it.value();
    if (!p.is_object()) throw Error(at + ": expected an object");
    for (auto k = p.begin(); k != p.end(); ++k) {
      bool known = false;
      for (const auto& key : kKeys) known |= key == k.key();
      if (!known) {
        std::string hint = closest_match(k.key(), kKeys);
        throw Error(at + "." + k.key() + ": unknown key" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
      }
    }
    HardwareProfile h;
    h.name = it.key();
    h.kind = p.value("kind", std::string("gpu"));
    if (h.kind != "gpu" && h.kind != "cpu") throw Error(at + ".kind: '" + h.kind + "' is not one of: gpu, cpu");
    h.memory_bytes = number(p, "memory_gib", at, true, 0, 1e6) * 1024.0 * 1024.0 * 1024.0;
    h.peak_flops_bf16 = number(p, "peak_tflops_bf16", at, true, 0, 1e6) * 1e12;
    h.peak_flops_fp32 = number(p, "peak_tflops_fp32", at, true, 0, 1e6) * 1e12;
    h.peak_flops_fp8 = number(p, "peak_tflops_fp8", at, false, 0, 1e6) * 1e12;
    h.sms = number(p, "sms", at, false, 0, 1e5);
    h.intra_node_bw = number(p, "intra_node_gb_s", at, true, 0, 1e6) * 1e9;
    h.inter_node_bw = number(p, "inter_node_gb_s", at, true, 0, 1e6) * 1e9;
    h.efficiency = number(p, "efficiency", at, false, 0.5, 1.0);
    h.comm_efficiency = number(p, "comm_efficiency", at, false, 0.8, 1.0);
    h.intra_node_latency = number(p, "intra_node_latency_us", at, false, 2.0, 1e6) * 1e-6;
    h.inter_node_latency = number(p, "inter_node_latency_us", at, false, 5.0, 1e6) * 1e-6;
    if (p.contains("source") && !p["source"].is_string()) throw Error(at + ".source: expected a string");
    h.source = p.value("source", std::string());
    out.push_back(std::move(h));
  }
  if (out.empty()) throw Error(origin + ": lists no profile");
  return out;
}

std::vector<HardwareProfile> load_hardware_profiles(const std::filesystem::path& file) {
  const std::string text = read_text_file(file);
  return parse_hardware_profiles(parse_json_text(text, file.string()), file.string());
}

const std::vector<HardwareProfile>& builtin_hardware_profiles() {
  // Read once: the studio recomputes the plan on every keystroke.
  static std::once_flag once;
  static std::vector<HardwareProfile> profiles;
  static std::string failure;
  std::call_once(once, [] {
    try {
      profiles = load_hardware_profiles(resources_dir() / "hardware.json");
    } catch (const Error& e) {
      failure = e.what();
    }
  });
  if (!failure.empty()) throw Error(failure);
  return profiles;
}

const HardwareProfile& find_hardware(const std::vector<HardwareProfile>& profiles, const std::string& name) {
  std::vector<std::string> names;
  for (const auto& p : profiles) {
    if (p.name == name) return p;
    names.push_back(p.name);
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  std::string hint = closest_match(name, names);
  throw Error("cluster.hardware: unknown hardware profile '" + name + "'" +
              (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; known: " + list);
}

}  // namespace moe
