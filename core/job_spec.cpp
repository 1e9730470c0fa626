#include "job_spec.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "error.h"
#include "text_suggest.h"

namespace moe {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MlaSpec, q_lora_rank, kv_lora_rank, qk_nope_head_dim,
                                                qk_rope_head_dim, v_head_dim)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MoeSpec, num_experts, top_k, d_expert, shared_experts,
                                                d_shared_expert, first_dense_layers, router_init)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ModelSpec, vocab_size, seq_len, d_model, n_layers,
                                                attention, n_heads, n_kv_heads, head_dim, mla, d_ff,
                                                rope_theta, norm_eps, tie_embeddings, init_std, moe)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BiasBalancingSpec, enabled, update_rate)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RoutingSpec, type, score, capacity_factor, drop_policy,
                                                aux_loss_coef, z_loss_coef, jitter, norm_topk_prob,
                                                routed_scaling_factor, n_group, topk_group,
                                                bias_balancing)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ParallelSpec, dp, tp, pp, ep, gpus_per_node,
                                                hierarchical_a2a, overlap_chunks, pp_layers,
                                                sequence_parallel, etp, vpp, batch_overlap)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PlacementSpec, strategy, slots_per_rank, map, replica_choice,
                                                replace_every, stats_every)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DataSpec, kind, path, val_fraction)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TrainSpec, steps, micro_batch, grad_accum, lr,
                                                min_lr_ratio, warmup_steps, weight_decay, adam_beta1,
                                                adam_beta2, adam_eps, grad_clip, seed, eval_every, recompute,
                                                data)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RuntimeSpec, backend, dtype, fp8, metrics_every,
                                                checkpoint_every, threads, deterministic)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NodeSpec, host, port, user, slots)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SlurmSpec, partition, account, time_limit)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ClusterSpec, hardware, nodes, slurm)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(JobSpec, schema, name, comment, model, routing,
                                                parallel, placement, train, runtime, cluster)

int64_t ClusterSpec::total_slots() const {
  int64_t total = 0;
  for (const auto& n : nodes) total += n.slots;
  return total;
}

namespace {

using json = nlohmann::json;

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

const char* kind_name(const json& v) {
  switch (v.type()) {
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::null: return "null";
    default: return "an unsupported value";
  }
}

// Every key path of the default document, for "did you mean" across sections.
void collect_paths(const json& node, const std::string& path, std::vector<std::string>& out) {
  if (!node.is_object()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string p = join_path(path, it.key());
    out.push_back(p);
    collect_paths(it.value(), p, out);
  }
  // Array elements share their first element's schema.
}

std::string unknown_key_message(const json& schema, const std::string& path, const std::string& key) {
  std::vector<std::string> siblings;
  for (auto it = schema.begin(); it != schema.end(); ++it) siblings.push_back(it.key());
  std::string msg = join_path(path, key) + ": unknown key";
  std::string hint = closest_match(key, siblings);
  if (hint.empty()) {
    // The key may belong in another section (top_k under routing instead of model.moe).
    std::vector<std::string> all;
    collect_paths(default_spec_json(), "", all);
    for (const auto& p : all) {
      auto dot = p.rfind('.');
      if ((dot == std::string::npos ? p : p.substr(dot + 1)) == key) {
        hint = p;
        break;
      }
    }
  } else {
    hint = join_path(path, hint);
  }
  if (!hint.empty()) msg += " (did you mean '" + hint + "'?)";
  return msg;
}

// Checks `value` against the type of `schema` and returns the merged node.
json merge_node(const json& schema, const json& value, const std::string& path) {
  auto fail = [&](const char* expected) {
    throw Error(path + ": expected " + expected + ", got " + kind_name(value));
  };
  switch (schema.type()) {
    case json::value_t::object: {
      if (!value.is_object()) fail("an object");
      json out = schema;
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!schema.contains(it.key())) throw Error(unknown_key_message(schema, path, it.key()));
        out[it.key()] = merge_node(schema[it.key()], it.value(), join_path(path, it.key()));
      }
      return out;
    }
    case json::value_t::array: {
      if (!value.is_array()) fail("an array");
      json out = json::array();
      const json element = schema.empty() ? json() : schema.front();
      for (size_t i = 0; i < value.size(); ++i)
        out.push_back(merge_node(element, value[i], path + "." + std::to_string(i)));
      return out;
    }
    case json::value_t::string:
      if (!value.is_string()) fail("a string");
      return value;
    case json::value_t::boolean:
      if (!value.is_boolean()) fail("a boolean (true or false)");
      return value;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      if (value.is_number_unsigned() &&
          value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(path + ": " + value.dump() + " is too large");
      if (!value.is_number_integer()) fail("an integer");
      return value.get<int64_t>();
    case json::value_t::number_float:
      if (!value.is_number()) fail("a number");
      if (!std::isfinite(value.get<double>())) throw Error(path + ": must be a finite number");
      return value.get<double>();
    default:
      return value;
  }
}

// Finds the node a dotted path names (array elements by index), or throws an unknown-key error.
json& node_at(json& root, const std::string& dotted) {
  json* node = &root;
  std::string path;
  std::stringstream ss(dotted);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (node->is_array()) {
      char* end = nullptr;
      unsigned long idx = std::strtoul(part.c_str(), &end, 10);
      if (part.empty() || *end != '\0' || idx >= node->size())
        throw Error(join_path(path, part) + ": no such element (the array has " +
                    std::to_string(node->size()) + ")");
      node = &(*node)[idx];
    } else if (node->is_object()) {
      if (!node->contains(part)) throw Error(unknown_key_message(*node, path, part));
      node = &(*node)[part];
    } else {
      throw Error(path + ": is " + kind_name(*node) + ", it has no key '" + part + "'");
    }
    path = join_path(path, part);
  }
  return *node;
}

}  // namespace

const json& default_spec_json() {
  static const json defaults = spec_to_json(JobSpec{});
  return defaults;
}

json resolve_spec_json(const json& user) {
  if (!user.is_object()) throw Error(std::string("spec: expected a JSON object, got ") + kind_name(user));
  json out = merge_node(default_spec_json(), user, "");
  if (out["schema"].get<int64_t>() != 1)
    throw Error("schema: " + out["schema"].dump() + " is not supported (this version reads schema 1)");
  return out;
}

void apply_override(json& resolved, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set " + assignment + ": expected path.to.key=value");
  std::string path = assignment.substr(0, eq);
  std::string text = assignment.substr(eq + 1);
  json& target = node_at(resolved, path);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || (target.is_string() && !value.is_string())) value = text;
  target = merge_node(target, value, path);
}

JobSpec spec_from_json(const json& resolved) { return resolved.get<JobSpec>(); }

RecordedSpec read_recorded_spec(const std::string& text) {
  RecordedSpec out;
  if (json_nesting_exceeds(text)) return out;
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  if (auto name = j.find("name"); name != j.end() && name->is_string()) out.name = name->get<std::string>();
  if (auto train = j.find("train"); train != j.end() && train->is_object())
    if (auto steps = train->find("steps"); steps != train->end() && steps->is_number_integer())
      out.steps = steps->get<int64_t>();
  if (auto parallel = j.find("parallel"); parallel != j.end() && parallel->is_object()) {
    if (auto tp = parallel->find("tp"); tp != parallel->end() && tp->is_number_integer()) out.tp = tp->get<int64_t>();
    if (auto pp = parallel->find("pp"); pp != parallel->end() && pp->is_number_integer()) out.pp = pp->get<int64_t>();
  }
  return out;
}

json spec_to_json(const JobSpec& spec) { return json(spec); }

std::string read_text_file(const std::filesystem::path& file) {
  std::error_code ec;
  auto status = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(status)) throw Error(file.string() + ": no such file");
  if (std::filesystem::is_directory(status)) throw Error(file.string() + ": is a directory, not a file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot be read (permission denied?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(file.string() + ": read error");
  return ss.str();
}

bool json_nesting_exceeds(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

json parse_json_text(const std::string& text, const std::string& origin) {
  if (json_nesting_exceeds(text))
    throw Error(origin + ": malformed JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // Turn the byte offset into line and column.
    size_t offset = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    size_t line = 1 + std::count(text.begin(), text.begin() + offset, '\n');
    size_t last_nl = text.rfind('\n', offset == 0 ? 0 : offset - 1);
    size_t column = (last_nl == std::string::npos || offset == 0) ? offset + 1 : offset - last_nl;
    std::string what = e.what();
    auto pos = what.find("syntax error");
    std::string reason = pos == std::string::npos ? what : what.substr(pos);
    throw Error(origin + ":" + std::to_string(line) + ":" + std::to_string(column) +
                ": malformed JSON: " + reason);
  } catch (const json::exception& e) {  // e.g. a number beyond the range of a double
    throw Error(origin + ": malformed JSON: " + e.what());
  }
}

JobSpec parse_spec(const std::string& text, const std::vector<std::string>& overrides,
                   const std::string& origin) {
  json resolved;
  try {
    resolved = resolve_spec_json(parse_json_text(text, origin));
  } catch (const Error& e) {
    std::string m = e.what();
    if (m.rfind(origin + ":", 0) == 0) throw;
    throw Error(origin + ": " + m);
  }
  for (const auto& o : overrides) apply_override(resolved, o);
  return spec_from_json(resolved);
}

JobSpec load_spec(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  return parse_spec(read_text_file(file), overrides, file.string());
}

void save_spec(const JobSpec& spec, const std::filesystem::path& file) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(file.string() + ": cannot be written");
  out << spec_to_json(spec).dump(2) << "\n";
  if (!out) throw Error(file.string() + ": write failed (disk full?)");
}

}  // namespace moe
