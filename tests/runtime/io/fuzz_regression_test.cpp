// Regression tests for the findings of the libFuzzer targets hf_config_fuzzer, safetensors_fuzzer
// and checkpoint_fuzzer (docs/fuzzing.md). Every saved input under data/fuzz/ is fed through the
// code path of its fuzzer and must end in a result or one one-line moe::Error; the named tests pin
// the message of each fixed finding.
#include <algorithm>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "checkpoint.h"
#include "hf_config.h"
#include "hf_import.h"
#include "safetensors.h"
#include "spec_validation.h"
#include "test_util.h"

namespace moe::rt {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::TempDir;

const fs::path kData = MOE_IO_FUZZ_DATA;

std::vector<fs::path> inputs(const std::string& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(kData / dir)) return files;  // no finding of that fuzzer kept yet
  for (const auto& e : fs::directory_iterator(kData / dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Runs `f`; passes when it returns or throws one moe::Error of one line.
template <typename F>
void expect_result_or_error(const fs::path& input, F&& f) {
  try {
    f();
  } catch (const moe::Error& e) {
    EXPECT_EQ(std::string_view(e.what()).find('\n'), std::string_view::npos) << input << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << input << ": not a moe::Error: " << e.what();
  }
}

// hf_config_fuzzer's check: a checkpoint written for `spec` (config.json from hf_config_from_spec)
// reads back, onto the trainer_state's spec, as the same spec.
void expect_round_trip(const JobSpec& spec) {
  JobSpec back = spec;
  apply_hf_config(hf_config_from_spec(spec), back, "config.json");
  EXPECT_EQ(spec_to_json(back), spec_to_json(spec));
}

// checkpoint_fuzzer's input format: config.json, trainer_state.json, model.safetensors,
// optimizer.safetensors and latest, separated by "\n--8<--\n"; with a fifth part the files go to
// ROOT/step-00000001 and the part becomes ROOT/latest. Returns the directory to load.
fs::path unpack_checkpoint(const std::string& bytes, const fs::path& root) {
  constexpr std::string_view sep = "\n--8<--\n";
  std::vector<std::string> parts;
  std::string_view in = bytes;
  while (parts.size() < 4) {
    const size_t at = in.find(sep);
    if (at == std::string_view::npos) break;
    parts.emplace_back(in.substr(0, at));
    in.remove_prefix(at + sep.size());
  }
  parts.emplace_back(in);
  const fs::path dir = parts.size() == 5 ? root / "step-00000001" : root;
  fs::create_directories(dir);
  const char* names[] = {"config.json", "trainer_state.json", "model.safetensors", "optimizer.safetensors"};
  for (size_t i = 0; i < parts.size() && i < 4; ++i) test::write_file(dir / names[i], parts[i]);
  if (parts.size() == 5) test::write_file(root / "latest", parts[4]);
  return root;
}

TEST(FuzzRegression, HfConfigInputsGiveASpecOrOneLineError) {
  for (const fs::path& input : inputs("hf-config")) {
    SCOPED_TRACE(input.string());
    const std::string text = test::read_file(input);
    expect_result_or_error(input, [&] {
      JobSpec spec;
      apply_hf_config(parse_json_text(text, input.string()), spec, input.string());
      if (!has_errors(validate_spec(spec))) expect_round_trip(spec);
    });
    expect_result_or_error(input, [&] {
      const JobSpec spec = import_hf_config(parse_json_text(text, input.string()), input.string()).spec;
      if (!has_errors(validate_spec(spec))) expect_round_trip(spec);
    });
  }
}

// Found by hf_config_fuzzer: "num_attention_heads": 0 divided by zero (SIGFPE) in apply_hf_config
// while normalising head_dim. Now the spec is read and validation names the field.
TEST(FuzzRegression, HfConfigWithZeroHeadsIsLeftToValidation) {
  const fs::path input = kData / "hf-config/div-zero-num_attention_heads.json";
  JobSpec spec;
  apply_hf_config(parse_json_text(test::read_file(input), input.string()), spec, input.string());
  EXPECT_EQ(spec.model.n_heads, 0);
  const auto diagnostics = validate_spec(spec);
  EXPECT_TRUE(std::any_of(diagnostics.begin(), diagnostics.end(),
                          [](const Diagnostic& d) { return d.path == "model.n_heads"; }));
}

// Found by hf_config_fuzzer: a float beyond int64 ("vocab_size": 1.5e39) was converted to int64_t
// by nlohmann::json, undefined behaviour (UBSan: float-cast-overflow).
TEST(FuzzRegression, HfConfigIntegerKeysRejectFloatsOutOfRange) {
  const fs::path input = kData / "hf-config/float-to-int-vocab_size.json";
  expect_error([&] { JobSpec s; apply_hf_config(parse_json_text(test::read_file(input), "config.json"), s, "config.json"); },
               {"config.json", "vocab_size", "must be an integer"});
  JobSpec s;
  expect_error([&] { apply_hf_config({{"vocab_size", 18446744073709551615ull}}, s, "c.json"); }, {"c.json", "vocab_size", "out of range"});
  expect_error([&] { apply_hf_config({{"vocab_size", 2.5}}, s, "c.json"); }, {"c.json", "vocab_size", "must be an integer"});
  // An integral float is an integer, as in core's importer (some configs write 4096.0).
  EXPECT_THROW(apply_hf_config({{"vocab_size", 256.0}}, s, "c.json"), moe::Error);  // next key missing
  EXPECT_EQ(s.model.vocab_size, 256);
}

// Found by hf_config_fuzzer's round-trip check on its seeds: a spec imported from Qwen2-MoE has
// model.d_ff (its dense MLP width) without dense layers, and one from Qwen3-MoE an explicit
// head_dim equal to d_model / n_heads. A checkpoint's config.json lost both, so `--resume` refused
// the checkpoint ("the checkpoint's model differs").
TEST(FuzzRegression, HfConfigRoundTripKeepsImportedDenseWidthAndHeadDim) {
  for (const char* name : {"round-trip-qwen2-d_ff.json", "round-trip-qwen3-head_dim.json"}) {
    SCOPED_TRACE(name);
    const fs::path input = kData / "hf-config" / name;
    const JobSpec spec = import_hf_config(parse_json_text(test::read_file(input), input.string()), input.string()).spec;
    ASSERT_FALSE(has_errors(validate_spec(spec)));
    expect_round_trip(spec);
  }
}

TEST(FuzzRegression, SafetensorsInputsReadOrFailInOneLine) {
  for (const fs::path& input : inputs("safetensors")) {
    SCOPED_TRACE(input.string());
    expect_result_or_error(input, [&] { (void)read_safetensors(input); });
  }
}

TEST(FuzzRegression, CheckpointInputsLoadOrFailInOneLine) {
  for (const fs::path& input : inputs("checkpoint")) {
    SCOPED_TRACE(input.string());
    TempDir dir;
    const fs::path root = unpack_checkpoint(test::read_file(input), dir / "ck");
    for (bool with_optimizer : {false, true}) {
      expect_result_or_error(input, [&] {
        const LoadedCheckpoint ck = load_checkpoint(root, with_optimizer);
        (void)validate_spec(ck.spec);
        if (ck.trainer_state.contains("rng") && ck.trainer_state["rng"].is_string())
          (void)rng_from_string(ck.trainer_state["rng"].get<std::string>(), "trainer_state.json");
      });
    }
  }
}

// Found by review while writing safetensors_fuzzer and confirmed with its binary (600 s of fuzzing
// did not reach them): the element count of a shape was an unchecked int64 product. [2^32, 2^32]
// overflowed (UBSan: signed-integer-overflow); [2^62] made the byte count wrap to 0, matching
// data_offsets [0, 0], and resize(2^62) threw std::length_error; a dimension above 2^63 - 1
// became negative. All three are now "corrupt shape".
TEST(FuzzRegression, SafetensorsShapesThatOverflowAreCorrupt) {
  for (const char* name : {"shape-product-overflows-int64", "shape-bytes-wrap-to-zero", "shape-dim-above-int64"}) {
    SCOPED_TRACE(name);
    expect_error([&] { read_safetensors(kData / "safetensors" / name); }, {name, "tensor a", "corrupt shape"});
  }
  // The largest count whose byte size fits in 64 bits is checked against the data, not refused.
  TempDir dir;
  const std::string header = R"({"a":{"dtype":"F32","shape":[2,2305843009213693951],"data_offsets":[0,0]}})";
  const uint64_t size = header.size();
  test::write_file(dir / "big.safetensors", std::string(reinterpret_cast<const char*>(&size), 8) + header);
  expect_error([&] { read_safetensors(dir / "big.safetensors"); }, {"tensor a", "corrupt (shape [2, 2305843009213693951] needs 18446744073709551608 bytes"});
}

// Found by checkpoint_fuzzer: a `latest` naming "\n8" put a newline into the error message (the
// one-line rule); control characters, "." and ".." are now refused as checkpoint names.
TEST(FuzzRegression, CheckpointLatestWithControlCharactersIsCorrupt) {
  TempDir dir;
  const fs::path root = unpack_checkpoint(test::read_file(kData / "checkpoint/latest-newline-in-name"), dir / "ck");
  expect_error([&] { load_checkpoint(root, false); }, {"latest", "corrupt (no checkpoint name)"});
  for (const char* name : {"..\n", ".", "step\t1"}) {
    test::write_file(root / "latest", name);
    expect_error([&] { load_checkpoint(root, false); }, {"latest", "corrupt (no checkpoint name)"});
  }
}

// The stack overflow metrics_fuzzer's review found (tests/store/fuzz_regression_test.cpp) reaches
// the checkpoint readers too: a safetensors header or a config.json nesting 200 000 arrays overflowed
// the stack when a message dumped the value. Both are now one-line errors.
TEST(FuzzRegression, DeeplyNestedJsonInACheckpointIsAnError) {
  const int n = 200000;
  TempDir dir;
  std::string header = "{\"a\":{\"dtype\":" + std::string(n, '[') + std::string(n, ']') + "}}";
  const uint64_t size = header.size();
  test::write_file(dir / "deep.safetensors", std::string(reinterpret_cast<const char*>(&size), 8) + header);
  expect_error([&] { read_safetensors(dir / "deep.safetensors"); }, {"deep.safetensors", "nests deeper than 512 levels"});
  const std::string config = "{\"vocab_size\":" + std::string(n, '[') + std::string(n, ']') + "}";
  expect_error([&] { parse_json_text(config, "config.json"); }, {"config.json", "nested deeper than 512 levels"});
  EXPECT_NO_THROW(parse_json_text("{\"a\":\"]]]\\\"[[[[\",\"b\":" + std::string(511, '[') + std::string(511, ']') + "}", "x"));
}

}  // namespace
}  // namespace moe::rt
