// Other engines' runs: TensorBoard event files written by the real torch.utils.tensorboard and
// tensorboard (data/external/make_fixtures.py), and a Megatron-LM log, read into step records whose
// values match what the writers were given (data/external/expected.json).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "error.h"
#include "external_run.h"
#include "job_spec.h"
#include "megatron_log_reader.h"
#include "record_codec.h"
#include "store_test_util.h"
#include "tfevents_reader.h"

namespace moe::store {
namespace {

std::string fixture(const std::string& name) { return std::string(MOE_EXTERNAL_DATA) + "/" + name; }
nlohmann::json expected(const std::string& name) {
  return nlohmann::json::parse(read_text_file(fixture("expected.json")))[name];
}

}  // namespace

TEST(ExternalImport, Crc32cMatchesTheStandardCheckValue) {
  const std::string s = "123456789";  // RFC 3720's CRC-32C check value
  EXPECT_EQ(crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xE3069283u);
}

TEST(ExternalImport, MegatronEventFileFromTorchSummaryWriter) {
  const ExternalRun run = read_external_run(fixture("megatron.tfevents"), "tensorboard");
  const auto want = expected("megatron.tfevents");
  ASSERT_EQ(run.steps.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    const auto& s = run.steps[i];
    EXPECT_EQ(s.step, want[i]["step"].get<int64_t>());
    EXPECT_EQ(s.loss, want[i]["loss"].get<double>());  // float32 in the file: exact
    EXPECT_EQ(s.lr, want[i]["lr"].get<double>());
    ASSERT_TRUE(s.grad_norm.has_value());
    EXPECT_EQ(*s.grad_norm, want[i]["grad_norm"].get<double>());
    EXPECT_DOUBLE_EQ(s.step_ms, want[i]["step_ms"].get<double>());
    EXPECT_EQ(s.aux_loss, want[i]["aux_loss"].get<double>());
    if (want[i]["val_loss"].is_null()) {
      EXPECT_FALSE(s.val_loss.has_value());
    } else {
      ASSERT_TRUE(s.val_loss.has_value());
      EXPECT_EQ(*s.val_loss, want[i]["val_loss"].get<double>());
    }
  }
  // The per-layer tag, the histogram and the text are named, not silently dropped.
  std::string unmapped;
  for (const auto& u : run.unmapped) unmapped += u + "\n";
  EXPECT_NE(unmapped.find("moe/load_balancing_loss_layer_0 (40 points)"), std::string::npos) << unmapped;
  EXPECT_NE(unmapped.find("non-scalar"), std::string::npos) << unmapped;
}

TEST(ExternalImport, DeepSpeedTagsAsTensorSummaries) {
  const TfEventsScalars tb = read_tfevents_scalars(fixture("deepspeed.tfevents"));
  const auto want = expected("deepspeed.tfevents");
  ASSERT_EQ(tb.series.at("Train/Samples/loss_scale").size(), want.size());
  for (const auto& p : tb.series.at("Train/Samples/loss_scale")) EXPECT_EQ(p.value, 1024.0) << "tensor_content";
  const ExternalRun run = read_external_run(fixture("deepspeed.tfevents"), "tensorboard");
  ASSERT_EQ(run.steps.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(run.steps[i].step, want[i]["step"].get<int64_t>());
    EXPECT_EQ(run.steps[i].loss, want[i]["loss"].get<double>());
    EXPECT_EQ(run.steps[i].lr, want[i]["lr"].get<double>()) << "a float64 tensor keeps every bit";
  }
}

TEST(ExternalImport, MegatronLogLinesAndArguments) {
  const ExternalRun run = read_external_run(fixture("megatron.log"), "megatron-log");
  const auto want = expected("megatron.log");
  ASSERT_EQ(run.steps.size(), want.size()) << "the iteration without 'lm loss' is skipped";
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    const auto& s = run.steps[i];
    EXPECT_EQ(s.step, want[i]["step"].get<int64_t>());
    EXPECT_DOUBLE_EQ(s.loss, want[i]["loss"].get<double>());
    EXPECT_DOUBLE_EQ(s.lr, want[i]["lr"].get<double>());
    EXPECT_DOUBLE_EQ(s.step_ms, want[i]["step_ms"].get<double>());
    EXPECT_DOUBLE_EQ(*s.grad_norm, want[i]["grad_norm"].get<double>());
    EXPECT_DOUBLE_EQ(s.aux_loss, want[i]["aux_loss"].get<double>());
    EXPECT_EQ(s.tokens, want[i]["tokens"].get<int64_t>()) << "global batch × seq_length from the arguments";
    EXPECT_DOUBLE_EQ(s.tokens_per_s, static_cast<double>(s.tokens) / (s.step_ms / 1000.0));
    EXPECT_EQ(s.val_loss.has_value(), want[i].contains("val_loss"));
    if (s.val_loss) {
      EXPECT_DOUBLE_EQ(*s.val_loss, want[i]["val_loss"].get<double>());
    }
  }
  EXPECT_EQ(run.world_size, 8);
  EXPECT_EQ(run.settings.at("num_experts"), "8");
}

TEST(ExternalImport, FormatIsRecognisedByContent) {
  EXPECT_EQ(detect_import_format(fixture("megatron.tfevents")), "tensorboard");
  EXPECT_EQ(detect_import_format(fixture("deepspeed.tfevents")), "tensorboard");
  EXPECT_EQ(detect_import_format(fixture("megatron.log")), "megatron-log");
  EXPECT_EQ(detect_import_format(fixture("expected.json")), "stream");
  // The first iteration line after 100 KB of start-up output: the arguments banner still tells.
  const std::string log = read_text_file(fixture("megatron.log"));
  const size_t iter = log.find(" iteration ");
  ASSERT_NE(iter, std::string::npos);
  const size_t line_start = log.rfind('\n', iter) + 1;
  std::string noisy = log.substr(0, line_start);
  for (int i = 0; i < 2000; ++i) noisy += "> building dataset index: shard " + std::to_string(i) + " of 2000 ...\n";
  noisy += log.substr(line_start);
  ASSERT_GT(noisy.find(" iteration "), size_t{64 * 1024});
  const std::string path = ::testing::TempDir() + "noisy-megatron.log";
  { std::ofstream(path, std::ios::binary) << noisy; }
  EXPECT_EQ(detect_import_format(path), "megatron-log");
  EXPECT_EQ(read_external_run(path, "megatron-log").steps.size(), read_external_run(fixture("megatron.log"), "megatron-log").steps.size());
  std::remove(path.c_str());
}

TEST(ExternalImport, CorruptAndCutOffEventFiles) {
  const std::string bytes = read_text_file(fixture("megatron.tfevents"));
  // A flipped byte inside the second record's data: its CRC names where.
  std::string bad = bytes;
  const uint64_t first_len = static_cast<uint8_t>(bytes[0]) | uint64_t(static_cast<uint8_t>(bytes[1])) << 8;
  const size_t second = 12 + first_len + 4;
  bad[second + 12 + 3] ^= 0x40;
  try {
    parse_tfevents_scalars(bad, "x.tfevents");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "x.tfevents: record at byte " + std::to_string(second) + ": data CRC mismatch (corrupt)");
  }
  // A file still being written: every complete record, and a note.
  const TfEventsScalars cut = parse_tfevents_scalars(bytes.substr(0, bytes.size() - 5), "cut");
  EXPECT_TRUE(cut.truncated);
  const TfEventsScalars whole = parse_tfevents_scalars(bytes, "whole");
  EXPECT_FALSE(whole.truncated);
  EXPECT_EQ(cut.events, whole.events - 1);
  // Not an event file at all.
  EXPECT_THROW(parse_tfevents_scalars(std::string(64, 'x'), "junk"), Error);
}

TEST(ExternalImport, BadLogLinesNameTheLine) {
  const std::string log =
      " [x] iteration       10/     100 | lm loss: 2.0E+00 |\n"
      " [x] iteration       20/     100 | lm loss: nan-ish |\n";
  try {
    parse_megatron_log(log, "train.log");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "train.log:2: 'lm loss' is not a number: 'nan-ish'");
  }
  EXPECT_THROW(read_external_run(fixture("expected.json"), "megatron-log"), Error) << "no iteration line";
  EXPECT_THROW(read_external_run(fixture("megatron.log"), "tensorboard"), Error);
}

TEST(ExternalImport, TheStreamIsContractValid) {
  const ExternalRun run = read_external_run(fixture("megatron.log"), "megatron-log");
  const std::string stream = external_run_stream(run, "megatron baseline");
  size_t lines = 0, at = 0;
  while (at < stream.size()) {
    const size_t nl = stream.find('\n', at);
    const auto parsed = metrics::parse_line(std::string_view(stream).substr(at, nl - at));
    EXPECT_TRUE(std::holds_alternative<metrics::Record>(parsed))
        << (std::holds_alternative<metrics::Malformed>(parsed) ? std::get<metrics::Malformed>(parsed).reason : "ignored");
    at = nl + 1;
    ++lines;
  }
  EXPECT_EQ(lines, run.steps.size() + 2);
}

}  // namespace moe::store
