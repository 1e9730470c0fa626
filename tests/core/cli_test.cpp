// The `moe` binary end to end: exit codes, one-line errors on stderr, the plan table and JSON,
// and import-hf writing a spec that loads again.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "job_spec.h"
#include "test_paths.h"

using namespace moe;
namespace fs = std::filesystem;

namespace {

struct Result {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string q;
  q.push_back('\'');
  for (char c : s) {
    if (c == '\'') q.append("'\\''");
    else q.push_back(c);
  }
  q.push_back('\'');
  return q;
}

class Cli : public ::testing::Test {
 protected:
  fs::path tmp;
  void SetUp() override {
    tmp = fs::temp_directory_path() /
          ("moe-cli-test-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(tmp);
  }
  void TearDown() override { fs::remove_all(tmp); }

  Result run(const std::vector<std::string>& args) {
    std::string cmd = quote(MOE_CLI_PATH);
    for (const auto& a : args) cmd.append(" ").append(quote(a));
    cmd.append(" >").append(quote((tmp / "out").string())).append(" 2>").append(quote((tmp / "err").string()));
    int status = std::system(cmd.c_str());
    Result r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(tmp / "out");
    r.err = slurp(tmp / "err");
    return r;
  }
  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(tmp / name) << text;
    return tmp / name;
  }
};

// One line, ending in a newline, no other newline: the contract's "one-line reason".
::testing::AssertionResult one_line(const std::string& s) {
  if (!s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "not one line: [" << s << "]";
}

}  // namespace

TEST_F(Cli, PlanPrintsTheBreakdown) {
  Result r = run({"plan", test::preset("mixtral-8x7b").string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* s : {"Parameters", "Memory per GPU", "FLOPs per step", "All-to-all per MoE layer", "Step time",
                        "46.70 B", "MFU", "tokens/s"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  EXPECT_EQ(r.err, "");
}

TEST_F(Cli, PlanJsonAndOverrides) {
  Result r = run({"plan", test::preset("tiny-cpu").string(), "--json", "--set", "model.n_layers=8"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["spec"]["model"]["n_layers"], 8);
  EXPECT_TRUE(j["plan"]["params"]["total"].is_number());
  EXPECT_TRUE(j["diagnostics"].is_array());
  Result h = run({"plan", test::preset("tiny-cpu").string(), "--json", "--hardware", "H100-SXM"});
  ASSERT_EQ(h.rc, 0) << h.err;
  EXPECT_EQ(nlohmann::json::parse(h.out)["plan"]["hardware"], "H100-SXM");
}

TEST_F(Cli, PlanWithAUserHardwareFile) {
  fs::path hw = write("hw.json", R"({"profiles": {"mine": {"memory_gib": 0.05, "peak_tflops_bf16": 1,
      "peak_tflops_fp32": 1, "intra_node_gb_s": 10, "inter_node_gb_s": 1}}})");
  Result r = run({"plan", test::preset("tiny-cpu").string(), "--hardware-file", hw.string(), "--hardware", "mine", "--json"});
  EXPECT_EQ(r.rc, 1);  // 105 MiB do not fit in 0.05 GiB
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["plan"]["hardware"], "mine");
  EXPECT_EQ(j["diagnostics"][0]["severity"], "error");
  EXPECT_NE(r.err.find("exceeds the mine's 51.20 MiB"), std::string::npos) << r.err;
}

TEST_F(Cli, PlanValidationErrorsAndWarningsAreDistinct) {
  Result r = run({"plan", test::preset("tiny-cpu").string(), "--set", "parallel.ep=3", "--set", "train.warmup_steps=100000"});  // > train.steps: a warning
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("ERROR   parallel.ep: 3 does not divide model.moe.num_experts (8)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("warning train.warmup_steps:"), std::string::npos) << r.out;
  EXPECT_TRUE(one_line(r.err));
  EXPECT_NE(r.err.find("error(s); first: parallel.ep: 3 does not divide"), std::string::npos) << r.err;
  // Memory over the device is an error too: Mixtral 8x7B on a single GPU.
  Result m = run({"plan", test::preset("mixtral-8x7b").string(), "--set", "parallel.pp=1", "--set", "parallel.ep=1",
                  "--set", "parallel.gpus_per_node=1", "--set", "cluster.nodes=[{\"host\":\"a\",\"slots\":1}]"});
  EXPECT_EQ(m.rc, 1);
  EXPECT_NE(m.err.find("peak memory per GPU"), std::string::npos) << m.err;
  EXPECT_NE(m.out.find("Memory per GPU"), std::string::npos) << "the breakdown still shows why";
}

TEST_F(Cli, BadInputIsOneLineAndNonZero) {
  struct Case {
    std::vector<std::string> args;
    std::string expect;
    int rc;
  };
  fs::path bad_json = write("bad.json", "{\n  \"name\": \"x\",\n  \"model\": { \"d_model\": 12,, }\n}\n");
  fs::path wrong_type = write("type.json", R"({"model": {"d_model": "big"}})");
  fs::path unknown_key = write("key.json", R"({"modle": {}})");
  fs::path negative = write("neg.json", R"({"model": {"n_layers": -4}})");
  fs::path huge = write("huge.json", R"({"model": {"d_model": 99999999999999999999999}})");
  fs::path empty = write("empty.json", "");
  const std::vector<Case> cases = {
      {{"plan", (tmp / "missing.json").string()}, "missing.json: no such file", 1},
      {{"plan", tmp.string()}, "is a directory, not a file", 1},
      {{"plan", bad_json.string()}, "bad.json:3:28: malformed JSON", 1},
      {{"plan", wrong_type.string()}, "model.d_model: expected an integer, got a string", 1},
      {{"plan", unknown_key.string()}, "modle: unknown key (did you mean 'model'?)", 1},
      {{"plan", negative.string()}, "model.n_layers: -4 must be positive", 1},
      {{"plan", huge.string()}, "huge.json", 1},
      {{"plan", empty.string()}, "empty.json:1:1: malformed JSON", 1},
      {{"plan", test::preset("tiny-cpu").string(), "--hardware", "H100-SMX"}, "did you mean 'H100-SXM'?", 1},
      {{"plan", test::preset("tiny-cpu").string(), "--set", "model.d_model=abc"}, "model.d_model: expected an integer", 1},
      {{"plan"}, "missing SPEC", 2},
      {{"plan", "a.json", "b.json"}, "unexpected argument 'b.json'", 2},
      {{"plan", "a.json", "--jsno"}, "unknown option '--jsno' (did you mean '--json'?)", 2},
      {{"plan", "a.json", "--set"}, "--set needs a value", 2},
      {{"import-hf", (tmp / "none.json").string()}, "none.json: no such file", 1},
      {{"import-hf", bad_json.string()}, "bad.json:3:28: malformed JSON", 1},
      {{"import-hf", test::hf_config("olmoe-1b-7b-0924.json").string()}, "is not supported; supported: MixtralForCausalLM", 1},
      {{"frobnicate"}, "unknown command 'frobnicate'", 2},
      {{"pla"}, "did you mean 'plan'?", 2},
      {{}, "usage: moe COMMAND", 2},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    SCOPED_TRACE(joined);
    Result r = run(c.args);
    EXPECT_EQ(r.rc, c.rc) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    if (!c.args.empty()) {
      EXPECT_TRUE(one_line(r.err));
    }
  }
}

TEST_F(Cli, HelpForEveryCommand) {
  for (const std::vector<std::string>& a :
       std::vector<std::vector<std::string>>{{"--help"}, {"plan", "--help"}, {"import-hf", "-h"}}) {
    Result r = run(a);
    EXPECT_EQ(r.rc, 0);
    EXPECT_NE(r.out.find("usage: moe"), std::string::npos) << r.out;
  }
}

TEST_F(Cli, ImportHfWritesALoadableSpec) {
  fs::path out = tmp / "v3.json";
  Result r = run({"import-hf", test::hf_config("deepseek-v3.json").string(), "-o", out.string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("warning: "), std::string::npos);
  EXPECT_NE(r.err.find("num_nextn_predict_layers"), std::string::npos);
  JobSpec s = load_spec(out);
  EXPECT_EQ(s.model.attention, "mla");
  EXPECT_EQ(s.model.moe.num_experts, 256);
  // To stdout without -o; and to a directory is an error.
  Result p = run({"import-hf", test::hf_config("mixtral-8x7b-v0.1.json").string()});
  ASSERT_EQ(p.rc, 0);
  EXPECT_EQ(nlohmann::json::parse(p.out)["model"]["moe"]["d_expert"], 14336);
  Result d = run({"import-hf", test::hf_config("mixtral-8x7b-v0.1.json").string(), "-o", tmp.string()});
  EXPECT_EQ(d.rc, 1);
  EXPECT_NE(d.err.find("is a directory"), std::string::npos);
}

TEST_F(Cli, ExportWritesEngineSettingsAndCountsWhatItCannotMap) {
  Result r = run({"export", "megatron", test::preset("mixtral-8x7b").string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("--num-experts 8\n"), std::string::npos);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("without a megatron counterpart"), std::string::npos);

  const fs::path out = tmp / "ds.json";
  Result d = run({"export", "deepspeed", test::preset("tiny-cpu").string(), "--set", "routing.type=expert_choice",
                  "-o", out.string()});
  ASSERT_EQ(d.rc, 0) << d.err;
  EXPECT_EQ(d.out, "");
  const auto doc = nlohmann::json::parse(slurp(out));
  EXPECT_EQ(doc["moe_layer"]["k"], 2);
  bool listed = false;
  for (const auto& u : doc["not_exported"]) listed = listed || u["field"] == "routing.type";
  EXPECT_TRUE(listed) << "expert choice must be listed as not exported";

  const fs::path script = tmp / "train.sh";
  ASSERT_EQ(run({"export", "megatron", test::preset("tiny-cpu").string(), "-o", script.string()}).rc, 0);
  EXPECT_TRUE((fs::status(script).permissions() & fs::perms::owner_exec) != fs::perms::none) << "the script is executable";
}

TEST_F(Cli, ExportRefusesBadInputInOneLine) {
  Result e = run({"export", "megatorn", test::preset("tiny-cpu").string()});
  EXPECT_EQ(e.rc, 1);
  EXPECT_TRUE(one_line(e.err)) << e.err;
  EXPECT_NE(e.err.find("did you mean 'megatron'"), std::string::npos) << e.err;
  Result bad = run({"export", "megatron", test::preset("tiny-cpu").string(), "--set", "parallel.ep=3"});
  EXPECT_EQ(bad.rc, 1) << "8 experts do not split over ep 3";
  EXPECT_TRUE(one_line(bad.err)) << bad.err;
  EXPECT_NE(bad.err.find("parallel.ep"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.out, "");
  Result usage = run({"export", "megatron"});
  EXPECT_EQ(usage.rc, 2);
  Result dir = run({"export", "megatron", test::preset("tiny-cpu").string(), "-o", tmp.string()});
  EXPECT_EQ(dir.rc, 1);
  EXPECT_NE(dir.err.find("is a directory"), std::string::npos) << dir.err;
}
