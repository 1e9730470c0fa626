#pragma once
// The closed sets of values of the job spec's string fields, declared once: each value's name and
// a one-line description (the studio's tooltips). Validation checks against these lists, the Design
// form offers them, and the runtime and the cost model read the typed routing modes below instead
// of comparing strings. A new routing mode, drop policy or placement strategy starts here.
#include <span>
#include <string>
#include <string_view>

#include "job_spec.h"

namespace moe {

struct Choice {
  std::string_view name;
  std::string_view description;
};

// The values of a spec field ("routing.type"); empty for a field without a closed set.
std::span<const Choice> choices_of(std::string_view path);
// "a, b, c": for messages.
std::string choice_names(std::string_view path);
// True when `value` is one of the field's choices.
bool is_choice(std::string_view path, std::string_view value);

// The routing modes, in the order of their lists.
enum class RoutingType { token_choice, expert_choice };
enum class ScoreFn { softmax, sigmoid };
enum class DropPolicy { position, probability };
enum class Recompute { none, stage, full };  // train.recompute

// The typed value of a routing field; throws moe::Error naming the field and the choices when the
// string is none of them.
RoutingType routing_type(const RoutingSpec& r);
ScoreFn score_fn(const RoutingSpec& r);
DropPolicy drop_policy(const RoutingSpec& r);
Recompute recompute_mode(const TrainSpec& t);
std::string_view name_of(RoutingType t);
// Expert choice routing (false for any other value, including an invalid one).
bool is_expert_choice(const RoutingSpec& r);
std::string_view name_of(ScoreFn s);

}  // namespace moe
