// Blob codec round trips, line splitting across arbitrary read boundaries, and the record parser's
// verdicts on contract-breaking lines.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>

#include "blob_codec.h"
#include "error.h"
#include "line_splitter.h"
#include "store_records.h"

namespace moe::store {
namespace {

TEST(BlobCodec, IntsRoundTripAtEveryWidth) {
  std::mt19937_64 rng(7);
  const int64_t ranges[] = {0, 1, 200, 60000, 4000000000LL, std::numeric_limits<int64_t>::max()};
  for (int64_t range : ranges) {
    std::vector<int64_t> v(257);
    for (auto& x : v) x = range == 0 ? 42 : static_cast<int64_t>(rng() % static_cast<uint64_t>(range)) - range / 3;
    std::string blob = encode_ints(v);
    auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
    EXPECT_EQ(decode_ints(bytes), v) << "range " << range;
  }
  std::vector<int64_t> extremes = {std::numeric_limits<int64_t>::min(), 0, std::numeric_limits<int64_t>::max()};
  std::string blob = encode_ints(extremes);
  EXPECT_EQ(decode_ints({reinterpret_cast<const uint8_t*>(blob.data()), blob.size()}), extremes);
  std::string empty = encode_ints(std::vector<int64_t>{});
  EXPECT_TRUE(decode_ints({reinterpret_cast<const uint8_t*>(empty.data()), empty.size()}).empty());
}

TEST(BlobCodec, CompactForTypicalExpertCounts) {
  std::vector<int64_t> counts(256), zeros(256, 0);
  for (int i = 0; i < 256; ++i) counts[i] = 40 + (i * 37) % 90;  // a band of 90 values
  EXPECT_LE(encode_ints(counts).size(), 256u + 6u);
  EXPECT_LE(encode_ints(zeros).size(), 5u);
}

// Bit-packed with exceptions (schema 8): a band of 32 values plus a hot and a dead expert packs at
// 5 bits a count plus the two exceptions; the byte-aligned form needed 8 bits (7 without outliers).
TEST(BlobCodec, BitPackedCountsWithOutliersAreExact) {
  std::mt19937_64 rng(11);
  std::vector<int64_t> counts(256);
  for (auto& c : counts) c = 48 + static_cast<int64_t>(rng() % 32);
  counts[7] = 115;  // hot
  counts[200] = 0;  // dead
  std::string blob = encode_ints(counts);
  EXPECT_LE(blob.size(), 256u * 5 / 8 + 16u);
  auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
  EXPECT_EQ(decode_ints(bytes), counts);
  std::vector<int64_t> acc(256, 1000);
  ASSERT_EQ(accumulate_ints(bytes, acc), 256u);
  for (size_t i = 0; i < 256; ++i) ASSERT_EQ(acc[i], counts[i] + 1000) << i;
  // Every width, random lengths (the tail reads through the padded path), random outliers.
  for (unsigned bits = 1; bits <= 63; ++bits) {
    std::vector<int64_t> v(1 + rng() % 300);
    const uint64_t span = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
    for (auto& x : v) x = -1000 + static_cast<int64_t>(rng() & span);
    if (v.size() > 3) v[rng() % v.size()] = std::numeric_limits<int64_t>::max();
    std::string b = encode_ints(v);
    ASSERT_EQ(decode_ints({reinterpret_cast<const uint8_t*>(b.data()), b.size()}), v) << bits;
  }
}

TEST(BlobCodec, ByteAlignedBlobsOfOlderFilesStillDecode) {
  // [width 1][n 3][zigzag(base 40) = 80][3 bytes]: what schema 7 wrote for {40, 41, 295 − 255}.
  const uint8_t old_form[] = {1, 3, 80, 0, 1, 200};
  EXPECT_EQ(decode_ints(old_form), (std::vector<int64_t>{40, 41, 240}));
  const uint8_t old_sparse[] = {0x40, 4, 1, 2, 0, 1, 14};  // n 4, one non-zero at 2, value 7
  EXPECT_EQ(decode_ints(old_sparse), (std::vector<int64_t>{0, 0, 7, 0}));
}

TEST(BlobCodec, CorruptBitPackedBlobsAreErrors) {
  std::vector<int64_t> v(100);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 50 + static_cast<int64_t>(i % 20);
  v[5] = 9000;
  const std::string good = encode_ints(v);
  ASSERT_TRUE(static_cast<uint8_t>(good[0]) & 0x80);
  auto bytes = [](const std::string& s) { return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  std::string cut = good.substr(0, good.size() - 1);
  EXPECT_THROW(decode_ints(bytes(cut)), Error);
  std::string wide = good;
  wide[0] = static_cast<char>(0x80 | 65);  // width 65
  EXPECT_THROW(decode_ints(bytes(wide)), Error);
  std::string longer = good + '\0';
  EXPECT_THROW(decode_ints(bytes(longer)), Error);
  std::vector<int64_t> small(4);
  EXPECT_THROW(accumulate_ints(bytes(good), small), Error);
  // Every truncation and every single-byte flip either decodes to 100 values or throws moe::Error.
  for (size_t at = 0; at < good.size(); ++at) {
    for (int flip : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ flip);
      try {
        (void)decode_ints(bytes(bad));
      } catch (const Error&) {
      }
    }
  }
}

TEST(BlobCodec, SparseArraysAreSmallAndExact) {
  std::vector<int64_t> drops(256, 0);
  drops[3] = 17;
  drops[200] = 70000;
  drops[255] = 1;
  std::string blob = encode_ints(drops);
  EXPECT_LE(blob.size(), 24u);  // dense would take 1 KB (4-byte width)
  auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
  EXPECT_EQ(decode_ints(bytes), drops);
  std::vector<int64_t> acc(256, 1);
  EXPECT_EQ(accumulate_ints(bytes, acc), 256u);
  EXPECT_EQ(acc[200], 70001);
  EXPECT_EQ(acc[0], 1);
}

TEST(BlobCodec, DoublesRoundTripBitForBit) {
  const std::vector<std::vector<double>> cases = {
      {123.456, 0.5, 99.25, 1e6, 0},    // decimals: stored as scaled integers
      {1.0 / 3.0, 2.0 / 7.0, 1e-300},   // not decimals: raw doubles
      {-0.0, 1.5},                      // the sign of zero survives
      {},
  };
  for (const auto& v : cases) {
    std::string blob = encode_doubles(v);
    auto out = decode_doubles({reinterpret_cast<const uint8_t*>(blob.data()), blob.size()});
    ASSERT_EQ(out.size(), v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_EQ(std::memcmp(&out[i], &v[i], sizeof(double)), 0) << v[i];
    }
  }
  EXPECT_LT(encode_doubles(cases[0]).size(), 5 * sizeof(double));
}

TEST(BlobCodec, CorruptBlobIsAnError) {
  std::string blob = encode_ints(std::vector<int64_t>{1, 2, 3000});
  blob.pop_back();
  EXPECT_THROW(decode_ints({reinterpret_cast<const uint8_t*>(blob.data()), blob.size()}), Error);
  const uint8_t bad_width[] = {3, 1, 0, 0};
  EXPECT_THROW(decode_ints(bad_width), Error);
}

TEST(LineSplitter, JoinsLinesSplitAtEveryByte) {
  const std::string text = "alpha\nbeta gamma\n\nlast-without-newline";
  for (size_t cut = 1; cut <= text.size(); ++cut) {
    LineSplitter sp(1024);
    std::vector<std::string> lines;
    auto on_line = [&](std::string_view l, int64_t) { lines.emplace_back(l); };
    auto on_over = [&](int64_t, uint64_t) { FAIL() << "no line is oversize"; };
    for (size_t i = 0; i < text.size(); i += cut) sp.feed(std::string_view(text).substr(i, cut), on_line, on_over);
    sp.finish(on_line, on_over);
    EXPECT_EQ(lines, (std::vector<std::string>{"alpha", "beta gamma", "", "last-without-newline"})) << "cut " << cut;
  }
}

TEST(LineSplitter, OversizeLineIsSkippedAndCountedWithoutBuffering) {
  LineSplitter sp(100);
  std::vector<std::string> lines;
  std::vector<std::pair<int64_t, uint64_t>> over;
  auto on_line = [&](std::string_view l, int64_t) { lines.emplace_back(l); };
  auto on_over = [&](int64_t n, uint64_t b) { over.emplace_back(n, b); };
  sp.feed("ok1\n", on_line, on_over);
  for (int i = 0; i < 50; ++i) sp.feed(std::string(37, 'x'), on_line, on_over);
  sp.feed("yy\nok2\n", on_line, on_over);
  EXPECT_EQ(lines, (std::vector<std::string>{"ok1", "ok2"}));
  ASSERT_EQ(over.size(), 1u);
  EXPECT_EQ(over[0].first, 2);
  EXPECT_EQ(over[0].second, 50u * 37u + 2u);
}

template <typename T>
const T* record_of(const ParsedLine& p) {
  auto* r = std::get_if<Record>(&p);
  return r ? std::get_if<T>(r) : nullptr;
}

std::string malformed_reason(const std::string& line) {
  ParsedLine p = parse_line(line);
  auto* m = std::get_if<Malformed>(&p);
  return m ? m->reason : "";
}

TEST(StreamRecord, ParsesContractRecordsAndKeepsExtraFields) {
  auto p = parse_line(R"({"type":"step","step":3,"loss":2.5,"aux_loss":1,"z_loss":0.1,"lr":0.003,"tokens":4096,"step_ms":12.5,"tokens_per_s":327680,"grad_norm":0.7,"router_temp":1.5})");
  const StepRecord* s = record_of<StepRecord>(p);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->step, 3);
  EXPECT_DOUBLE_EQ(s->loss, 2.5);
  ASSERT_TRUE(s->grad_norm.has_value());  // a known extension gets its member
  EXPECT_DOUBLE_EQ(*s->grad_norm, 0.7);
  EXPECT_EQ(s->extra, R"({"router_temp":1.5})");  // an unknown field travels as extra
  // The store keeps both beside the columns, so an export writes the line back whole.
  EXPECT_EQ(metrics::stored_extra(Record(*s)), R"({"grad_norm":0.7,"router_temp":1.5})");
  EXPECT_TRUE(std::holds_alternative<Ignored>(parse_line(R"({"type":"future_record","x":1})")));
  EXPECT_TRUE(std::holds_alternative<Ignored>(parse_line("   ")));
}

TEST(StreamRecord, ContractViolationsAreMalformedWithAReason) {
  EXPECT_NE(malformed_reason(R"({"type":"step","step":1)").find("not JSON"), std::string::npos);
  EXPECT_NE(malformed_reason("\x01\x02\xff\xfe garbage").find("not JSON"), std::string::npos);
  EXPECT_NE(malformed_reason("{\"type\":\"log\",\"message\":\"bad \xc3\x28 utf8\"}").find("not JSON"), std::string::npos);
  EXPECT_NE(malformed_reason("[1,2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"step":1})").find("type"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"step","step":1})").find("missing 'loss'"), std::string::npos);
  // Numbers out of range: beyond double, beyond int64, negative counts, floats where ints belong.
  EXPECT_NE(malformed_reason(R"({"type":"checkpoint","step":1e999,"path":"x"})").find("not JSON"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"checkpoint","step":18446744073709551615,"path":"x"})").find("out of range"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"checkpoint","step":99999999999999999999,"path":"x"})").find("integer"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"checkpoint","step":-1,"path":"x"})").find("negative"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"checkpoint","step":1.5,"path":"x"})").find("integer"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"expert_load","step":1,"layer":0,"counts":[1,-2],"dropped":[0,0]})").find("negative"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"expert_load","step":1,"layer":0,"counts":[1,2],"dropped":[0]})").find("length"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"expert_load","step":1,"layer":0,"counts":[1,2],"dropped":[2,0]})").find("dropped more"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"a2a","step":1,"layer":0,"phase":"x","pass":"fwd","rank_us":[],"rank_bytes":[]})").find("phase"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"run_end","status":"done","steps":3})").find("status"), std::string::npos);
  EXPECT_NE(malformed_reason(R"({"type":"step","step":true,"loss":1,"aux_loss":1,"z_loss":1,"lr":1,"tokens":1,"step_ms":1,"tokens_per_s":1})").find("integer"), std::string::npos);
}

TEST(StreamRecord, PrintablePrefixIsValidUtf8) {
  std::string p = printable_prefix("ok \xff\xfe \xc3\xa9 \x01 end", 100);
  EXPECT_EQ(p, "ok \xEF\xBF\xBD\xEF\xBF\xBD \xc3\xa9 \xEF\xBF\xBD end");
  // Overlong encodings and UTF-16 surrogates are invalid UTF-8 too.
  EXPECT_EQ(printable_prefix("\xc0\xaf|\xed\xa0\x80|\xf0\x9f\x98\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|\xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace moe::store
