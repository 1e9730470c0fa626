// The single-process training loop (see trainer.h).
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

#include "cpu_runtime_limits.h"
#include "cpu_support.h"
#include "batch_sampler.h"
#include "byte_data.h"
#include "ep_runtime.h"
#include "error.h"
#include "evaluator.h"
#include "gemm.h"
#include "metrics_stream.h"
#include "model_state.h"
#include "optimizer.h"
#include "pipeline_step.h"
#include "placement_records.h"
#include "schedule.h"

namespace moe::rt {

int64_t peak_rss_bytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports kilobytes
}

namespace {

std::string hostname() {
  char name[256] = {0};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

// The first parameter holding a non-finite value or gradient, and its decoder layer (or −1).
std::string locate_non_finite(MixtralModel& model, bool grads) {
  for (Param* p : model.named_params()) {
    const auto& v = grads ? p->grad : p->value;
    for (float x : v)
      if (!std::isfinite(x)) {
        std::string where = (grads ? "gradient of " : "parameter ") + p->name;
        const std::string prefix = "model.layers.";
        if (p->name.rfind(prefix, 0) == 0) where += ", layer " + p->name.substr(prefix.size(), p->name.find('.', prefix.size()) - prefix.size());
        return where;
      }
  }
  return "";
}

}  // namespace

struct Trainer::Impl {
  JobSpec spec;
  TrainerOptions options;
  DataSplit data;
  std::unique_ptr<MixtralModel> model;
  std::unique_ptr<AdamW> optimizer;
  LrSchedule schedule;
  RunState state;

  Impl(const JobSpec& s, const TrainerOptions& o) : spec(s), options(o) {
    check_supported_by_cpu_runtime(spec, options.parallel != nullptr);
    // What runs is what the run records (run_start's spec, checkpoints): stages recompute (pp > 1).
    if (const std::string r = runtime_recompute(spec); r != spec.train.recompute) {
      if (!options.parallel || options.parallel->is_rank0())
        std::fprintf(stderr, "moe-runtime: train.recompute %s runs as %s: a pipeline stage keeps one micro-batch's activations\n",
                     spec.train.recompute.c_str(), r.c_str());
      spec.train.recompute = r;
    }
    const int threads = spec.runtime.threads > 0 ? static_cast<int>(spec.runtime.threads)
                                                 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    set_gemm_threads(threads);
    set_deterministic(spec.runtime.deterministic);
    data = load_training_data(spec);
    model = options.parallel ? std::make_unique<MixtralModel>(spec, options.parallel->model_options())
                             : std::make_unique<MixtralModel>(spec);
    if (spec.runtime.deterministic) model->use_exact_grads();
    optimizer = std::make_unique<AdamW>(model->named_params(), AdamWConfig::from_spec(spec.train));
    schedule = LrSchedule::from_spec(spec.train);
    state.rng.seed(static_cast<uint64_t>(spec.train.seed) ^ 0x6A177E5ull);
  }

  void resume() {
    const LoadedCheckpoint ck = load_checkpoint(options.resume, true);
    // The architecture must match (shapes are checked tensor by tensor when loading).
    if (spec_to_json(ck.spec)["model"] != spec_to_json(spec)["model"])
      throw Error("--resume " + ck.dir.string() + ": the checkpoint's model differs from the spec's (" +
                  spec_to_json(ck.spec)["model"].dump() + ")");
    if (options.parallel) {  // every rank reads the complete checkpoint and keeps its own part
      const LoadedCheckpoint mine = options.parallel->local_part(ck, *model);
      load_model_weights(mine, *model);
      state = load_run_state(mine, *optimizer);
    } else {
      load_model_weights(ck, *model);
      state = load_run_state(ck, *optimizer);
    }
    if (state.step > spec.train.steps)
      throw Error("--resume " + ck.dir.string() + ": the checkpoint is at step " + std::to_string(state.step) +
                  ", past train.steps (" + std::to_string(spec.train.steps) + ")");
    std::fprintf(stderr, "moe-runtime: resumed from %s at step %lld\n", ck.dir.c_str(), static_cast<long long>(state.step));
  }

  // Mean validation loss over the first max_bytes of the validation split (−1: none) and the bytes
  // each rank predicted (one entry per dp·ep rank in data-slice order, = global rank with tp = pp =
  // 1; one process: one entry).
  struct Validation {
    double loss = -1.0;
    std::vector<int64_t> rank_bytes;
  };

  Validation validation_loss(int64_t max_bytes) {
    const int64_t n = max_bytes > 0 ? std::min<int64_t>(max_bytes, static_cast<int64_t>(data.val.size()))
                                    : static_cast<int64_t>(data.val.size());
    if (n < 2) return {};
    // Batches no larger than training's, so validation never raises the peak memory.
    ep::EpRuntime* par = options.parallel;
    if (!par) {
      const EvalResult r = evaluate_bytes(*model, data.val.data(), n, spec.train.micro_batch);
      return {r.mean_nats, {r.predicted}};
    }
    // dp·ep ranks: the batches of one process with micro_batch·dp·ep, each rank evaluating its
    // slice of every batch (as in training); then one sum over all ranks of [nats, each rank's
    // bytes] (the bytes at the rank's own index), so each byte counts once.
    const int64_t slices = par->data_slices(), slice = par->data_slice();
    const EvalResult mine = evaluate_bytes(*model, data.val.data(), n, spec.train.micro_batch, EvalShare{slice, slices},
                                           pipelined_forward());
    std::vector<double> sums(static_cast<size_t>(1 + slices), 0.0);
    sums[0] = mine.total_nats;
    sums[static_cast<size_t>(1 + slice)] = static_cast<double>(mine.predicted);
    par->sum_over_data(sums.data(), sums.size());
    par->sum_over_pipeline(sums.data(), 1);  // the last stage's nats (every stage counts the bytes)
    par->discard_a2a_totals();  // the next step's a2a records count that step's exchanges only
    Validation v;
    double predicted = 0;
    for (int64_t s = 0; s < slices; ++s) {
      v.rank_bytes.push_back(static_cast<int64_t>(sums[static_cast<size_t>(1 + s)]));
      predicted += sums[static_cast<size_t>(1 + s)];
    }
    v.loss = sums[0] / predicted;
    return v;
  }

  // With pp > 1, evaluation's forward passes go through the stages one batch at a time.
  EvalForward pipelined_forward() {
    ep::EpRuntime* par = options.parallel;
    if (!par || par->pipeline_stages() == 1) return {};
    return [this, par](const int32_t* tokens, const int32_t* targets, int64_t batch, const MoeLayerOptions& o,
                       std::mt19937_64& rng, int64_t seq) {
      const PipelineStage& stage = model->pipeline_stage();
      std::vector<float> x;
      ForwardResult all;  // every chunk's (one without the interleaved schedule), in order
      for (int64_t c = 0; c < stage.chunks; ++c) {
        if (!stage.starts(c)) {
          x.resize(static_cast<size_t>(model->boundary_rows(batch, seq) * spec.model.d_model));
          par->recv_activations(x);
        }
        const ForwardResult r = model->forward(tokens, targets, batch, o, rng, seq, stage.starts(c) ? nullptr : x.data(), c);
        if (!stage.ends(c)) par->send_activations(model->stage_output());
        all.loss += r.loss, all.lm_loss += r.lm_loss, all.aux_loss += r.aux_loss, all.z_loss += r.z_loss;
        all.routing.insert(all.routing.end(), r.routing.begin(), r.routing.end());
      }
      par->finish_sends();
      return all;
    };
  }

  std::string checkpoint(MetricsStream& metrics) {
    if (options.parallel) {  // rank 0 gathers the other EP ranks' experts and writes it all
      const CheckpointData& remote = options.parallel->gather_remote_experts(*model, optimizer.get());
      if (!options.parallel->is_rank0()) return "";
      const auto dir = save_training_checkpoint(options.checkpoint_dir, *model, optimizer.get(), state, &remote);
      metrics.checkpoint(state.step, dir.string());
      return dir.string();
    }
    const auto dir = save_training_checkpoint(options.checkpoint_dir, *model, optimizer.get(), state);
    metrics.checkpoint(state.step, dir.string());
    return dir.string();
  }

  // Per-layer figures of this stage's MoE layers (`mine`, decoder layers `local`, `width` values
  // each) placed among all MoE layers (`all`) and summed over the stages: every layer's on every stage.
  std::vector<std::vector<int64_t>> on_every_stage(const std::vector<std::vector<int64_t>>& mine, size_t widest,
                                                   const std::vector<int64_t>& all, const std::vector<int64_t>& local) {
    std::vector<int64_t> flat(all.size() * widest, 0);
    for (size_t l = 0; l < mine.size(); ++l) {
      const size_t at = static_cast<size_t>(std::find(all.begin(), all.end(), local[l]) - all.begin());
      std::copy(mine[l].begin(), mine[l].end(), flat.begin() + static_cast<std::ptrdiff_t>(at * widest));
    }
    options.parallel->sum_over_pipeline(flat.data(), flat.size());
    std::vector<std::vector<int64_t>> out(all.size());
    for (size_t l = 0; l < all.size(); ++l)
      out[l].assign(flat.begin() + static_cast<std::ptrdiff_t>(l * widest),
                    flat.begin() + static_cast<std::ptrdiff_t>((l + 1) * widest));
    return out;
  }

  // The step's pipeline figures, one entry per stage (rank 0's pipeline group): the time each stage
  // computed (forward, recompute, backward) and the rest of its schedule's wall time (waiting on
  // its neighbours: the bubble), the bytes it sent to its neighbours, and its ops' timeline. A
  // collective.
  nlohmann::json pipeline_figures(const PipelineStepResult& piped) {
    ep::EpRuntime& par = *options.parallel;
    const std::vector<double> busy = par.gather_over_pipeline(piped.busy_ms);
    const std::vector<double> wall = par.gather_over_pipeline(piped.wall_ms);
    const std::vector<double> bytes = par.gather_over_pipeline(static_cast<double>(par.take_pp_bytes()));
    const std::vector<std::vector<double>> timeline = par.gather_over_pipeline(piped.timeline);
    nlohmann::json out = {{"pp_busy_ms", nlohmann::json::array()}, {"pp_idle_ms", nlohmann::json::array()},
                          {"pp_bytes", nlohmann::json::array()}, {"pp_timeline", nlohmann::json::array()}};
    auto ms = [](double v) { return std::round(v * 100.0) / 100.0; };
    for (size_t s = 0; s < busy.size(); ++s) {
      out["pp_busy_ms"].push_back(ms(busy[s]));
      out["pp_idle_ms"].push_back(ms(std::max(0.0, wall[s] - busy[s])));
      out["pp_bytes"].push_back(static_cast<int64_t>(bytes[s]));
      nlohmann::json ops = nlohmann::json::array();  // [kind, micro, start ms, end ms(, chunk)] per op
      const size_t width = spec.parallel.vpp > 1 ? 5 : 4;
      for (size_t i = 0; i + width - 1 < timeline[s].size(); i += width) {
        ops.push_back({static_cast<int>(timeline[s][i]), static_cast<int64_t>(timeline[s][i + 1]), ms(timeline[s][i + 2]),
                       ms(timeline[s][i + 3])});
        if (width == 5) ops.back().push_back(static_cast<int64_t>(timeline[s][i + 4]));
      }
      out["pp_timeline"].push_back(ops);
    }
    return out;
  }

  TrainResult run() {
    ep::EpRuntime* par = options.parallel;
    MetricsStream metrics(par && !par->is_rank0() ? "/dev/null" : options.metrics);  // rank 0 reports
    TrainResult result;
    Validation final_val;
    if (!options.resume.empty()) resume();
    if (spec.runtime.checkpoint_every > 0 && options.checkpoint_dir.empty())
      std::fprintf(stderr, "moe-runtime: warning: runtime.checkpoint_every is %lld but no --checkpoint-dir was given: no checkpoints\n",
                   static_cast<long long>(spec.runtime.checkpoint_every));
    RunStartRecord start;
    start.spec = spec_to_json(spec).dump();
    start.world_size = par ? par->world_size() : 1;
    start.backend = spec.runtime.backend;
    start.hosts = nlohmann::json::array({hostname()}).dump();
    start.params = par ? par->logical_params(*model) : model->num_params();  // the whole model's, on every layout
    start.data = data.origin;
    start.train_bytes = static_cast<int64_t>(data.train.size()), start.val_bytes = static_cast<int64_t>(data.val.size());
    start.gemm = gemm_backend(), start.gemm_threads = gemm_threads(), start.resumed_at = state.step;
    metrics.run_start(start);

    const int64_t B = spec.train.micro_batch, S = spec.model.seq_len, A = spec.train.grad_accum;
    // With N = dp·ep ranks every rank draws the window of N·B sequences one process with
    // micro_batch N·B would draw, and trains on its slice [slice·B, (slice+1)·B).
    const int64_t slices = par ? par->data_slices() : 1, slice = par ? par->data_slice() : 0;
    BatchSampler sampler(data.train, S, static_cast<uint64_t>(spec.train.seed));
    sampler.set_position(state.data_position);
    std::vector<int32_t> window, tokens(static_cast<size_t>(B * S)), targets(tokens.size());
    const auto moe_layers = model->moe_layers();
    const auto moe_index = model->moe_layer_indices();
    const auto params = model->named_params();
    const int64_t E = spec.model.moe.num_experts;
    // Pipeline parallelism: this rank holds its stage's MoE layers; rank 0 reports all of them.
    const bool pipelined = par && par->pipeline_stages() > 1;
    std::vector<int64_t> report_index = moe_index;
    if (pipelined) {
      report_index.clear();
      for (int64_t i = spec.model.moe.first_dense_layers; i < spec.model.n_layers; ++i) report_index.push_back(i);
    }
    // The placement in force from the run's first step (resumed: from the resume point); with pp
    // the stages split its layers.
    for (const auto& rec : placement_records(par ? par->placement() : placement_for_spec(spec), state.step, report_index))
      metrics.write(rec);
    // Test hook (fault injection): fill one parameter with NaN before this step.
    const char* fault = std::getenv("MOE_FAULT_NAN_STEP");
    const int64_t fault_step = fault ? std::atoll(fault) : -1;
    const char* fault_param = std::getenv("MOE_FAULT_NAN_PARAM");
    Param* poisoned = params[0];
    for (Param* p : params)
      if (fault_param && p->name == fault_param) poisoned = p;

    auto finish = [&](const std::string& status, const std::string& reason) {
      result.status = status;
      result.reason = reason;
      result.steps = state.step;
      result.peak_rss_bytes = peak_rss_bytes();
      RunEndRecord end;
      end.peak_rss_bytes = result.peak_rss_bytes;
      if (result.val_loss >= 0) end.val_loss = result.val_loss, end.val_rank_bytes = final_val.rank_bytes;
      metrics.run_end(status, state.step, reason, end);
      return result;
    };

    bool first = true;
    const auto run_t0 = std::chrono::steady_clock::now();
    std::string end_reason;
    while (state.step < spec.train.steps) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_t0).count();
      bool out_of_time = options.time_limit_s > 0 && elapsed >= options.time_limit_s;
      bool stop = options.stop_signal && options.stop_signal->load();
      if (par) {  // every rank must take the same decision, or the others wait in a collective
        stop = par->any(stop);
        out_of_time = !stop && par->any(out_of_time);
      }
      if (out_of_time) {
        end_reason = "time limit of " + std::to_string(options.time_limit_s) + " s reached at step " + std::to_string(state.step);
        if (!options.checkpoint_dir.empty()) checkpoint(metrics);
        break;
      }
      if (stop) {
        if (!options.checkpoint_dir.empty()) checkpoint(metrics);
        const int sig = options.stop_signal ? options.stop_signal->load() : 0;
        return finish("cancelled", "stopped by signal " + std::to_string(sig) + " after step " +
                                       std::to_string(state.step));
      }
      const int64_t step = state.step + 1;  // 1-based in the stream
      if (step == fault_step) std::fill(poisoned->value.begin(), poisoned->value.end(), std::nanf(""));
      const auto t0 = std::chrono::steady_clock::now();
      if (par) par->take_tp_bytes(), par->take_etp_bytes(), par->take_pp_bytes();  // drop the last validation's
      model->zero_grad();
      double lm = 0, aux = 0, z = 0;
      std::vector<std::vector<int64_t>> counts(moe_layers.size(), std::vector<int64_t>(E, 0)), dropped = counts;
      const bool sample = spec.placement.stats_every > 0 && step % spec.placement.stats_every == 0;
      std::vector<std::vector<int64_t>> cosel(sample ? moe_layers.size() : 0, std::vector<int64_t>(E * E, 0));
      MoeLayerOptions mo;
      mo.coselection = sample;
      mo.training = true;
      mo.loss_scale = 1.0 / static_cast<double>(A);
      mo.data_slices = slices;
      // This rank's slice of the next window.
      auto draw = [&](std::vector<int32_t>& into_tokens, std::vector<int32_t>& into_targets) {
        sampler.next(B * slices, window);
        into_tokens.resize(static_cast<size_t>(B * S)), into_targets.resize(static_cast<size_t>(B * S));
        for (int64_t b = 0; b < B; ++b)
          for (int64_t t = 0; t < S; ++t) {
            const size_t w = static_cast<size_t>((slice * B + b) * (S + 1) + t);
            into_tokens[static_cast<size_t>(b * S + t)] = window[w];
            into_targets[static_cast<size_t>(b * S + t)] = window[w + 1];
          }
      };
      PipelineStepResult piped;
      if (pipelined) {  // every stage draws every window, as one process does
        std::vector<MicroBatch> micro(static_cast<size_t>(A));
        for (MicroBatch& mb : micro) draw(mb.tokens, mb.targets);
        piped = run_pipeline_step(*model, *par, micro, B, mo, state.rng, E);
        if (par->any(!piped.finite))
          return finish("failed", "loss is not finite at step " + std::to_string(step) + " (in a pipeline stage's forward)");
        lm = piped.lm, aux = piped.aux, z = piped.z;
        counts = piped.counts, dropped = piped.dropped;
        if (sample) cosel = piped.cosel;
      }
      for (int64_t micro = 0; micro < A && !pipelined; ++micro) {
        draw(tokens, targets);
        const ForwardResult r = model->forward(tokens.data(), targets.data(), B, mo, state.rng);
        if (!std::isfinite(r.loss)) {
          std::string where = locate_non_finite(*model, false);
          for (const auto& lr : r.routing)
            if (where.empty() && (!std::isfinite(lr.stats.aux_loss) || !std::isfinite(lr.stats.z_loss)))
              where = "router of layer " + std::to_string(lr.layer);
          return finish("failed", std::string(std::isnan(r.loss) ? "loss is NaN" : "loss is Inf") + " at step " +
                                      std::to_string(step) + (where.empty() ? "" : " (" + where + ")"));
        }
        model->backward();
        lm += r.lm_loss / static_cast<double>(A);
        aux += r.aux_loss / static_cast<double>(A);
        z += r.z_loss / static_cast<double>(A);
        add_routing_counts(r, counts, dropped);
        for (size_t l = 0; l < cosel.size() && l < r.routing.size(); ++l)
          for (size_t i = 0; i < cosel[l].size() && i < r.routing[l].stats.coselection.size(); ++i)
            cosel[l][i] += r.routing[l].stats.coselection[i];
      }
      if (!par) model->round_exact_grads();  // deterministic arithmetic: the step's sums into the grads
      nlohmann::json grad_bytes = nlohmann::json::object();
      if (par) {  // the global batch's figures, as one process would compute them
        par->reduce_gradients(params);
        const ep::EpRuntime::GradientBytes gb = par->take_grad_bytes();
        for (const auto& [group, bytes] : {std::pair{"dense_dp", gb.dense_dp}, std::pair{"expert_dp", gb.expert_dp},
                                           std::pair{"tp", gb.tp}, std::pair{"tied_embedding", gb.tied_embedding},
                                           std::pair{"replicas", gb.replicas}, std::pair{"etp_copies", gb.etp_copies}})
          if (bytes > 0) grad_bytes[group] = bytes;
        par->sum_over_data(&lm, 1);  // tp ranks hold the same LM loss
        lm /= static_cast<double>(slices);
        // The router's figures: every share of the MoE blocks' tokens (tp ranks route theirs).
        double router[2] = {aux, z};
        par->sum_over_moe_shares(router, 2);
        aux = router[0] / static_cast<double>(par->moe_shares());
        z = router[1] / static_cast<double>(par->moe_shares());
        for (size_t l = 0; l < counts.size(); ++l) {
          par->sum_over_moe_shares(counts[l].data(), counts[l].size());
          par->sum_over_moe_shares(dropped[l].data(), dropped[l].size());
        }
        for (auto& c : cosel) par->sum_over_moe_shares(c.data(), c.size());
        double stage_sums[3] = {lm, aux, z};  // each stage's part: the LM loss is the last stage's
        par->sum_over_pipeline(stage_sums, 3);
        lm = stage_sums[0], aux = stage_sums[1], z = stage_sums[2];
      }
      // What rank 0 reports: every MoE layer's figures (with pp, the other stages' placed beside these).
      const size_t e = static_cast<size_t>(E);
      const auto report_counts = pipelined ? on_every_stage(counts, e, report_index, moe_index) : counts;
      const auto report_dropped = pipelined ? on_every_stage(dropped, e, report_index, moe_index) : dropped;
      const auto report_cosel = pipelined && sample ? on_every_stage(cosel, e * e, report_index, moe_index) : cosel;
      const double norm = par ? par->clip_grad_norm(params, spec.train.grad_clip) : clip_grad_norm(params, spec.train.grad_clip);
      if (!std::isfinite(norm)) {
        const std::string where = locate_non_finite(*model, true);
        return finish("failed", "gradient norm is not finite at step " + std::to_string(step) +
                                    (where.empty() ? "" : " (" + where + ")"));
      }
      const double lr = schedule.at(state.step);
      optimizer->step(lr);
      if (spec.routing.bias_balancing.enabled)
        for (size_t l = 0; l < moe_layers.size(); ++l) moe_layers[l]->update_balancing_bias(counts[l]);
      state.step = step;
      state.data_position = sampler.position();
      // Every step (a collective: the decision to report may differ by rank clock), before validation.
      const std::vector<metrics::A2aRecord> a2a = par ? par->a2a_records(step, report_index, sample) : std::vector<metrics::A2aRecord>{};
      const int64_t tp_bytes = par ? par->take_tp_bytes() : 0;
      const int64_t etp_bytes = par ? par->take_etp_bytes() : 0;
      const nlohmann::json pipeline = pipelined ? pipeline_figures(piped) : nlohmann::json();  // a collective
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

      if (first) result.first_loss = lm, first = false;
      result.last_loss = lm;
      const bool last = step == spec.train.steps;
      const bool time_up = options.time_limit_s > 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - run_t0).count() >= options.time_limit_s;
      const bool report = last || time_up || (spec.runtime.metrics_every > 0 && step % spec.runtime.metrics_every == 0);
      const bool validate = spec.train.eval_every > 0 && step % spec.train.eval_every == 0 && !last;
      if (report || validate) {
        StepRecord rec;
        rec.step = step;
        rec.loss = lm;
        rec.aux_loss = aux;
        rec.z_loss = z;
        rec.lr = lr;
        rec.tokens = B * A * S * slices;
        rec.step_ms = ms;
        rec.tokens_per_s = static_cast<double>(rec.tokens) / (ms / 1000.0);
        rec.grad_norm = norm;
        nlohmann::json extra = pipeline.is_object() ? pipeline : nlohmann::json::object();  // extensions (docs/parallelism.md)
        if (tp_bytes > 0) extra["tp_bytes"] = tp_bytes;
        if (par && spec.parallel.etp > 1) extra["etp_bytes"] = etp_bytes;  // 0 too: no routed row reached the experts
        if (!grad_bytes.empty()) extra["grad_bytes"] = grad_bytes;
        if (!extra.empty()) rec.extra = extra.dump();
        if (validate) {
          const Validation v = validation_loss(options.val_bytes_periodic);
          rec.val_loss = v.loss;
          rec.val_rank_bytes = v.rank_bytes;
        }
        metrics.step(rec);
        for (size_t l = 0; l < report_index.size(); ++l)
          metrics.expert_load(step, report_index[l], report_counts[l], report_dropped[l]);
        for (const auto& rec_a2a : a2a) metrics.write(rec_a2a);
      }
      for (size_t l = 0; l < report_cosel.size(); ++l) metrics.write(coselection_record(step, report_index[l], E, report_cosel[l]));
      if (par && !last)  // re-placement (placement.replace_every): the next step runs on the new placement
        for (const auto& rec : par->replace_if_due(step, report_counts, report_cosel, *model, optimizer.get(), report_index))
          metrics.write(rec);
      const bool due = spec.runtime.checkpoint_every > 0 && step % spec.runtime.checkpoint_every == 0;
      if (!options.checkpoint_dir.empty() && (due || last)) checkpoint(metrics);
    }
    final_val = validation_loss(options.val_bytes_final);
    result.val_loss = final_val.loss;
    return finish("completed", end_reason);
  }
};

Trainer::Trainer(const JobSpec& spec, const TrainerOptions& options) : impl_(std::make_unique<Impl>(spec, options)) {}
Trainer::~Trainer() = default;
MixtralModel& Trainer::model() { return *impl_->model; }
TrainResult Trainer::run() { return impl_->run(); }

}  // namespace moe::rt
