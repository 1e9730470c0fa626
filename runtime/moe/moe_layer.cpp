// MoeLayer (see moe_layer.h): the Params under their Hugging Face names, wired to MoeCompute<float>.
#include "moe_layer.h"

#include <algorithm>
#include <string>

#include "error.h"
#include "moe_compute.h"
#include "param_shard.h"

namespace moe::rt {

namespace {
// The experts' computation sees its slices' widths: the routed experts' under expert tensor
// parallelism, the shared experts' under tensor parallelism.
MoeConfig expert_slice(MoeConfig c, const ExpertTensorParallel& etp, const ExpertTensorParallel& shared_tp) {
  if (etp.active()) {
    if (c.d_expert % etp.size != 0)
      throw Error("parallel.etp: " + std::to_string(etp.size) + " does not divide model.moe.d_expert (" + std::to_string(c.d_expert) + ")");
    c.d_expert /= etp.size;
  }
  if (shared_tp.active() && c.d_shared > 0) {
    if (c.d_shared % shared_tp.size != 0)
      throw Error("parallel.tp: " + std::to_string(shared_tp.size) + " does not divide the shared experts' width (" +
                  std::to_string(c.d_shared) + ")");
    c.d_shared /= shared_tp.size;
  }
  return c;
}

// An expert weight: whole, or its slice along `dim` (w1, w3 by rows of the hidden units, w2 by columns).
Param expert_param(const std::string& name, std::vector<int64_t> full, int dim, const ExpertTensorParallel& etp) {
  Param p = sharded_param(name, std::move(full), dim, etp.rank, etp.size);
  p.is_expert = true;
  return p;
}
}  // namespace

struct MoeLayer::Impl {
  MoeConfig config;
  Param gate;
  std::vector<Param> w1, w2, w3;  // per expert
  std::vector<Param> shared;      // w1, w2, w3 of the shared expert, or empty
  std::vector<float> bias;        // [E] selection bias (bias balancing)
  MoeCompute<float> compute;
  MoeWeights<float> weights;
  double loss_scale = 1.0;
  int64_t segment_tokens = 0;  // of the last forward
  int64_t slots = 0;           // expert slots of the layer over all ranks (num_experts without a placement)

  Impl(const MoeConfig& c, const std::string& prefix, std::unique_ptr<Dispatcher<float>> dispatcher = nullptr,
       const ExpertTensorParallel& etp = {}, const ExpertTensorParallel& shared_tp = {})
      : config(c), compute(expert_slice(c, etp, shared_tp), std::move(dispatcher)) {
    const int64_t E = c.num_experts, d = c.d_model, f = c.d_expert;
    // Only the dispatcher's experts get params (all of them for the LocalDispatcher). They are
    // named after the logical expert a slot holds, so replicas share a name (and their init).
    const Dispatcher<float>& held = compute.dispatcher();
    const int64_t first = held.first_expert(), last = first + held.local_experts();
    slots = std::max(E, last);
    gate = Param(prefix + "gate.weight", {E, d});
    for (int64_t j = first; j < last; ++j) {
      const std::string p = prefix + "experts." + std::to_string(held.logical_expert(j)) + ".";
      w1.push_back(expert_param(p + "w1.weight", {f, d}, 0, etp));
      w2.push_back(expert_param(p + "w2.weight", {d, f}, 1, etp));
      w3.push_back(expert_param(p + "w3.weight", {f, d}, 0, etp));
    }
    if (c.d_shared > 0) {
      const int64_t s = c.d_shared;
      shared.push_back(sharded_param(prefix + "shared_expert.w1.weight", {s, d}, 0, shared_tp.rank, shared_tp.size));
      shared.push_back(sharded_param(prefix + "shared_expert.w2.weight", {d, s}, 1, shared_tp.rank, shared_tp.size));
      shared.push_back(sharded_param(prefix + "shared_expert.w3.weight", {s, d}, 0, shared_tp.rank, shared_tp.size));
    }
    bias.assign(E, 0.0f);
    // Views into the Params (their vectors never reallocate after construction).
    weights.gate = gate.value.data();
    // Indexed by slot (= global expert without a placement); slots of other ranks stay null.
    weights.experts.w1.assign(slots, nullptr), weights.experts.w2.assign(slots, nullptr), weights.experts.w3.assign(slots, nullptr);
    for (int64_t j = first; j < last; ++j) {
      const size_t i = static_cast<size_t>(j - first);
      weights.experts.w1[j] = w1[i].value.data();
      weights.experts.w2[j] = w2[i].value.data();
      weights.experts.w3[j] = w3[i].value.data();
    }
    if (!shared.empty()) weights.shared = {{shared[0].value.data()}, {shared[1].value.data()}, {shared[2].value.data()}};
    if (etp.active()) compute.set_expert_tensor_parallel(etp);
    if (shared_tp.active() && c.d_shared > 0) compute.set_shared_tensor_parallel(shared_tp);
  }

  // Where backward puts the gradients: each Param's grad, or its ExactSum (deterministic
  // arithmetic, which the trainer may switch on after construction), by global expert.
  MoeGrads<float> sinks() {
    MoeGrads<float> g;
    const int64_t first = compute.dispatcher().first_expert();
    g.gate = grad_sink(gate, segment_tokens);
    g.experts.w1.resize(slots), g.experts.w2.resize(slots), g.experts.w3.resize(slots);
    for (size_t i = 0; i < w1.size(); ++i) {
      const size_t j = static_cast<size_t>(first) + i;
      g.experts.w1[j] = grad_sink(w1[i], segment_tokens);
      g.experts.w2[j] = grad_sink(w2[i], segment_tokens);
      g.experts.w3[j] = grad_sink(w3[i], segment_tokens);
    }
    if (!shared.empty())
      g.shared = {{grad_sink(shared[0], segment_tokens)}, {grad_sink(shared[1], segment_tokens)},
                  {grad_sink(shared[2], segment_tokens)}};
    return g;
  }
};

MoeLayer::MoeLayer(const JobSpec& spec, int64_t layer_index)
    : impl_(std::make_unique<Impl>(MoeConfig::from_spec(spec),
                                   "model.layers." + std::to_string(layer_index) + ".block_sparse_moe.")) {}

MoeLayer::MoeLayer(const JobSpec& spec, int64_t layer_index, MoeLayerParallel parallel)
    : impl_(std::make_unique<Impl>(MoeConfig::from_spec(spec),
                                   "model.layers." + std::to_string(layer_index) + ".block_sparse_moe.",
                                   std::move(parallel.dispatcher), parallel.etp, parallel.shared_tp)) {
  if (parallel.routing_sync) impl_->compute.set_routing_sync(std::move(parallel.routing_sync));
}

MoeLayer::~MoeLayer() = default;

void MoeLayer::forward(const float* x, float* y, int64_t T, const MoeLayerOptions& options, std::mt19937_64& rng) {
  impl_->loss_scale = options.loss_scale;
  impl_->segment_tokens = options.segment_tokens;
  impl_->compute.forward(impl_->weights, x, y, T, options, impl_->bias.data(), rng);
}

void MoeLayer::backward(const float* dy, float* dx) {
  impl_->compute.backward(impl_->weights, impl_->sinks(), dy, dx, static_cast<float>(impl_->loss_scale));
}

const RoutingStats& MoeLayer::stats() const { return impl_->compute.stats(); }

std::vector<Param*> MoeLayer::params() {
  std::vector<Param*> out{&impl_->gate};
  for (size_t j = 0; j < impl_->w1.size(); ++j) {
    out.push_back(&impl_->w1[j]);
    out.push_back(&impl_->w2[j]);
    out.push_back(&impl_->w3[j]);
  }
  for (Param& p : impl_->shared) out.push_back(&p);
  return out;
}

// DeepSeek-V3: an under-loaded expert's bias rises, an over-loaded one's falls, by a fixed step.
void MoeLayer::update_balancing_bias(const std::vector<int64_t>& load) {
  if (!impl_->config.bias_balancing) return;
  const int64_t E = impl_->config.num_experts;
  if (static_cast<int64_t>(load.size()) != E)
    throw Error("routing.bias_balancing: load has " + std::to_string(load.size()) + " entries, expected " +
                std::to_string(E));
  double mean = 0.0;
  for (int64_t c : load) mean += static_cast<double>(c);
  mean /= static_cast<double>(E);
  const double rate = impl_->config.bias_update_rate;
  for (int64_t e = 0; e < E; ++e) {
    const double diff = mean - static_cast<double>(load[e]);
    const double sign = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
    impl_->bias[e] += static_cast<float>(rate * sign);
  }
}

std::vector<float>& MoeLayer::balancing_bias() { return impl_->bias; }

void MoeLayer::init_params(std::mt19937_64& rng, double std) {
  std::normal_distribution<double> normal(0.0, std);
  for (Param* p : params())
    for (float& v : p->value) v = static_cast<float>(normal(rng));
}

MoeLayer::PhaseTimes MoeLayer::phase_times() const {
  const MoePhaseTimes& t = impl_->compute.times();
  return {t.router, t.permute, t.experts, t.combine, t.shared, t.expert_flops};
}

void MoeLayer::reset_phase_times() { impl_->compute.times() = MoePhaseTimes{}; }

}  // namespace moe::rt
