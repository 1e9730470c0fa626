// Data: loading bytes, the train/validation split, eval windows, deterministic resumable
// sampling, the bundled corpus and the synthetic multi-domain generator.
#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "batch_sampler.h"
#include "byte_data.h"
#include "synthetic_data.h"
#include "test_util.h"

namespace moe::rt {
namespace {

using test::expect_error;
using test::TempDir;

TEST(ByteData, MissingAndEmptyFilesAreOneLineErrors) {
  TempDir dir;
  expect_error([&] { read_bytes_file(dir / "nope.txt"); }, {"nope.txt", "no such file"});
  test::write_file(dir / "empty.txt", "");
  expect_error([&] { read_bytes_file(dir / "empty.txt"); }, {"empty.txt", "is empty"});
  expect_error([&] { read_bytes_file(dir.path()); }, {"is a directory"});
}

TEST(ByteData, TextShorterThanOneSequenceIsRefused) {
  TempDir dir;
  test::write_file(dir / "short.txt", "0123456789");  // 10 bytes
  JobSpec spec;
  spec.model.seq_len = 9;  // needs 10 bytes of training text
  spec.train.data.path = (dir / "short.txt").string();
  spec.train.data.val_fraction = 0.0;
  EXPECT_EQ(load_training_data(spec).train.size(), 10u);
  spec.model.seq_len = 10;
  expect_error([&] { load_training_data(spec); }, {"short.txt", "shorter than one sequence", "11 bytes"});
  spec.model.seq_len = 4;
  spec.train.data.val_fraction = 0.2;  // 2 validation bytes < 5
  expect_error([&] { load_training_data(spec); }, {"short.txt", "validation part"});
}

TEST(ByteData, ValidationIsTheLastPartOfTheFile) {
  Bytes data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i % 251);
  const DataSplit s = split_data(data, 0.1, 16, "mem");
  ASSERT_EQ(s.train.size(), 900u);
  ASSERT_EQ(s.val.size(), 100u);
  EXPECT_TRUE(std::equal(s.train.begin(), s.train.end(), data.begin()));
  EXPECT_TRUE(std::equal(s.val.begin(), s.val.end(), data.begin() + 900));
}

TEST(ByteData, EvalWindowsShareBoundaryBytesAndPredictEachByteOnce) {
  for (int64_t n : {2, 5, 9, 10, 11, 100}) {
    const auto w = eval_windows(n, 4);
    int64_t predicted = 0, expect_begin = 0;
    for (const Window& x : w) {
      EXPECT_EQ(x.begin, expect_begin);
      EXPECT_GE(x.length, 2);
      EXPECT_LE(x.length, 5);
      predicted += x.length - 1;
      expect_begin = x.begin + x.length - 1;  // the next window starts on this one's last byte
    }
    EXPECT_EQ(predicted, n - 1) << n;
    EXPECT_EQ(w.back().begin + w.back().length, n);
  }
  EXPECT_TRUE(eval_windows(1, 4).empty());
}

TEST(BatchSampler, DeterministicForASeedAndResumable) {
  Bytes data(5000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 7919) % 256);
  BatchSampler a(data, 32, 42), b(data, 32, 42), c(data, 32, 43);
  std::vector<int32_t> ta, tb, tc;
  a.next(8, ta);
  b.next(8, tb);
  c.next(8, tc);
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
  // Each window is a contiguous slice of the data.
  for (int64_t s = 0; s < 8; ++s) {
    const auto first = ta.begin() + s * 33;
    const auto hit = std::search(data.begin(), data.end(), first, first + 33,
                                 [](uint8_t d, int32_t t) { return d == t; });
    EXPECT_NE(hit, data.end());
  }
  // Resuming from a saved position draws what the uninterrupted sampler draws.
  std::vector<int32_t> next_a, next_r;
  a.next(8, next_a);
  BatchSampler r(data, 32, 42);
  r.set_position(b.position());
  r.next(8, next_r);
  EXPECT_EQ(a.position(), 16);
  EXPECT_EQ(next_a, next_r);
  EXPECT_NE(next_a, ta);
}

TEST(BundledCorpus, IsRealTextUnderFiveMegabytes) {
  const Bytes corpus = read_bytes_file(bundled_corpus_path());
  EXPECT_GT(corpus.size(), 1000000u);
  EXPECT_LE(corpus.size(), 5u * 1000 * 1000);
  int64_t printable = 0;
  for (uint8_t c : corpus) printable += (c >= 32 && c < 127) || c == '\n';
  EXPECT_EQ(printable, static_cast<int64_t>(corpus.size()));
  JobSpec spec;  // train.data.path empty: the bundled corpus
  const DataSplit s = load_training_data(spec);
  EXPECT_EQ(s.origin, bundled_corpus_path().string());
  EXPECT_NEAR(static_cast<double>(s.val.size()) / static_cast<double>(corpus.size()), spec.train.data.val_fraction, 1e-6);
}

TEST(Synthetic, DeterministicWithDisjointAlphabetsPerLine) {
  const auto a = generate_synthetic(7, 20000), b = generate_synthetic(7, 20000), c = generate_synthetic(8, 20000);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 20000u);
  std::set<int> seen;
  int language = -2;
  for (uint8_t ch : a) {
    const int l = synthetic_language_of(ch);
    if (ch == '\n') {
      language = -2;
      continue;
    }
    ASSERT_GE(l, 0) << "byte " << int(ch) << " belongs to no language";
    if (language == -2) language = l;
    ASSERT_EQ(l, language) << "a line mixes two alphabets";
    seen.insert(l);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kSyntheticLanguages));
  // The arithmetic language's sums are correct (the grammar carries meaning a model can learn).
  const std::string text(a.begin(), a.end());
  size_t checked = 0;
  for (size_t p = text.find('='); p != std::string::npos && checked < 50; p = text.find('=', p + 1)) {
    size_t plus = text.rfind('+', p), start = plus;
    while (start > 0 && std::isdigit(static_cast<unsigned char>(text[start - 1]))) --start;
    size_t end = p + 1;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    if (start == plus || end == p + 1 || end >= text.size() || text[end] != ';' || start == 0) continue;
    const int lhs = std::stoi(text.substr(start, plus - start)) + std::stoi(text.substr(plus + 1, p - plus - 1));
    EXPECT_EQ(lhs, std::stoi(text.substr(p + 1, end - p - 1)));
    ++checked;
  }
  EXPECT_GT(checked, 10u);
}

TEST(Synthetic, SpecKindSyntheticLoads) {
  JobSpec spec;
  spec.train.data.kind = "synthetic";
  const DataSplit s = load_training_data(spec);
  EXPECT_EQ(s.origin, "synthetic");
  EXPECT_GE(s.train.size() + s.val.size(), size_t{1} << 20);
  spec.train.data.kind = "video";
  expect_error([&] { load_training_data(spec); }, {"train.data.kind"});
}

}  // namespace
}  // namespace moe::rt
