// safetensors: round trip, the exact byte layout, and strict rejection of truncated, corrupt and
// mismatching files with a one-line error naming the file and the tensor.
#include <cstring>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "safetensors.h"
#include "test_util.h"

namespace moe::rt {
namespace {

using test::expect_error;
using test::TempDir;

struct Fixture {
  std::vector<float> a{1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f};
  std::vector<float> b{42.0f, 43.0f};
  std::vector<TensorRef> refs() const { return {{"model.a.weight", {2, 3}, a.data()}, {"b", {2}, b.data()}}; }
};

// Rewrites a file's JSON header (keeping the data) with `edit` applied.
void edit_header(const std::filesystem::path& file, const std::function<void(nlohmann::json&)>& edit) {
  const std::string bytes = test::read_file(file);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  edit(h);
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t m = text.size();
  std::string out(reinterpret_cast<const char*>(&m), 8);
  test::write_file(file, out + text + bytes.substr(8 + n));
}

TEST(Safetensors, RoundTripAndLayout) {
  TempDir dir;
  Fixture f;
  write_safetensors(dir / "t.safetensors", f.refs());
  std::map<std::string, std::string> meta;
  const TensorMap t = read_safetensors(dir / "t.safetensors", &meta);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.at("model.a.weight").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.at("model.a.weight").data, f.a);
  EXPECT_EQ(t.at("b").data, f.b);
  EXPECT_EQ(meta.at("format"), "pt");
  // Layout: 8-byte little-endian header size, header padded to 8, F32 data in order.
  const std::string bytes = test::read_file(dir / "t.safetensors");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 8 * sizeof(float));
  const auto h = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(h["model.a.weight"]["dtype"], "F32");
  EXPECT_EQ(h["model.a.weight"]["data_offsets"], nlohmann::json({0, 24}));
  EXPECT_EQ(h["b"]["data_offsets"], nlohmann::json({24, 32}));
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.5f);
}

TEST(Safetensors, TruncatedFilesAreRejectedAtEveryLength) {
  TempDir dir;
  Fixture f;
  write_safetensors(dir / "full.safetensors", f.refs());
  const std::string bytes = test::read_file(dir / "full.safetensors");
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    test::write_file(dir / "cut.safetensors", bytes.substr(0, cut));
    expect_error([&] { read_safetensors(dir / "cut.safetensors"); }, {"cut.safetensors"});
  }
  // The cut inside tensor data names the tensor whose data is missing.
  test::write_file(dir / "cut.safetensors", bytes.substr(0, bytes.size() - 4));
  expect_error([&] { read_safetensors(dir / "cut.safetensors"); }, {"cut.safetensors", "tensor b", "truncated"});
}

TEST(Safetensors, CorruptHeadersAreRejected) {
  TempDir dir;
  Fixture f;
  const auto file = dir / "c.safetensors";
  auto fresh = [&] { write_safetensors(file, f.refs()); };

  fresh();
  std::string bytes = test::read_file(file);
  bytes[9] = '#';  // break the JSON
  test::write_file(file, bytes);
  expect_error([&] { read_safetensors(file); }, {"c.safetensors", "not valid JSON"});

  fresh();
  bytes = test::read_file(file);
  const uint64_t huge = uint64_t{1} << 40;
  std::memcpy(bytes.data(), &huge, 8);
  test::write_file(file, bytes);
  expect_error([&] { read_safetensors(file); }, {"c.safetensors", "corrupt", "header size"});

  fresh();
  edit_header(file, [](nlohmann::json& h) { h["b"]["dtype"] = "BF16"; });
  expect_error([&] { read_safetensors(file); }, {"c.safetensors", "tensor b", "BF16"});

  fresh();
  edit_header(file, [](nlohmann::json& h) { h["model.a.weight"]["shape"] = {3, 3}; });
  expect_error([&] { read_safetensors(file); }, {"tensor model.a.weight", "[3, 3]"});

  fresh();
  edit_header(file, [](nlohmann::json& h) {
    h["b"]["data_offsets"] = {16, 24};  // overlaps a's data, leaves a hole at the end
    h["b"]["shape"] = {2};
  });
  expect_error([&] { read_safetensors(file); }, {"c.safetensors", "corrupt"});

  fresh();
  edit_header(file, [](nlohmann::json& h) { h["b"].erase("data_offsets"); });
  expect_error([&] { read_safetensors(file); }, {"tensor b", "data_offsets"});

  fresh();
  test::write_file(file, test::read_file(file) + "xxxx");  // trailing garbage
  expect_error([&] { read_safetensors(file); }, {"c.safetensors", "after the last tensor"});
}

TEST(Safetensors, LoadChecksNamesAndShapes) {
  TempDir dir;
  Fixture f;
  const auto file = dir / "m.safetensors";
  write_safetensors(file, f.refs());
  const TensorMap t = read_safetensors(file);
  std::vector<float> a(6), b(2);
  load_tensors(t, file, {{"model.a.weight", {2, 3}, a.data()}, {"b", {2}, b.data()}});
  EXPECT_EQ(a, f.a);
  EXPECT_EQ(b, f.b);
  expect_error([&] { load_tensors(t, file, {{"model.a.weight", {3, 2}, a.data()}, {"b", {2}, b.data()}}); },
               {"m.safetensors", "tensor model.a.weight", "[2, 3]", "[3, 2]"});
  expect_error([&] { load_tensors(t, file, {{"model.a.weight", {2, 3}, a.data()}, {"c", {2}, b.data()}}); },
               {"m.safetensors", "tensor c", "missing"});
  expect_error([&] { load_tensors(t, file, {{"model.a.weight", {2, 3}, a.data()}}); },
               {"m.safetensors", "tensor b", "not part of this model"});
}

}  // namespace
}  // namespace moe::rt
