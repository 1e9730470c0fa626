// A stage's 1F1B step (see pipeline_step.h).
#include "pipeline_step.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

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
  const int64_t A = static_cast<int64_t>(micro.size()), chunks = stage.chunks;
  const size_t activations = static_cast<size_t>(model.boundary_rows(batch) * model.spec().model.d_model);
  const auto t_start = Clock::now();
  PipelineStepResult out;
  const std::vector<int64_t> moe_index = model.moe_layer_indices();  // a routing record's layer → its row
  out.counts.assign(moe_index.size(), std::vector<int64_t>(static_cast<size_t>(experts), 0));
  out.dropped = out.counts;
  if (options.coselection) out.cosel.assign(moe_index.size(), std::vector<int64_t>(static_cast<size_t>(experts * experts), 0));
  auto row_of = [&](int64_t layer) { return static_cast<size_t>(std::find(moe_index.begin(), moe_index.end(), layer) - moe_index.begin()); };

  // Per (chunk, micro-batch): the stage input from the previous (virtual) stage, and the jitter
  // stream before its forward. Each chunk draws from its own copy of the stream, micro-batch after
  // micro-batch, skipping the other layers' draws: one process's noise for its layers.
  auto per_chunk = [&](auto value) { return std::vector<std::vector<decltype(value)>>(static_cast<size_t>(chunks),
                                                                                    std::vector<decltype(value)>(static_cast<size_t>(A), value)); };
  auto input = per_chunk(std::vector<float>());
  auto rng_at = per_chunk(rng);
  std::vector<std::mt19937_64> chunk_rng(static_cast<size_t>(chunks), rng);
  PipelineOp resident{true, -1, -1};      // the (chunk, micro-batch) whose activations the model holds
  MoeLayerOptions replay = options;
  replay.coselection = false;

  auto record = [&](int kind, const PipelineOp& op, Clock::time_point t0) {
    const double start = std::chrono::duration<double, std::milli>(t0 - t_start).count(), took = ms_since(t0);
    out.busy_ms += took;
    out.timeline.insert(out.timeline.end(), {double(kind), double(op.micro), start, start + took});
    if (chunks > 1) out.timeline.push_back(double(op.chunk));
  };
  auto forward = [&](const PipelineOp& op, std::mt19937_64& stream, const MoeLayerOptions& o, int kind) {
    const MicroBatch& mb = micro[static_cast<size_t>(op.micro)];
    const auto t0 = Clock::now();
    const std::vector<float>& in = input[static_cast<size_t>(op.chunk)][static_cast<size_t>(op.micro)];
    ForwardResult r = model.forward(mb.tokens.data(), mb.targets.data(), batch, o, stream, 0,
                                    stage.starts(op.chunk) ? nullptr : in.data(), op.chunk);
    record(kind, op, t0);
    resident = {true, op.micro, op.chunk};
    return r;
  };
  // A backward whose forward's activations are gone (other forwards ran since) recomputes it first;
  // it needs no gradient, so it runs before the wait for one.
  auto recompute_if_gone = [&](const PipelineOp& op) {
    if (op.forward || resident == PipelineOp{true, op.micro, op.chunk}) return;
    std::mt19937_64 stream = rng_at[static_cast<size_t>(op.chunk)][static_cast<size_t>(op.micro)];
    forward(op, stream, replay, 1);
  };
  // `grad`: a backward's gradient from the next (virtual) stage (null for the model's last chunk).
  auto run = [&](const PipelineOp& op, const float* grad) {
    const size_t c = static_cast<size_t>(op.chunk), m = static_cast<size_t>(op.micro);
    if (op.forward) {
      rng_at[c][m] = chunk_rng[c];
      const ForwardResult r = forward(op, chunk_rng[c], options, 0);
      if (!stage.ends(op.chunk)) pipe.send_activations(model.stage_output());
      out.finite = out.finite && std::isfinite(r.loss);
      out.lm += r.lm_loss / static_cast<double>(A);
      out.aux += r.aux_loss / static_cast<double>(A);
      out.z += r.z_loss / static_cast<double>(A);
      for (const LayerRouting& lr : r.routing) {
        const size_t l = row_of(lr.layer);
        for (size_t e = 0; e < out.counts[l].size(); ++e) {
          out.counts[l][e] += lr.stats.counts[e];
          out.dropped[l][e] += lr.stats.dropped[e];
        }
        if (!out.cosel.empty())
          for (size_t i = 0; i < out.cosel[l].size() && i < lr.stats.coselection.size(); ++i)
            out.cosel[l][i] += lr.stats.coselection[i];
      }
      return;
    }
    const auto t0 = Clock::now();
    model.backward(grad, op.chunk);
    record(2, op, t0);
    resident = {true, -1, -1};
    if (!stage.starts(op.chunk)) pipe.send_gradient(model.input_grad());
    input[c][m].clear();
    input[c][m].shrink_to_fit();
  };
  // What an op receives: a forward the previous (virtual) stage's activations, a backward the next
  // one's gradient. The next op's receive is posted before this op computes, so its data moves
  // meanwhile; receives are posted in op order, each direction's in the order its data is used.
  const std::vector<PipelineOp> ops = interleaved_one_f_one_b(stage.stages, stage.stage, A, chunks);
  auto needs_input = [&](const PipelineOp& op) { return op.forward ? !stage.starts(op.chunk) : !stage.ends(op.chunk); };
  std::map<size_t, std::vector<float>> grads;  // by op index
  std::map<size_t, ep::EpRuntime::PipeRecv> posted;
  auto post = [&](size_t i) {
    const PipelineOp& op = ops[i];
    if (!needs_input(op) || posted.count(i)) return;
    std::vector<float>& into = op.forward ? input[static_cast<size_t>(op.chunk)][static_cast<size_t>(op.micro)] : grads[i];
    into.resize(activations);
    posted[i] = op.forward ? pipe.post_recv_activations(into) : pipe.post_recv_gradient(into);
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    post(i);
    recompute_if_gone(ops[i]);
    if (auto it = posted.find(i); it != posted.end()) {
      pipe.wait_recv(it->second);
      posted.erase(it);
    }
    if (i + 1 < ops.size()) post(i + 1);
    run(ops[i], !ops[i].forward && needs_input(ops[i]) ? grads[i].data() : nullptr);
    grads.erase(i);
  }
  pipe.finish_sends();
  rng = chunk_rng[0];  // every chunk's stream is now where one process's is after the step
  out.wall_ms = ms_since(t_start);
  return out;
}

}  // namespace moe::rt
