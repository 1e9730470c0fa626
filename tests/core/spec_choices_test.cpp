// The spec's closed value sets are declared once (spec_choices.h): validation, placement and the
// typed routing modes read the same lists.
#include <gtest/gtest.h>

#include "error.h"
#include "expert_placement.h"
#include "job_spec.h"
#include "spec_choices.h"
#include "spec_validation.h"

using namespace moe;

TEST(SpecChoices, EveryListedValueIsDescribedAndTheDefaultsAreAmongThem) {
  const JobSpec d;
  const std::pair<const char*, std::string> fields[] = {
      {"routing.type", d.routing.type},       {"routing.score", d.routing.score},
      {"routing.drop_policy", d.routing.drop_policy}, {"placement.strategy", d.placement.strategy},
      {"placement.replica_choice", d.placement.replica_choice},
      {"model.attention", d.model.attention}, {"train.data.kind", d.train.data.kind},
      {"runtime.backend", d.runtime.backend}, {"runtime.dtype", d.runtime.dtype}};
  for (const auto& [path, value] : fields) {
    ASSERT_FALSE(choices_of(path).empty()) << path;
    for (const Choice& c : choices_of(path)) EXPECT_FALSE(c.description.empty()) << path << " " << c.name;
    EXPECT_TRUE(is_choice(path, value)) << path << " default '" << value << "'";
  }
  EXPECT_TRUE(choices_of("model.d_model").empty());  // not a closed set
}

// Validation accepts exactly the listed values and names them when it refuses one.
TEST(SpecChoices, ValidationAcceptsTheListAndNamesItWhenRefusing) {
  for (const Choice& c : choices_of("routing.drop_policy")) {
    const auto ds = validate_spec(parse_spec("{}", {"routing.drop_policy=" + std::string(c.name)}));
    for (const auto& d : ds) EXPECT_NE(d.path, "routing.drop_policy") << d.text();
  }
  bool named = false;
  for (const auto& d : validate_spec(parse_spec("{}", {"routing.drop_policy=random"})))
    named |= d.path == "routing.drop_policy" && d.message == "'random' is not one of: " + choice_names("routing.drop_policy");
  EXPECT_TRUE(named);
  // Every listed strategy but "explicit" (a map in the spec, not a function) is a place_experts one.
  EXPECT_EQ(placement_strategies().size() + 1, choices_of("placement.strategy").size());
  for (const std::string& s : placement_strategies()) EXPECT_TRUE(is_choice("placement.strategy", s)) << s;
  EXPECT_TRUE(is_choice("placement.strategy", "explicit"));
}

TEST(SpecChoices, TypedRoutingModesFollowTheListsAndRefuseOthersNamingTheField) {
  RoutingSpec r;
  r.type = "expert_choice", r.score = "sigmoid", r.drop_policy = "probability";
  EXPECT_EQ(routing_type(r), RoutingType::expert_choice);
  EXPECT_EQ(score_fn(r), ScoreFn::sigmoid);
  EXPECT_EQ(drop_policy(r), DropPolicy::probability);
  EXPECT_TRUE(is_expert_choice(r));
  EXPECT_EQ(name_of(RoutingType::token_choice), choices_of("routing.type")[0].name);
  r.type = "top2";
  EXPECT_FALSE(is_expert_choice(r));
  try {
    routing_type(r);
    FAIL() << "no error for an unknown routing type";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "routing.type: 'top2' is not one of: token_choice, expert_choice");
  }
}
