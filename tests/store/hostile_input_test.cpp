// Hostile input (docs/reliability.md): run names, tags, notes, spec strings and paths holding
// quotes, '$', '`', ';', spaces, newlines, tabs, terminal escapes, bidi overrides and non-ASCII
// survive the run store byte for byte (parameterised SQL only) and come back from `moe run` /
// `moe runs list|show|export|import` exactly (--json, JSONL) or unambiguously on one line (the
// text tables); bytes that are not UTF-8 are refused with one line. No string is ever run: the
// marker file a shell would create stays absent. Real SQLite files, real `moe` processes.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "error.h"
#include "run_reader.h"
#include "run_store.h"
#include "store_export.h"
#include "store_test_util.h"

namespace moe::store {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string marker() { return "/tmp/moe-pwned-store-" + std::to_string(::getpid()); }

// A hostile string, how `moe runs show` prints it as a name, and as a tag (',' separates tags).
struct Hostile {
  std::string raw, as_name, as_tag;
};

std::vector<Hostile> hostile() {
  const std::string sub = "$(touch " + marker() + ")", tick = "`touch " + marker() + "`";
  return {
      {"a'b\"c", R"("a'b\"c")", R"("a'b\"c")"},
      {sub, sub, sub},
      {tick, tick, tick},
      {"x; rm -rf ~", "x; rm -rf ~", "x; rm -rf ~"},
      {"two words", "two words", "two words"},
      {"line1\nline2", R"("line1\nline2")", R"("line1\nline2")"},
      {"tab\there", R"("tab\there")", R"("tab\there")"},
      {"ünïcødé ✓ 日本", "ünïcødé ✓ 日本", "ünïcødé ✓ 日本"},
      {"'); DROP TABLE runs; --", "'); DROP TABLE runs; --", "'); DROP TABLE runs; --"},
      {"%s %n %1 %d", "%s %n %1 %d", "%s %n %1 %d"},
      {"\x1b[2J\x1b]0;title\x07", R"("\x1b[2J\x1b]0;title\x07")", R"("\x1b[2J\x1b]0;title\x07")"},
      {"rtl \u202e txt", R"("rtl \u{202e} txt")", R"("rtl \u{202e} txt")"},
      {" lead and trail ", R"(" lead and trail ")", R"(" lead and trail ")"},
      {"back\\slash", R"("back\\slash")", R"("back\\slash")"},
      {"a,b", "a,b", R"("a,b")"},
  };
}

struct Proc {
  int code = -1;
  std::string out, err;
};

Proc run(const TempDir& dir, const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  const std::string o = dir.file("out.txt"), e = dir.file("err.txt");
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& v : env) ::putenv(const_cast<char*>(v.c_str()));
    const int fo = ::open(o.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fe = ::open(e.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fo, 1);
    ::dup2(fe, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  Proc p;
  p.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  p.out = test::read_file(o);
  p.err = test::read_file(e);
  return p;
}

// Control bytes in text meant for a terminal, other than the line ends.
size_t control_bytes(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\n') || u == 0x7f;
  }));
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

size_t code_points(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

// A contract stream whose every free string is hostile: the spec's name and a custom field, the
// hosts, a checkpoint path, the run_end reason and an extra field of a step.
std::string hostile_stream(const std::vector<Hostile>& h) {
  nlohmann::ordered_json spec = {{"schema", 1}, {"name", h[0].raw + h[5].raw}, {"note", h[7].raw}};
  nlohmann::ordered_json hosts = nlohmann::json::array();
  for (const auto& x : h) hosts.push_back(x.raw);
  std::string s;
  s += nlohmann::ordered_json({{"type", "run_start"}, {"schema", 1}, {"spec", spec}, {"world_size", 1},
                               {"backend", "cpu"}, {"started_at", "2026-12-01T00:00:00Z"}, {"hosts", hosts},
                               {"label", h[10].raw}})
           .dump() + "\n";
  for (int step = 1; step <= 3; ++step)
    s += nlohmann::ordered_json({{"type", "step"}, {"step", step}, {"loss", 4.0 / step}, {"aux_loss", 0.01},
                                 {"z_loss", 0.001}, {"lr", 0.001}, {"tokens", 256}, {"step_ms", 10.0},
                                 {"tokens_per_s", 25600.0}, {"comment", h[step].raw}})
             .dump() + "\n";
  s += nlohmann::ordered_json({{"type", "checkpoint"}, {"step", 3}, {"path", "/ckpt/" + h[1].raw + "/" + h[7].raw}})
           .dump() + "\n";
  s += nlohmann::ordered_json({{"type", "run_end"}, {"status", "failed"}, {"steps", 3}, {"reason", h[5].raw + h[10].raw}})
           .dump() + "\n";
  return s;
}

TEST(HostileInput, StoreKeepsNamesTagsNotesAndStreamStringsByteExact) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  const auto h = hostile();
  std::vector<int64_t> ids;
  {
    RunStore st(db);
    for (const auto& x : h) {
      nlohmann::json spec = {{"schema", 1}, {"name", x.raw}, {"train", {{"data", {{"path", x.raw}}}}}};
      const int64_t id = st.create_run(x.raw, spec.dump());
      for (const auto& t : h) st.add_tag(id, t.raw);
      st.set_notes(id, x.raw + "\n" + h[0].raw);
      ids.push_back(id);
    }
    // Bytes that are not UTF-8 are refused with a one-line reason; nothing is half-written.
    for (const std::string& bad : {std::string("bad\xff"), std::string("\xc3("), std::string("\xed\xa0\x80")}) {
      EXPECT_THROW(st.create_run(bad), Error);
      EXPECT_THROW(st.add_tag(ids[0], bad), Error);
      EXPECT_THROW(st.set_notes(ids[0], bad), Error);
      EXPECT_THROW(st.rename(ids[0], bad), Error);
    }
    try {
      st.add_tag(ids[0], "bad\xff");
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "tag is not valid UTF-8 (byte 0xff at offset 3)");
    }
  }
  RunReader reader(db);
  std::vector<std::string> sorted_tags;
  for (const auto& t : h) sorted_tags.push_back(t.raw);
  std::sort(sorted_tags.begin(), sorted_tags.end());  // SQLite's BINARY order = byte order
  const auto runs = reader.list_runs();
  ASSERT_EQ(runs.size(), h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    const RunInfo r = reader.run(ids[i]);
    EXPECT_EQ(r.name, h[i].raw);
    EXPECT_EQ(r.tags, sorted_tags) << "run " << ids[i];
    EXPECT_EQ(r.notes, h[i].raw + "\n" + h[0].raw);
    EXPECT_EQ(nlohmann::json::parse(reader.spec_json(ids[i]))["train"]["data"]["path"], h[i].raw);
    EXPECT_EQ(reader.find_run(h[i].raw), ids[i]) << "a run is found by its hostile name";
  }
  // The config diff names exactly the keys that differ, the values as JSON text.
  const auto diff = reader.config_diff({ids[0], ids[5]});
  ASSERT_EQ(diff.size(), 2u);
  EXPECT_EQ(diff[0].values[1], nlohmann::json(h[5].raw).dump());
  {
    RunStore st(db);
    st.remove_tag(ids[0], h[8].raw);
    st.rename(ids[1], h[11].raw);
  }
  EXPECT_EQ(reader.run(ids[0]).tags.size(), h.size() - 1);
  EXPECT_EQ(reader.run(ids[1]).name, h[11].raw);
  EXPECT_EQ(reader.list_runs().size(), h.size()) << "the SQL-looking strings were data";

  // The stream's free strings: ingest, export, ingest the export, export again: same bytes, and
  // the exported records hold the original strings.
  const std::string stream = hostile_stream(h);
  const int64_t a = test::ingest_string(db, stream, 7);
  std::ostringstream first;
  export_jsonl(reader, a, first);
  const int64_t b = test::ingest_string(db, first.str(), 5);
  std::ostringstream second;
  export_jsonl(reader, b, second);
  EXPECT_EQ(second.str(), first.str());
  const auto recs = lines(first.str());
  ASSERT_EQ(recs.size(), 6u) << first.str();
  const auto start = nlohmann::json::parse(recs[0]);
  EXPECT_EQ(start["spec"]["name"], h[0].raw + h[5].raw);
  EXPECT_EQ(start["spec"]["note"], h[7].raw);
  EXPECT_EQ(start["label"], h[10].raw);
  ASSERT_EQ(start["hosts"].size(), h.size());
  for (size_t i = 0; i < h.size(); ++i) EXPECT_EQ(start["hosts"][i], h[i].raw);
  EXPECT_EQ(nlohmann::json::parse(recs[2])["comment"], h[2].raw);
  EXPECT_EQ(nlohmann::json::parse(recs[4])["path"], "/ckpt/" + h[1].raw + "/" + h[7].raw);
  EXPECT_EQ(nlohmann::json::parse(recs[5])["reason"], h[5].raw + h[10].raw);
  EXPECT_EQ(reader.run(a).name, h[0].raw + h[5].raw) << "an unnamed run takes the spec's name";
  EXPECT_FALSE(fs::exists(marker()));
}

class HostileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    hdir_ = (dir_.path() / "d 'q' \"dq\" $HOME `id` ; ü ✓ 日本 100%d").string();
    fs::create_directories(hdir_);
    db_ = hdir_ + "/runs 'x' $y.sqlite";
    spec_ = hdir_ + "/spec $(id) `id` ;x\nline2.json";  // a file name holds no '/'
  }
  void TearDown() override { EXPECT_FALSE(fs::exists(marker())) << "a hostile string ran as a command"; }
  // tiny-cpu with a hostile name, written to the hostile spec path.
  void write_spec(const std::string& name) {
    auto j = nlohmann::json::parse(test::read_file(std::string(MOE_SOURCE_DIR) + "/resources/presets/tiny-cpu.json"));
    j["name"] = name;
    test::write_file(spec_, j.dump(2));
    ASSERT_TRUE(fs::exists(spec_)) << spec_;
  }
  Proc moe(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> a = {MOE_CLI};
    a.insert(a.end(), args.begin(), args.end());
    return run(dir_, a, env);
  }
  TempDir dir_;
  std::string hdir_, db_, spec_;
};

TEST_F(HostileCli, MoeRunStoresNamesAndTagsAndRunsPrintsThemBack) {
  const auto h = hostile();
  const std::string spec_name = h[0].raw + " " + h[5].raw + " " + h[7].raw;
  write_spec(spec_name);
  std::vector<std::string> tag_args;
  for (const auto& t : h) tag_args.insert(tag_args.end(), {"--tag", t.raw});
  std::vector<int64_t> ids;
  for (const auto& x : h) {
    std::vector<std::string> a = {"run", spec_, "--db", db_, "--set", "train.steps=3", "--name", x.raw};
    a.insert(a.end(), tag_args.begin(), tag_args.end());
    Proc p = moe(a, {std::string("MOE_RUNTIME=") + STORE_FAKE_RUNTIME});
    ASSERT_EQ(p.code, 0) << p.err;
    ids.push_back(std::stoll(p.out));
    EXPECT_EQ(control_bytes(p.err), 0u) << "stderr lines stay lines: " << p.err;
  }
  // Without --name the run is named after the spec (hostile too).
  Proc unnamed = moe({"run", spec_, "--db", db_, "--set", "train.steps=3"}, {std::string("MOE_RUNTIME=") + STORE_FAKE_RUNTIME});
  ASSERT_EQ(unnamed.code, 0) << unnamed.err;
  const int64_t unnamed_id = std::stoll(unnamed.out);

  std::vector<std::string> sorted_tags;
  for (const auto& t : h) sorted_tags.push_back(t.raw);
  std::sort(sorted_tags.begin(), sorted_tags.end());

  // --json: the exact strings.
  Proc js = moe({"runs", "list", "--db", db_, "--json"});
  ASSERT_EQ(js.code, 0) << js.err;
  const auto list = nlohmann::json::parse(js.out);
  ASSERT_EQ(list.size(), h.size() + 1);
  std::map<int64_t, nlohmann::json> by_id;
  for (const auto& r : list) by_id[r["id"].get<int64_t>()] = r;
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(by_id[ids[i]]["name"], h[i].raw);
    EXPECT_EQ(by_id[ids[i]]["tags"].get<std::vector<std::string>>(), sorted_tags);
  }
  EXPECT_EQ(by_id[unnamed_id]["name"], spec_name);

  // The table: one line per run, no control byte, each name shown unambiguously.
  Proc table = moe({"runs", "list", "--db", db_});
  ASSERT_EQ(table.code, 0) << table.err;
  const auto rows = lines(table.out);
  ASSERT_EQ(rows.size(), h.size() + 2) << table.out;
  EXPECT_EQ(control_bytes(table.out), 0u) << table.out;
  for (size_t i = 0; i < h.size(); ++i) {
    const std::string id = std::to_string(ids[i]);
    auto row = std::find_if(rows.begin(), rows.end(), [&](const std::string& l) {
      return l.compare(0, 7, std::string(5 - id.size(), ' ') + id + "  ") == 0;
    });
    ASSERT_NE(row, rows.end()) << table.out;
    if (code_points(h[i].as_name) <= 24) {
      EXPECT_NE(row->find(h[i].as_name), std::string::npos) << *row;
    }
  }

  // show: the name line and the tags line, escaped where needed, each on one line.
  std::string tags_line = "  tags: ";
  for (size_t i = 0; i < sorted_tags.size(); ++i) {
    auto t = std::find_if(h.begin(), h.end(), [&](const Hostile& x) { return x.raw == sorted_tags[i]; });
    tags_line += (i ? ", " : "") + t->as_tag;
  }
  for (size_t i = 0; i < h.size(); ++i) {
    Proc show = moe({"runs", "show", std::to_string(ids[i]), "--db", db_});
    ASSERT_EQ(show.code, 0) << show.err;
    EXPECT_EQ(control_bytes(show.out), 0u) << show.out;
    const auto out = lines(show.out);
    ASSERT_GE(out.size(), 5u);
    EXPECT_EQ(out[0], "run " + std::to_string(ids[i]) + "  " + h[i].as_name + "  [completed]");
    EXPECT_NE(std::find(out.begin(), out.end(), tags_line), out.end()) << show.out;
    // The run is found by its name, however hostile.
    Proc by_name = moe({"runs", "show", h[i].raw, "--db", db_});
    ASSERT_EQ(by_name.code, 0) << by_name.err;
    EXPECT_EQ(lines(by_name.out)[0], out[0]);
  }

  // export → import → export: the same bytes; the spec's hostile name is in run_start.
  const std::string exported = hdir_ + "/export $(x)\n.jsonl";
  Proc ex = moe({"runs", "export", std::to_string(unnamed_id), "--db", db_, "-o", exported});
  ASSERT_EQ(ex.code, 0) << ex.err;
  EXPECT_EQ(nlohmann::json::parse(lines(test::read_file(exported))[0])["spec"]["name"], spec_name);
  Proc imp = moe({"runs", "import", exported, "--db", db_, "--name", h[5].raw, "--tag", h[0].raw});
  ASSERT_EQ(imp.code, 0) << imp.err;
  Proc ex2 = moe({"runs", "export", imp.out.substr(0, imp.out.find('\n')), "--db", db_});
  EXPECT_EQ(ex2.out, test::read_file(exported));
  const RunInfo imported = RunReader(db_).run(std::stoll(imp.out));
  EXPECT_EQ(imported.name, h[5].raw);
  EXPECT_EQ(imported.tags, std::vector<std::string>{h[0].raw});

  // Refusals: one line on stderr, nothing recorded.
  Proc bad_name = moe({"run", spec_, "--db", db_, "--name", "bad\xff", "--set", "train.steps=3"},
                      {std::string("MOE_RUNTIME=") + STORE_FAKE_RUNTIME});
  EXPECT_EQ(bad_name.code, 1);
  EXPECT_EQ(bad_name.err, "moe run: run name is not valid UTF-8 (byte 0xff at offset 3)\n");
  Proc bad_tag = moe({"runs", "tag", std::to_string(ids[0]), "ok", "\xc3(", "--db", db_});
  EXPECT_EQ(bad_tag.code, 1);
  EXPECT_EQ(bad_tag.err, "moe runs: tag is not valid UTF-8 (byte 0xc3 at offset 0)\n");
  Proc missing = moe({"runs", "show", "no such\nrun \x1b[2J", "--db", db_});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  EXPECT_NE(missing.err.find("no run 'no such\\nrun \\x1b[2J'"), std::string::npos) << missing.err;
  EXPECT_EQ(RunReader(db_).list_runs().size(), h.size() + 2);
}

// The real runtime reads the spec from a hostile path and checkpoints beside a store in a
// hostile directory (STORE-checkpoints/run-ID); the checkpoint records name that directory.
TEST_F(HostileCli, RealRuntimeRunsFromAndCheckpointsIntoHostilePaths) {
  const char* env = std::getenv("MOE_TEST_RUNTIME");
  const std::string runtime = env && *env ? env : MOE_RUNTIME_BIN;
  if (!fs::exists(runtime)) GTEST_SKIP() << "moe-runtime not built at " << runtime;
  const auto h = hostile();
  write_spec(h[0].raw + " " + h[5].raw);
  Proc r = moe({"run", spec_, "--db", db_, "--name", h[6].raw, "--tag", h[1].raw, "--set", "train.steps=2", "--set",
                "runtime.checkpoint_every=1", "--set", "model.n_layers=2", "--set", "model.d_model=32", "--set",
                "model.n_heads=2", "--set", "model.n_kv_heads=2", "--set", "model.moe.d_expert=32", "--set",
                "model.seq_len=32"},
               {"MOE_RUNTIME=" + runtime});
  ASSERT_EQ(r.code, 0) << r.err;
  const int64_t id = std::stoll(r.out);
  const RunInfo info = RunReader(db_).run(id);
  EXPECT_EQ(info.status, "completed");
  EXPECT_EQ(info.name, h[6].raw);
  EXPECT_EQ(info.tags, std::vector<std::string>{h[1].raw});
  const std::string ckpt_root = hdir_ + "/runs 'x' $y-checkpoints/run-" + std::to_string(id);
  Proc ex = moe({"runs", "export", std::to_string(id), "--db", db_});
  ASSERT_EQ(ex.code, 0) << ex.err;
  int checkpoints = 0;
  for (const auto& l : lines(ex.out)) {
    const auto j = nlohmann::json::parse(l);
    if (j["type"] == "run_start") {
      EXPECT_EQ(j["spec"]["name"], h[0].raw + " " + h[5].raw);
    }
    if (j["type"] != "checkpoint") continue;
    ++checkpoints;
    const std::string path = j["path"];
    EXPECT_EQ(path.rfind(ckpt_root, 0), 0u) << path;
    EXPECT_TRUE(fs::exists(fs::path(path) / "config.json")) << path;
  }
  EXPECT_GE(checkpoints, 1) << ex.out;
}

}  // namespace
}  // namespace moe::store
