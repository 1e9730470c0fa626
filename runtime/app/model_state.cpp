// Model/optimizer/run state ⇄ checkpoint directory (see model_state.h).
#include "model_state.h"

#include <deque>

#include "error.h"
#include "param_shard.h"

namespace moe::rt {

namespace {
// Loading into tensor-parallel slices: the checkpoint holds logical tensors, so a sliced param's
// tensor is read whole into a buffer and its slice kept (take).
class SliceLoads {
 public:
  TensorDest dest(const Param& p, const std::string& name, std::vector<float>& into) {
    if (!p.shard.sharded()) return {name, p.shape, into.data()};
    pending_.push_back({&p, &into, std::vector<float>(static_cast<size_t>(full_numel(p)))});
    return {name, p.shard.full, pending_.back().full.data()};
  }
  void take() {
    for (auto& s : pending_) take_slice(*s.param, s.full.data(), s.into->data());
  }

 private:
  struct Pending {
    const Param* param;
    std::vector<float>* into;
    std::vector<float> full;
  };
  std::deque<Pending> pending_;  // stable addresses: the dests point into it
};
}  // namespace

std::filesystem::path save_training_checkpoint(const std::filesystem::path& root, MixtralModel& model,
                                               AdamW* optimizer, const RunState& state,
                                               const CheckpointData* extra) {
  CheckpointData data;
  // A tensor-parallel slice is written as its logical tensor, which `extra` carries (gathered).
  for (Param* p : model.named_params())
    if (!p->shard.sharded()) data.weights.push_back({p->name, p->shape, p->value.data()});
  if (extra) data.weights.insert(data.weights.end(), extra->weights.begin(), extra->weights.end());
  if (extra && optimizer) data.optimizer = extra->optimizer;
  if (optimizer) {
    const auto& params = optimizer->params();
    auto& m = optimizer->exp_avg();
    auto& v = optimizer->exp_avg_sq();
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i]->shard.sharded()) continue;
      data.optimizer.push_back({"exp_avg." + params[i]->name, params[i]->shape, m[i].data()});
      data.optimizer.push_back({"exp_avg_sq." + params[i]->name, params[i]->shape, v[i].data()});
    }
    data.trainer_state["optimizer_steps"] = optimizer->steps();
  }
  nlohmann::json biases = nlohmann::json::object();
  const auto layers = model.moe_layers();
  const auto index = model.moe_layer_indices();
  for (size_t i = 0; i < layers.size(); ++i) biases[std::to_string(index[i])] = layers[i]->balancing_bias();
  if (extra && extra->trainer_state.contains("balancing_bias"))  // the other pipeline stages' layers
    for (const auto& [layer, bias] : extra->trainer_state["balancing_bias"].items()) biases[layer] = bias;
  data.trainer_state["balancing_bias"] = biases;
  data.trainer_state["data_position"] = state.data_position;
  data.trainer_state["rng"] = rng_to_string(state.rng);
  return save_checkpoint(root, state.step, model.spec(), data);
}

void load_model_weights(const LoadedCheckpoint& ck, MixtralModel& model) {
  std::vector<TensorDest> dest;
  SliceLoads slices;
  for (Param* p : model.named_params()) dest.push_back(slices.dest(*p, p->name, p->value));
  load_tensors(ck.weights, ck.dir / "model.safetensors", dest);
  slices.take();
  if (!ck.trainer_state.contains("balancing_bias")) return;
  const auto& biases = ck.trainer_state["balancing_bias"];
  const auto layers = model.moe_layers();
  const auto index = model.moe_layer_indices();
  const std::string where = (ck.dir / "trainer_state.json").string();
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string key = std::to_string(index[i]);
    if (!biases.contains(key)) throw Error(where + ": balancing_bias of layer " + key + " is missing");
    std::vector<float> b;
    try {
      b = biases[key].get<std::vector<float>>();
    } catch (const nlohmann::json::exception&) {
      throw Error(where + ": balancing_bias of layer " + key + " is not a list of numbers");
    }
    if (b.size() != layers[i]->balancing_bias().size())
      throw Error(where + ": balancing_bias of layer " + key + " has " + std::to_string(b.size()) + " entries, the model has " +
                  std::to_string(layers[i]->balancing_bias().size()) + " experts");
    layers[i]->balancing_bias() = b;
  }
}

RunState load_run_state(const LoadedCheckpoint& ck, AdamW& optimizer) {
  const std::string where = (ck.dir / "trainer_state.json").string();
  const auto& s = ck.trainer_state;
  for (const char* key : {"step", "data_position", "rng", "optimizer_steps"})
    if (!s.contains(key)) throw Error(where + ": " + key + " is missing (cannot resume)");
  RunState state;
  try {
    state.step = s["step"].get<int64_t>();
    state.data_position = s["data_position"].get<int64_t>();
    optimizer.set_steps(s["optimizer_steps"].get<int64_t>());
    state.rng = rng_from_string(s["rng"].get<std::string>(), where);
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": step, data_position, optimizer_steps or rng has the wrong type");
  }
  std::vector<TensorDest> dest;
  SliceLoads slices;
  const auto& params = optimizer.params();
  for (size_t i = 0; i < params.size(); ++i) {
    dest.push_back(slices.dest(*params[i], "exp_avg." + params[i]->name, optimizer.exp_avg()[i]));
    dest.push_back(slices.dest(*params[i], "exp_avg_sq." + params[i]->name, optimizer.exp_avg_sq()[i]));
  }
  load_tensors(ck.optimizer, ck.dir / "optimizer.safetensors", dest);
  slices.take();
  return state;
}

}  // namespace moe::rt
