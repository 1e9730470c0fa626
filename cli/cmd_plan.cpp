// `moe plan SPEC [--set k=v]… [--hardware NAME] [--json]`: validates a spec against its hardware
// and prints the cost model's breakdown (parameters, memory, FLOPs, all-to-all, step time).
#include <cstdio>
#include <iostream>

#include "cli_args.h"
#include "cli_format.h"
#include "commands.h"
#include "a2a_simulator.h"
#include "cost_model.h"
#include "error.h"
#include "hardware_profile.h"
#include "pipeline_schedule.h"
#include "job_spec.h"

namespace moe::cli {

namespace {

const char* kHelp =
    "usage: moe plan SPEC [--set path.key=value]… [--hardware NAME] [--hardware-file FILE] [--json]\n"
    "\n"
    "Validates SPEC (a job spec JSON) and estimates, for one GPU of its layout on its hardware\n"
    "profile (cluster.hardware, from resources/hardware.json): parameters, memory by component and\n"
    "peak, FLOPs per step, all-to-all bytes (intra/inter node, flat and hierarchical) and step time,\n"
    "tokens/s, MFU and the communication-to-computation ratio. Formulas: docs/cost-model.md.\n"
    "\n"
    "  --set path.key=value   override a spec field (repeatable), e.g. --set parallel.ep=4\n"
    "  --hardware NAME        use this hardware profile instead of cluster.hardware\n"
    "  --hardware-file FILE   read profiles from FILE instead of resources/hardware.json\n"
    "  --json                 print {spec, diagnostics, plan} as JSON for tools\n"
    "  --simulate-a2a         also simulate one expert all-to-all at 8 … 8192 GPUs (NVLink inside a\n"
    "                         node, rail-optimised InfiniBand across; flat and hierarchical)\n"
    "  --skew S               routing skew for the simulation: expert popularity ∝ rank^-S\n"
    "                         (repeatable; default 0 = uniform and 0.5)\n"
    "\n"
    "Exit status: 0 valid (warnings allowed), 1 validation errors or unreadable input, 2 usage.\n";

void row(const std::string& label, const std::string& a, const std::string& b = "") {
  std::printf("  %-34s %16s  %s\n", label.c_str(), a.c_str(), b.c_str());
}

void print_plan(const JobSpec& s, const HardwareProfile& hw, const Plan& pl) {
  const ParamBreakdown& p = pl.params;
  const MemoryBreakdown& m = pl.memory;
  const FlopBreakdown& f = pl.flops;
  const A2aBreakdown& a = pl.a2a;
  const TimeBreakdown& t = pl.time;
  const ParallelSpec& par = s.parallel;

  std::printf("\nParameters\n");
  row("total", fmt_count(p.total), "without embedding and head: " + fmt_count(p.total_no_embeddings));
  row("active per token", fmt_count(p.active), "incl. embedding and head (Mistral, Qwen)");
  row("  without embedding, with head", fmt_count(p.active_with_head), "(DeepSeek)");
  row("  without embedding and head", fmt_count(p.active_no_embeddings), "");
  row("routed experts", fmt_count(p.routed_experts), fmt_count(p.expert) + " per expert");
  row("attention / shared experts", fmt_count(p.attention), fmt_count(p.shared_experts));
  row("per GPU (stage " + std::to_string(m.stage) + ")", fmt_count(p.per_gpu),
      "dense " + fmt_count(p.dense_per_gpu) + " (×" + std::to_string(par.dp * par.ep) + " replicas), expert " +
          fmt_count(p.expert_per_gpu) + " (×" + std::to_string(par.dp) + ")");

  std::printf("\nMemory per GPU (stage %lld; %s)\n", (long long)m.stage,
              s.runtime.dtype == "bf16" ? "bf16 weights and gradients, fp32 master weights and Adam state"
                                        : "fp32 weights, gradients and Adam state");
  row("weights", fmt_bytes(m.weights));
  row("gradients", fmt_bytes(m.gradients));
  row("optimizer state", fmt_bytes(m.optimizer));
  const std::string in_flight = fmt_fixed(m.micro_batches_in_flight, par.vpp > 1 ? 2 : 0) + " micro-batch(es) in flight";
  row("activations", fmt_bytes(m.activations),
      s.train.recompute == "none"
          ? fmt_bytes(m.activations_per_micro_batch) + " × " + in_flight + ", no recomputation"
          : "train.recompute " + s.train.recompute + ": the inputs of " + in_flight + " and one " +
                (s.train.recompute == "stage" ? "chunk's" : "layer's") + " activations (all of a micro-batch's: " +
                fmt_bytes(m.activations_per_micro_batch) + ")");
  row("logits (fp32, last stage)", fmt_bytes(m.logits));
  row("all-to-all buffers", fmt_bytes(m.a2a_buffers),
      s.routing.dropless() ? "dropless, balanced; worst case " + fmt_bytes(m.a2a_dropless_bound)
                           : "capacity mode; dropless would be " + fmt_bytes(m.a2a_dropless_expected));
  row("peak", fmt_bytes(m.peak), fmt_percent(m.fraction) + " of " + hw.name + "'s " + fmt_bytes(m.device));

  std::printf("\nFLOPs per step (forward + backward, %s tokens)\n", fmt_count(pl.tokens_per_step).c_str());
  row("dense matmuls", fmt_flops(f.dense_matmul));
  row("routed experts", fmt_flops(f.expert_matmul));
  row("attention scores (causal)", fmt_flops(f.attention));
  row("output head", fmt_flops(f.head));
  row("total", fmt_flops(f.per_step), fmt_flops(f.per_gpu) + " per GPU");

  std::printf("\nAll-to-all per MoE layer, one GPU (%s, %s per token copy)\n",
              par.hierarchical_a2a ? "hierarchical" : "flat", fmt_bytes(a.bytes_per_copy).c_str());
  row("tokens per rank per micro-batch", fmt_count(a.tokens_per_rank),
      s.routing.dropless() ? "dropless: expected copies under uniform routing"
                           : "capacity " + fmt_count(a.capacity_per_expert) + " per expert, " +
                                 fmt_fixed(100 * a.kept_share, 1) + "% of copies kept (expected, uniform routing)");
  row("dispatch fwd / combine fwd", fmt_bytes(a.dispatch_fwd), fmt_bytes(a.combine_fwd) + " per micro-batch");
  row("dispatch bwd / combine bwd", fmt_bytes(a.dispatch_bwd), fmt_bytes(a.combine_bwd) + " per micro-batch");
  row("per layer per step", fmt_bytes(a.per_layer_step),
      std::to_string(a.ep_ranks_per_node) + " EP rank(s) per node, EP group on " + std::to_string(a.ep_nodes) +
          " node(s)");
  row("  flat: intra / inter node", fmt_bytes(a.flat_intra), fmt_bytes(a.flat_inter));
  row("  hierarchical: intra / inter", fmt_bytes(a.hier_intra),
      fmt_bytes(a.hier_inter) + " (inter-node ÷" + fmt_fixed(a.hier_inter_ratio, 2) + ")");

  const bool fp8 = s.runtime.fp8 != "off" && hw.peak_flops_fp8 > 0;
  std::printf("\nStep time (%s: %s/s %s%s at %s efficiency)\n", hw.name.c_str(),
              fmt_flops(hw.peak_flops(s.runtime.dtype)).c_str(), s.runtime.dtype.c_str(),
              fp8 ? (", linear layers " + fmt_flops(hw.peak_flops_fp8) + "/s fp8").c_str() : "",
              fmt_percent(hw.efficiency).c_str());
  row("compute", fmt_seconds(t.compute),
      par.batch_overlap && hw.sms > 0 ? "paired micro-batches on " + fmt_count(hw.sms - 20) + " of " + fmt_count(hw.sms) + " SMs" : "");
  row("all-to-all", fmt_seconds(t.a2a), "exposed " + fmt_seconds(t.a2a_exposed) + " with " +
                                             std::to_string(par.overlap_chunks) + " overlap chunk(s)" +
                                             (par.batch_overlap ? ", " + fmt_seconds(t.a2a_batch_hidden) + " hidden by batch overlap (" +
                                                                      fmt_percent(t.overlap_paired) + " of micro-batches paired)"
                                                                : ""));
  row(par.sequence_parallel ? "tensor-parallel gather/scatter" : "tensor-parallel all-reduce", fmt_seconds(t.tp),
      t.tp_bytes > 0 ? fmt_bytes(t.tp_bytes) + " payload per step" +
                           (t.etp_bytes > 0 ? " + expert rows " + fmt_bytes(t.etp_bytes) + " (etp " + std::to_string(par.etp) + ")" : "")
                     : "");
  if (par.pp > 1) {
    std::string split;
    for (int64_t n : layers_per_stage(s.model.n_layers, par.pp, par.pp_layers)) split += (split.empty() ? "" : " + ") + std::to_string(n);
    row("pipeline stages", std::to_string(par.pp), split + " layers" + (par.pp_layers.empty() ? " (even split)" : " (parallel.pp_layers)"));
  }
  row("pipeline send/recv", fmt_seconds(t.pp_p2p),
      t.pp_bytes > 0 ? fmt_bytes(t.pp_bytes) + " per middle stage's rank per step" +
                           (par.vpp > 1 ? ", exposed " + fmt_seconds(t.pp_p2p_exposed) + " (overlapped with the next chunk)" : "")
                     : "");
  row("pipeline bubble", fmt_seconds(t.bubble),
      par.pp > 1 ? fmt_percent(t.pp_idle_share) + " of each stage's time on average (" +
                       (par.vpp > 1 ? "interleaved 1F1B, " + std::to_string(par.vpp) + " virtual stages, " : "1F1B, ") +
                       std::to_string(s.train.grad_accum) + (s.train.grad_accum == 1 ? " micro-batch" : " micro-batches") +
                       "; equal stages: " + fmt_percent(bubble_fraction(par.pp, s.train.grad_accum * par.vpp)) + ")"
                 : "");
  if (t.recompute > 0)
    row("recomputed forwards", fmt_seconds(t.recompute), "in compute (train.recompute " + s.train.recompute + ")");
  std::string sums;  // the gradient sums' payload per group
  for (const auto& [group, bytes] : {std::pair{"dense_dp", t.dense_dp_bytes}, std::pair{"expert_dp", t.expert_dp_bytes},
                                     std::pair{"tp", t.tp_grad_bytes}, std::pair{"etp_copies", t.etp_copy_bytes},
                                     std::pair{"replicas", t.replica_bytes}})
    if (bytes > 0) sums += (sums.empty() ? "" : ", ") + std::string(group) + " " + fmt_bytes(bytes);
  row("gradient all-reduces", fmt_seconds(t.dp), sums.empty() ? "" : sums + " per step");
  row("step", fmt_seconds(t.step));
  row("tokens/s", fmt_count(t.tokens_per_s));
  row("MFU", fmt_percent(t.mfu));
  row("communication / computation", fmt_percent(t.comm_ratio),
      std::string(t.comm_ok ? "ok (< 30%)" : "over the 30% target") + "; all-to-all alone " +
          fmt_percent(t.a2a_ratio));
}

std::vector<double> skews_of(const Args& args) {
  std::vector<double> skews;
  for (const auto& v : args.values("--skew")) {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(x >= 0) || x > 10) throw UsageError{"--skew '" + v + "' is not a number in [0, 10]"};
    skews.push_back(x);
  }
  return skews.empty() ? std::vector<double>{0.0, 0.5} : skews;
}

nlohmann::json sim_to_json(const std::vector<A2aSimResult>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows)
    out.push_back({{"gpus", r.c.gpus}, {"skew", r.c.skew}, {"hierarchical", r.c.hierarchical}, {"ep", r.ep},
                   {"nodes", r.nodes}, {"send_intra", r.send_intra}, {"send_inter", r.send_inter},
                   {"recv_intra", r.recv_intra}, {"recv_inter", r.recv_inter}, {"mean_send_inter", r.mean_send_inter},
                   {"load_max_over_mean", r.load_max_over_mean}, {"seconds", r.seconds}});
  return out;
}

void print_sim(const JobSpec& s, const HardwareProfile& hw, const std::vector<A2aSimResult>& rows) {
  std::printf("\nAll-to-all at scale: one dispatch of one MoE layer, the slowest GPU (%s; NVLink %s/s, IB %s/s per GPU,\n"
              "latency %.1f / %.1f us per stage; tp %lld, %lld GPUs per node; docs/cost-model.md §9)\n",
              hw.name.c_str(), fmt_bytes(hw.intra_node_bw).c_str(), fmt_bytes(hw.inter_node_bw).c_str(),
              hw.intra_node_latency * 1e6, hw.inter_node_latency * 1e6, (long long)s.parallel.tp,
              (long long)s.parallel.gpus_per_node);
  std::printf("  %6s %5s %5s %6s  %10s %10s  %10s %10s  %9s\n", "GPUs", "EP", "nodes", "skew", "flat", "hier",
              "IB flat", "IB hier", "max/mean");
  for (size_t i = 0; i + 1 < rows.size(); i += 2) {
    const A2aSimResult& f = rows[i];
    const A2aSimResult& h = rows[i + 1];
    std::printf("  %6lld %5lld %5lld %6.2f  %10s %10s  %10s %10s  %9.3f\n", (long long)f.c.gpus, (long long)f.ep,
                (long long)f.nodes, f.c.skew, fmt_seconds(f.seconds).c_str(), fmt_seconds(h.seconds).c_str(),
                fmt_bytes(std::max(f.send_inter, f.recv_inter)).c_str(),
                fmt_bytes(std::max(h.send_inter, h.recv_inter)).c_str(), f.load_max_over_mean);
  }
}

}  // namespace

int cmd_plan(const std::vector<std::string>& argv) {
  Args args("plan", argv, {"--json", "--simulate-a2a"}, {"--set", "--hardware", "--hardware-file", "--skew"});
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  args.expect_positionals(1, "SPEC (a job spec JSON file)");
  const std::string file = args.positionals()[0];
  std::vector<std::string> overrides = args.values("--set");
  if (!args.value("--hardware").empty()) overrides.push_back("cluster.hardware=" + args.value("--hardware"));
  const JobSpec spec = load_spec(file, overrides);

  std::vector<HardwareProfile> from_file;
  if (!args.value("--hardware-file").empty()) from_file = load_hardware_profiles(args.value("--hardware-file"));
  const HardwareProfile& hw =
      find_hardware(from_file.empty() ? builtin_hardware_profiles() : from_file, spec.cluster.hardware);

  const std::vector<Diagnostic> diags = validate_spec(spec, &hw);
  const bool spec_ok = !has_errors(validate_spec(spec));  // the plan needs a consistent spec
  int errors = 0;
  const Diagnostic* first_error = nullptr;
  for (const auto& d : diags)
    if (d.severity == Severity::error && errors++ == 0) first_error = &d;

  if (args.flag("--json")) {
    nlohmann::json out;
    out["spec"] = spec_to_json(spec);
    out["diagnostics"] = nlohmann::json::array();
    for (const auto& d : diags)
      out["diagnostics"].push_back(
          {{"severity", d.severity == Severity::error ? "error" : "warning"}, {"path", d.path}, {"message", d.message}});
    out["plan"] = spec_ok ? plan_to_json(plan_job(spec, hw)) : nlohmann::json();
    if (spec_ok && args.flag("--simulate-a2a")) out["a2a_simulation"] = sim_to_json(simulate_a2a_sweep(spec, hw, skews_of(args)));
    std::cout << out.dump(2) << "\n";
  } else {
    const ParallelSpec& p = spec.parallel;
    std::printf("moe plan: %s on %s (%s, %lld ranks: dp %lld · tp %lld · pp %lld · ep %lld, %lld per node)\n",
                spec.name.c_str(), hw.name.c_str(), spec.runtime.dtype.c_str(), (long long)p.world_size(),
                (long long)p.dp, (long long)p.tp, (long long)p.pp, (long long)p.ep, (long long)p.gpus_per_node);
    if (!spec.comment.empty()) std::printf("  %s\n", spec.comment.c_str());
    if (!diags.empty()) {
      std::printf("\nValidation\n");
      for (const auto& d : diags) std::printf("  %s %s: %s\n", d.severity == Severity::error ? "ERROR  " : "warning",
                                              d.path.c_str(), d.message.c_str());
    }
    if (spec_ok) print_plan(spec, hw, plan_job(spec, hw));
    if (spec_ok && args.flag("--simulate-a2a")) print_sim(spec, hw, simulate_a2a_sweep(spec, hw, skews_of(args)));
  }
  std::fflush(stdout);
  if (errors > 0) {
    std::fprintf(stderr, "moe plan: %s: %d error(s); first: %s: %s\n", file.c_str(), errors, first_error->path.c_str(),
                 first_error->message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace moe::cli
