#include "job_spec.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "error.h"

using namespace moe;
using nlohmann::json;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::filesystem::path temp_file(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / "moe_spec_test";
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  std::ofstream(p) << text;
  return p;
}

}  // namespace

TEST(JobSpec, EmptyObjectGivesDefaults) {
  JobSpec s = parse_spec("{}");
  EXPECT_EQ(s.model.moe.num_experts, 8);
  EXPECT_EQ(s.routing.type, "token_choice");
  EXPECT_EQ(s.cluster.nodes.size(), 1u);
}

TEST(JobSpec, RoundTripIsLossless) {
  JobSpec s = parse_spec(R"({"name":"rt","model":{"rope_theta":1000000.5,"moe":{"top_k":1}},
                            "routing":{"capacity_factor":0.1},"train":{"lr":0.00031},
                            "cluster":{"nodes":[{"host":"a","slots":4},{"host":"b","slots":4,"port":2222}]}})");
  auto file = temp_file("rt.json", "");
  save_spec(s, file);
  JobSpec back = load_spec(file);
  EXPECT_EQ(spec_to_json(back), spec_to_json(s));
  EXPECT_EQ(back.train.lr, 0.00031);
  EXPECT_EQ(back.cluster.nodes[1].port, 2222);
  EXPECT_EQ(back.cluster.nodes[1].user, "");  // array elements get their defaults too
}

TEST(JobSpec, UnknownKeySuggestsSibling) {
  EXPECT_EQ(error_of([] { parse_spec(R"({"model":{"moe":{"num_expert":8}}})", {}, "s.json"); }),
            "s.json: model.moe.num_expert: unknown key (did you mean 'model.moe.num_experts'?)");
}

TEST(JobSpec, UnknownKeySuggestsOtherSection) {
  EXPECT_EQ(error_of([] { parse_spec(R"({"routing":{"top_k":2}})", {}, "s.json"); }),
            "s.json: routing.top_k: unknown key (did you mean 'model.moe.top_k'?)");
}

TEST(JobSpec, WrongTypesNameThePath) {
  EXPECT_EQ(error_of([] { parse_spec(R"({"model":{"d_model":"128"}})", {}, "s"); }),
            "s: model.d_model: expected an integer, got a string");
  EXPECT_EQ(error_of([] { parse_spec(R"({"model":{"d_model":128.5}})", {}, "s"); }),
            "s: model.d_model: expected an integer, got a number");
  EXPECT_EQ(error_of([] { parse_spec(R"({"parallel":{"hierarchical_a2a":1}})", {}, "s"); }),
            "s: parallel.hierarchical_a2a: expected a boolean (true or false), got an integer");
  EXPECT_EQ(error_of([] { parse_spec(R"({"cluster":{"nodes":[{"slots":null}]}})", {}, "s"); }),
            "s: cluster.nodes.0.slots: expected an integer, got null");
  EXPECT_EQ(error_of([] { parse_spec(R"([1,2])", {}, "s"); }), "s: spec: expected a JSON object, got an array");
}

TEST(JobSpec, IntegersBeyondInt64AreRefused) {
  EXPECT_EQ(error_of([] { parse_spec(R"({"train":{"steps":18446744073709551615}})", {}, "s"); }),
            "s: train.steps: 18446744073709551615 is too large");
  EXPECT_NE(error_of([] { parse_spec(R"({"train":{"steps":1e400}})", {}, "s"); }), "");
}

TEST(JobSpec, MalformedJsonReportsLineAndColumn) {
  std::string msg = error_of([] { parse_spec("{\n  \"name\": \"x\",\n  \"model\": {,}\n}", {}, "bad.json"); });
  EXPECT_EQ(msg.rfind("bad.json:3:13: malformed JSON", 0), 0u) << msg;
}

TEST(JobSpec, MissingFileAndDirectory) {
  EXPECT_EQ(error_of([] { load_spec("/nonexistent/spec.json"); }), "/nonexistent/spec.json: no such file");
  EXPECT_EQ(error_of([] { load_spec("/tmp"); }), "/tmp: is a directory, not a file");
}

TEST(JobSpec, OverridesAreTypeChecked) {
  JobSpec s = parse_spec("{}", {"parallel.ep=4", "routing.type=expert_choice", "routing.jitter=0.01",
                                "train.lr=1", "cluster.nodes.0.host=node-a", "name=123",
                                "parallel.hierarchical_a2a=true"});
  EXPECT_EQ(s.parallel.ep, 4);
  EXPECT_EQ(s.routing.type, "expert_choice");
  EXPECT_DOUBLE_EQ(s.routing.jitter, 0.01);
  EXPECT_DOUBLE_EQ(s.train.lr, 1.0);  // an integer is a valid number
  EXPECT_EQ(s.cluster.nodes[0].host, "node-a");
  EXPECT_EQ(s.name, "123");  // a string field takes the text as is
  EXPECT_TRUE(s.parallel.hierarchical_a2a);
  EXPECT_EQ(error_of([] { parse_spec("{}", {"parallel.ep=four"}); }),
            "parallel.ep: expected an integer, got a string");
  EXPECT_EQ(error_of([] { parse_spec("{}", {"parallel.epp=4"}); }),
            "parallel.epp: unknown key (did you mean 'parallel.ep'?)");
  EXPECT_EQ(error_of([] { parse_spec("{}", {"cluster.nodes.3.host=x"}); }),
            "cluster.nodes.3: no such element (the array has 1)");
  EXPECT_EQ(error_of([] { parse_spec("{}", {"parallel.ep"}); }), "--set parallel.ep: expected path.to.key=value");
}

TEST(JobSpec, UnsupportedSchemaVersion) {
  EXPECT_EQ(error_of([] { parse_spec(R"({"schema":2})", {}, "s"); }),
            "s: schema: 2 is not supported (this version reads schema 1)");
}
