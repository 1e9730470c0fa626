// libFuzzer target: loading a checkpoint directory (runtime/io/checkpoint.h), the way `moe-runtime
// eval --checkpoint` and `train --resume` start: resolve_checkpoint_dir → config.json and
// trainer_state.json (parse_json_text, the spec inside, apply_hf_config) → model.safetensors and
// optimizer.safetensors (read_safetensors) → the RNG state (rng_from_string) and the spec's
// validation. No mocks: the input is split into the real files of a real directory on tmpfs.
//
// Input: up to five parts separated by the line "\n--8<--\n":
//   config.json, trainer_state.json, model.safetensors, optimizer.safetensors, latest
// A missing part is a missing file. With a fifth part the files go to ROOT/step-00000001/, the part
// is written as ROOT/latest and ROOT is loaded (the --resume ROOT form); else the directory itself.
// The only acceptable failure is one moe::Error. See docs/fuzzing.md and fuzz/make-checkpoint-seed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint.h"
#include "error.h"
#include "fuzz_util.h"
#include "spec_validation.h"

namespace fs = std::filesystem;
using namespace moe::rt;

namespace {

constexpr std::string_view kSeparator = "\n--8<--\n";

std::vector<std::string_view> split_parts(std::string_view in) {
  std::vector<std::string_view> parts;
  while (parts.size() < 4) {
    size_t at = in.find(kSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(in.substr(0, at));
    in.remove_prefix(at + kSeparator.size());
  }
  parts.push_back(in);
  return parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = split_parts(std::string_view(reinterpret_cast<const char*>(data), size));
  const fs::path root = moe::fuzz::scratch_dir() / "ck";
  std::error_code ec;
  fs::remove_all(root, ec);
  const bool via_latest = parts.size() == 5;
  const fs::path dir = via_latest ? root / "step-00000001" : root;
  fs::create_directories(dir);
  static const char* const names[] = {"config.json", "trainer_state.json", "model.safetensors", "optimizer.safetensors"};
  for (size_t i = 0; i < parts.size() && i < 4; ++i) moe::fuzz::write_bytes(dir / names[i], parts[i]);
  if (via_latest) moe::fuzz::write_bytes(root / "latest", parts[4]);

  for (bool with_optimizer : {false, true}) {
    try {
      LoadedCheckpoint ck = load_checkpoint(root, with_optimizer);
      // What the runtime does next with it, short of building the model.
      (void)moe::validate_spec(ck.spec);
      (void)moe::spec_to_json(ck.spec).dump();
      if (ck.trainer_state.contains("rng") && ck.trainer_state["rng"].is_string())
        (void)rng_from_string(ck.trainer_state["rng"].get<std::string>(), "trainer_state.json");
    } catch (const moe::Error& e) {
      if (std::string_view(e.what()).find('\n') != std::string_view::npos)
        moe::fuzz::fail(std::string("multi-line error: ") + e.what());
    }
  }
  return 0;
}
