// A stage's 1F1B step (see pipeline_step.h).
#include "pipeline_step.h"

#include <chrono>
#include <cmath>

#include "pipeline_schedule.h"

namespace moe::rt {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
}  // namespace

PipelineStepResult run_pipeline_step(MixtralModel& model, ep::EpRuntime& pipe, const std::vector<MicroBatch>& micro,
                                     int64_t batch, const MoeLayerOptions& options, std::mt19937_64& rng,
                                     int64_t experts) {
  const PipelineStage& stage = model.pipeline_stage();
  const int64_t A = static_cast<int64_t>(micro.size());
  const size_t activations = static_cast<size_t>(model.boundary_rows(batch) * model.spec().model.d_model);
  const auto t_start = Clock::now();
  PipelineStepResult out;
  const size_t layers = model.moe_layers().size();
  out.counts.assign(layers, std::vector<int64_t>(static_cast<size_t>(experts), 0));
  out.dropped = out.counts;
  if (options.coselection) out.cosel.assign(layers, std::vector<int64_t>(static_cast<size_t>(experts * experts), 0));

  std::vector<std::vector<float>> input(static_cast<size_t>(A));  // stage inputs from the previous stage
  std::vector<std::mt19937_64> rng_at(static_cast<size_t>(A));    // the jitter stream before each forward
  std::vector<float> grad(activations);                            // the next stage's gradient
  int64_t resident = -1;  // the micro-batch whose activations the model holds
  MoeLayerOptions replay = options;
  replay.coselection = false;

  auto record = [&](int kind, int64_t m, Clock::time_point t0) {
    const double start = std::chrono::duration<double, std::milli>(t0 - t_start).count(), took = ms_since(t0);
    out.busy_ms += took;
    out.timeline.insert(out.timeline.end(), {double(kind), double(m), start, start + took});
  };
  auto forward = [&](int64_t m, std::mt19937_64& stream, const MoeLayerOptions& o, int kind) {
    const MicroBatch& mb = micro[static_cast<size_t>(m)];
    const auto t0 = Clock::now();
    ForwardResult r = model.forward(mb.tokens.data(), mb.targets.data(), batch, o, stream, 0,
                                    stage.first() ? nullptr : input[static_cast<size_t>(m)].data());
    record(kind, m, t0);
    resident = m;
    return r;
  };
  auto run = [&](const PipelineOp& op) {
    const size_t m = static_cast<size_t>(op.micro);
    if (op.forward) {
      rng_at[m] = rng;
      const ForwardResult r = forward(op.micro, rng, options, 0);
      out.finite = out.finite && std::isfinite(r.loss);
      out.lm += r.lm_loss / static_cast<double>(A);
      out.aux += r.aux_loss / static_cast<double>(A);
      out.z += r.z_loss / static_cast<double>(A);
      add_routing_counts(r, out.counts, out.dropped);
      for (size_t l = 0; l < out.cosel.size() && l < r.routing.size(); ++l)
        for (size_t i = 0; i < out.cosel[l].size() && i < r.routing[l].stats.coselection.size(); ++i)
          out.cosel[l][i] += r.routing[l].stats.coselection[i];
      return;
    }
    if (resident != op.micro) {  // other forwards ran since: recompute this one's activations
      std::mt19937_64 stream = rng_at[m];
      forward(op.micro, stream, replay, 1);
    }
    const auto t0 = Clock::now();
    model.backward(stage.last() ? nullptr : grad.data());
    record(2, op.micro, t0);
    resident = -1;
    input[m].clear();
    input[m].shrink_to_fit();
  };
  // What an op needs from a neighbour first: a forward the previous stage's activations, a backward
  // the next stage's gradient.
  auto needs_input = [&](const PipelineOp& op) { return op.forward ? !stage.first() : !stage.last(); };
  auto receive = [&](const PipelineOp& op) {
    if (op.forward) {
      input[static_cast<size_t>(op.micro)].resize(activations);
      pipe.recv_activations(input[static_cast<size_t>(op.micro)]);
    } else {
      pipe.recv_gradient(grad);
    }
  };

  const std::vector<PipelineOp> ops = one_f_one_b(stage.stages, stage.stage, A);
  if (!ops.empty() && needs_input(ops[0])) receive(ops[0]);
  for (size_t i = 0; i < ops.size(); ++i) {
    const PipelineOp& op = ops[i];
    run(op);
    const bool sends = op.forward ? !stage.last() : !stage.first();
    const PipelineOp* next = i + 1 < ops.size() ? &ops[i + 1] : nullptr;
    const bool receives = next && needs_input(*next);
    // A forward's output goes to the next stage, which a following backward's gradient comes from;
    // a backward's to the previous stage, which a following forward's input comes from.
    if (sends && receives && op.forward != next->forward) {
      if (op.forward) {
        pipe.send_activations_recv_gradient(model.stage_output(), grad);
      } else {
        input[static_cast<size_t>(next->micro)].resize(activations);
        pipe.send_gradient_recv_activations(model.input_grad(), input[static_cast<size_t>(next->micro)]);
      }
      continue;
    }
    if (sends) op.forward ? pipe.send_activations(model.stage_output()) : pipe.send_gradient(model.input_grad());
    if (receives) receive(*next);
  }
  out.wall_ms = ms_since(t_start);
  return out;
}

}  // namespace moe::rt
