// libFuzzer target: the spec parser, --set overrides, validation, the memory rule and plan must
// turn any input into a result or one moe::Error, never crash, hang or trip a sanitizer. Input: a
// spec text; a first line "SET path=value" instead applies that override to the default spec.
// (Hugging Face config.json has its own target, hf_config_fuzzer.) See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cost_model.h"
#include "error.h"
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

void plan_if_valid(const moe::JobSpec& spec) {
  auto ds = moe::validate_spec(spec, &profile());
  if (!moe::has_errors(moe::validate_spec(spec))) (void)moe::plan_to_json(moe::plan_job(spec, profile())).dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    if (text.rfind("SET ", 0) == 0) {
      auto nl = text.find('\n');
      std::string assignment = text.substr(4, nl == std::string::npos ? std::string::npos : nl - 4);
      plan_if_valid(moe::parse_spec("{}", {assignment}, "<fuzz>"));
      return 0;
    }
    plan_if_valid(moe::parse_spec(text, {}, "<fuzz>"));
  } catch (const moe::Error&) {
  }
  return 0;
}
