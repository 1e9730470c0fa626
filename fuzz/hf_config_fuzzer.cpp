// libFuzzer target: a Hugging Face config.json through both of its readers —
//   core:    parse_json_text → import_hf_config → validation and plan   (`moe import-hf`)
//   runtime: apply_hf_config onto a spec → validation                    (a checkpoint's config.json)
// and, for a valid spec, the checkpoint round trip of the runtime: apply_hf_config(hf_config_from_spec(S))
// must give S back (trainer resume compares the models). Anything but a result or one moe::Error
// is a finding. See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cost_model.h"
#include "error.h"
#include "fuzz_util.h"
#include "hf_config.h"
#include "hf_import.h"
#include "job_spec.h"
#include "spec_validation.h"

namespace {

const moe::HardwareProfile& profile() {
  static const moe::HardwareProfile hw = [] {
    moe::HardwareProfile h;
    h.name = "fuzz";
    h.memory_bytes = 80.0 * (1 << 30);
    h.peak_flops_bf16 = 1e15;
    h.peak_flops_fp32 = 6e13;
    h.intra_node_bw = 4.5e11;
    h.inter_node_bw = 5e10;
    return h;
  }();
  return hw;
}

bool valid(const moe::JobSpec& spec) { return !moe::has_errors(moe::validate_spec(spec)); }

// The runtime writes config.json with hf_config_from_spec and reads it back with apply_hf_config
// onto the trainer_state's spec: the model must survive unchanged.
void check_round_trip(const moe::JobSpec& spec) {
  moe::JobSpec back = spec;
  moe::rt::apply_hf_config(moe::rt::hf_config_from_spec(spec), back, "<round trip>");
  const auto a = moe::spec_to_json(spec), b = moe::spec_to_json(back);
  if (a != b) moe::fuzz::fail("config.json round trip changed the spec:\n" + a.dump() + "\n" + b.dump());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json config;
  try {
    config = moe::parse_json_text(text, "<fuzz>");
  } catch (const moe::Error&) {
    return 0;
  }
  try {
    auto imported = moe::import_hf_config(config, "<fuzz>");
    (void)moe::validate_spec(imported.spec, &profile());
    if (valid(imported.spec)) {
      (void)moe::plan_to_json(moe::plan_job(imported.spec, profile())).dump();
      check_round_trip(imported.spec);
    }
  } catch (const moe::Error&) {
  }
  try {
    moe::JobSpec spec;  // the defaults, as load_checkpoint starts from without trainer_state's spec
    moe::rt::apply_hf_config(config, spec, "<fuzz>");
    if (valid(spec)) check_round_trip(spec);
  } catch (const moe::Error&) {
  }
  return 0;
}
