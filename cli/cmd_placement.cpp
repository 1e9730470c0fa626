// `moe placement suggest RUN --db FILE …`: every placement strategy planned from a recorded run's
// routing for its layout (or one changed with --set), side by side; --write-spec saves one plan as
// an explicit placement.map that `moe run` trains. The planning is core/store/placement_suggest.h,
// shared with the studio; this file parses, validates and prints.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "cli_format.h"
#include "commands.h"
#include "error.h"
#include "hardware_profile.h"
#include "job_spec.h"
#include "placement_simulate.h"
#include "placement_suggest.h"
#include "run_reader.h"
#include "spec_validation.h"

namespace moe::cli {

namespace {

const char* kHelp =
    "usage: moe placement suggest RUN --db FILE [--set path.key=value]… [--from STEP] [--to STEP] [--json]\n"
    "                             [--write-spec OUT.json --strategy NAME]\n"
    "       moe placement simulate RUN --db FILE [--set path.key=value]…\n"
    "\n"
    "Plans every expert placement strategy (uniform, replicate, hierarchical, data_driven) from a\n"
    "recorded run's routing (the mean kept rows of each expert per step and the summed co-selection\n"
    "samples over the step window) for the run's layout, and prints each plan's figures. RUN is a run\n"
    "id or name. The layout is the run's recorded spec with the --set overrides, e.g.\n"
    "--set parallel.gpus_per_node=2 --set placement.slots_per_rank=3. docs/placement.md section 8.\n"
    "\n"
    "  --db FILE              the run store\n"
    "  --set path.key=value   override a field of the run's recorded spec (repeatable)\n"
    "  --from STEP, --to STEP the step window (default: the whole run)\n"
    "  --json                 print the same as JSON (with each plan's map)\n"
    "  --write-spec OUT.json  write the spec with --strategy's plan as placement.strategy \"explicit\"\n"
    "                         and its placement.map, for `moe run OUT.json`\n"
    "  --strategy NAME        the plan --write-spec writes: uniform, replicate, hierarchical, data_driven\n"
    "\n"
    "Columns: max/mean = the EP members' computed rows, most loaded over mean (1 = balanced), mean\n"
    "over MoE layers; inter-node = the flat all-to-all's inter-node share of its off-rank bytes;\n"
    "hier rows/step = cross-node rows per step of the hierarchical exchange (one copy per token and\n"
    "node; dispatch, all MoE layers, the recorded batch), estimated from the co-selection (exact for\n"
    "top-2); a2a ms/step = the flat exchanges on the spec's hardware profile. Senders are taken to\n"
    "route alike (the store has per-expert totals, not per-sender counts).\n"
    "\n"
    "\n"
    "simulate replays the routing the run recorded at its sampled steps (placement.stats_every: the\n"
    "rows each rank sent to each expert slot) under the placement it used and under every strategy's\n"
    "plan, with the flat all-to-all's byte counting, and checks that the placement it used gives each\n"
    "rank's measured bytes exactly (docs/placement.md section 10).\n"
    "\n"
    "Exit status: 0 success, 1 a failure (one line on stderr), 2 usage.\n";

int64_t step_option(const Args& args, const std::string& name, int64_t fallback) {
  const std::string v = args.value(name);
  if (v.empty()) return fallback;
  if (v.find_first_not_of("0123456789") != std::string::npos || v.size() > 18)
    throw UsageError{name + ": '" + v + "' is not a step number"};
  return std::stoll(v);
}

std::string num(double v, int decimals) { return std::isfinite(v) ? fmt_fixed(v, decimals) : "-"; }

// The layout the plans are for: the spec with its own strategy set aside (the strategies are what
// is compared; "uniform" would refuse spare slots), validated on its hardware. Errors name the field.
void check_layout(const JobSpec& spec, const HardwareProfile& hw, const std::string& origin) {
  JobSpec layout = spec;
  layout.placement.strategy = "replicate";
  layout.placement.map.clear();
  for (const Diagnostic& d : validate_spec(layout, &hw))
    if (d.severity == Severity::error) throw Error(origin + ": " + d.path + ": " + d.message);
}

int64_t node_count(const std::vector<int64_t>& node_of_member) {
  return static_cast<int64_t>(std::set<int64_t>(node_of_member.begin(), node_of_member.end()).size());
}

nlohmann::json to_json(const store::RunInfo& info, const JobSpec& spec, const store::RecordedRouting& r,
                       const std::vector<store::PlacementSuggestion>& plans, const HardwareProfile& hw) {
  const PlacementInput in = placement_input(spec);
  nlohmann::json out;
  out["run"] = {{"id", info.id}, {"name", info.name}};
  out["layout"] = {{"experts", spec.model.moe.num_experts}, {"moe_layers", spec.model.moe_layers()},
                   {"ep", spec.parallel.ep}, {"nodes", node_count(in.node_of_member)},
                   {"slots_per_rank", in.slots() / std::max<int64_t>(in.ep, 1)},
                   {"replica_choice", spec.placement.replica_choice}, {"hardware", hw.name}};
  out["window"] = {{"first_step", r.first_step}, {"last_step", r.last_step}, {"steps", r.steps},
                   {"coselection_samples", r.coselection_samples}};
  out["suggestions"] = nlohmann::json::array();
  for (const auto& s : plans) {
    nlohmann::json j = {{"strategy", s.strategy}};
    if (!s.error.empty()) {
      j["error"] = s.error;
    } else {
      j["max_over_mean"] = s.max_over_mean;
      j["inter_share"] = s.inter_share;
      j["hier_inter_rows"] = s.hier_inter_rows;
      j["a2a_seconds"] = std::isfinite(s.a2a_seconds) ? nlohmann::json(s.a2a_seconds) : nlohmann::json();
      nlohmann::json map = nlohmann::json::array();
      for (const auto& l : s.placement) map.push_back(l.phy_to_log);
      j["map"] = map;
    }
    out["suggestions"].push_back(j);
  }
  return out;
}

void print_table(const store::RunInfo& info, const JobSpec& spec, const store::RecordedRouting& r,
                 const std::vector<store::PlacementSuggestion>& plans, const HardwareProfile& hw) {
  const PlacementInput in = placement_input(spec);
  const int64_t nodes = node_count(in.node_of_member);
  std::printf("moe placement suggest: run %lld %s, %lld experts × %zu recorded MoE layer(s)\n",
              static_cast<long long>(info.id), display_text(info.name).c_str(),
              static_cast<long long>(spec.model.moe.num_experts), r.layers.size());
  std::printf("layout: ep %lld on %lld node(s), %lld slot(s) per rank, replica choice %s, %s on %s\n\n",
              static_cast<long long>(spec.parallel.ep), static_cast<long long>(nodes),
              static_cast<long long>(in.slots() / std::max<int64_t>(in.ep, 1)), spec.placement.replica_choice.c_str(),
              spec.runtime.dtype.c_str(), hw.name.c_str());
  std::printf("  %-13s %9s %11s %16s %12s\n", "strategy", "max/mean", "inter-node", "hier rows/step", "a2a ms/step");
  for (const auto& s : plans) {
    if (!s.error.empty()) {
      std::printf("  %-13s %9s %11s %16s %12s  cannot place: %s\n", s.strategy.c_str(), "-", "-", "-", "-",
                  one_line(s.error).c_str());
      continue;
    }
    std::printf("  %-13s %9s %11s %16s %12s\n", s.strategy.c_str(), num(s.max_over_mean, 3).c_str(),
                fmt_percent(s.inter_share).c_str(), num(s.hier_inter_rows, 1).c_str(), num(s.a2a_seconds * 1e3, 3).c_str());
  }
  int64_t sampled_layers = 0;
  for (int64_t n : r.coselection_layer_samples) sampled_layers += n > 0;
  std::printf("\nwindow: steps %lld–%lld (%lld step(s) with expert_load records); %lld co-selection sample(s) over %lld layer(s)\n",
              static_cast<long long>(r.first_step), static_cast<long long>(r.last_step), static_cast<long long>(r.steps),
              static_cast<long long>(r.coselection_samples), static_cast<long long>(sampled_layers));
  if (r.coselection_samples == 0)
    std::printf("(no co-selection samples: data_driven plans from the loads alone; hier rows count every copy apart)\n");
}

const store::PlacementSuggestion& chosen(const std::vector<store::PlacementSuggestion>& plans, const std::string& name) {
  std::string names;
  for (const auto& s : plans) {
    if (s.strategy == name) return s;
    names += (names.empty() ? "" : ", ") + s.strategy;
  }
  throw UsageError{"--strategy: '" + name + "' is not one of: " + names};
}

int simulate(const Args& args) {
  if (args.positionals().size() != 2) throw UsageError{"simulate takes one RUN (an id or a name)"};
  const std::string db = args.value("--db");
  if (db.empty()) throw UsageError{"--db FILE is required"};
  store::RunReader reader(db);
  const int64_t id = reader.find_run(args.positionals()[1]);
  const store::RunInfo info = reader.run(id);
  const JobSpec spec = parse_spec(reader.spec_json(id), args.values("--set"), "run " + std::to_string(id) + "'s spec");
  const store::Simulation sim = store::simulate_placements(reader, id, spec);
  std::printf("moe placement simulate: run %lld %s, %lld sampled (step, layer) pair(s), ep %lld\n\n",
              static_cast<long long>(info.id), display_text(info.name).c_str(), static_cast<long long>(sim.samples),
              static_cast<long long>(spec.parallel.ep));
  std::printf("  %-13s %14s %14s %9s %12s\n", "placement", "cross-node MB", "intra-node MB", "max/mean", "a2a ms");
  for (const auto& p : sim.placements) {
    if (!p.error.empty()) {
      std::printf("  %-13s %14s %14s %9s %12s  cannot place: %s\n", p.strategy.c_str(), "-", "-", "-", "-",
                  one_line(p.error).c_str());
      continue;
    }
    std::printf("  %-13s %14s %14s %9s %12s\n", p.strategy.c_str(), num(p.inter_bytes / 1e6, 3).c_str(),
                num(p.intra_bytes / 1e6, 3).c_str(), num(p.max_over_mean, 3).c_str(), num(p.a2a_seconds * 1e3, 3).c_str());
  }
  std::printf("\n(dispatch, forward, summed over the samples; a2a ms: the four flat exchanges of a sample, mean)\n");
  if (sim.hierarchical)
    std::printf("the run used the hierarchical exchange: its measured bytes are not the flat ones, nothing to check\n");
  else
    std::printf("recorded placement replayed: measured bytes of every rank reproduced exactly in %lld of %lld sample(s)%s\n",
                static_cast<long long>(sim.exact), static_cast<long long>(sim.samples),
                sim.first_mismatch.empty() ? "" : (" (" + sim.first_mismatch + ")").c_str());
  std::fflush(stdout);
  return sim.hierarchical || sim.exact == sim.samples ? 0 : 1;
}

}  // namespace

int cmd_placement(const std::vector<std::string>& argv) {
  Args args("placement", argv, {"--json"}, {"--db", "--set", "--from", "--to", "--write-spec", "--strategy"});
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.positionals().empty() && args.positionals()[0] == "simulate") return simulate(args);
  if (args.positionals().empty() || args.positionals()[0] != "suggest")
    throw UsageError{args.positionals().empty() ? "which? suggest or simulate"
                                                : "unknown subcommand '" + args.positionals()[0] + "' (suggest, simulate)"};
  if (args.positionals().size() != 2) throw UsageError{"suggest takes one RUN (an id or a name)"};
  const std::string db = args.value("--db");
  if (db.empty()) throw UsageError{"--db FILE is required"};
  const std::string out_file = args.value("--write-spec"), strategy = args.value("--strategy");
  if (out_file.empty() != strategy.empty()) throw UsageError{"--write-spec OUT.json and --strategy NAME go together"};
  const int64_t first = step_option(args, "--from", 0), last = step_option(args, "--to", -1);

  store::RunReader reader(db);
  const int64_t id = reader.find_run(args.positionals()[1]);
  const store::RunInfo info = reader.run(id);
  const std::string origin = "run " + std::to_string(id) + "'s spec";
  const JobSpec spec = parse_spec(reader.spec_json(id), args.values("--set"), origin);
  const HardwareProfile& hw = find_hardware(builtin_hardware_profiles(), spec.cluster.hardware);
  check_layout(spec, hw, origin);
  const store::RecordedRouting routing = store::recorded_routing(reader, id, first, last);
  const std::vector<store::PlacementSuggestion> plans = store::suggest_placements(spec, routing, hw);

  if (!out_file.empty()) {
    const JobSpec written = store::with_placement(spec, chosen(plans, strategy));
    for (const Diagnostic& d : validate_spec(written, &hw))
      if (d.severity == Severity::error) throw Error("the " + strategy + " plan's spec: " + d.path + ": " + d.message);
    save_spec(written, out_file);
  }
  if (args.flag("--json")) std::cout << to_json(info, spec, routing, plans, hw).dump(2) << "\n";
  else print_table(info, spec, routing, plans, hw);
  std::fflush(stdout);
  if (!out_file.empty())
    std::fprintf(stderr, "moe placement: wrote %s (the %s plan as an explicit placement.map)\n", out_file.c_str(),
                 strategy.c_str());
  return 0;
}

}  // namespace moe::cli
