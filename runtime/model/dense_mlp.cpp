// Dense SwiGLU MLP (see dense_mlp.h): three linears and one SwiGLU.
#include "dense_mlp.h"

#include <string>

#include "linear.h"
#include "param_shard.h"
#include "swiglu.h"

namespace moe::rt {

namespace {
std::string name(int64_t layer, const char* proj) {
  return "model.layers." + std::to_string(layer) + ".mlp." + proj + ".weight";
}
}  // namespace

DenseMlp::DenseMlp(int64_t layer, int64_t d_model, int64_t d_ff, const TensorParallel& tp)
    : d_model_(d_model),
      d_ff_(d_ff / tp.size),
      tp_(tp),
      gate_proj_(sharded_param(name(layer, "gate_proj"), {d_ff, d_model}, 0, tp.rank, tp.size)),
      up_proj_(sharded_param(name(layer, "up_proj"), {d_ff, d_model}, 0, tp.rank, tp.size)),
      down_proj_(sharded_param(name(layer, "down_proj"), {d_model, d_ff}, 1, tp.rank, tp.size)) {}

void DenseMlp::forward(const float* x, float* y, int64_t rows, int64_t segment_rows) {
  rows_ = rows;
  segment_rows_ = segment_rows;
  x_ = x;
  a_.resize(rows * d_ff_), b_.resize(rows * d_ff_), h_.resize(rows * d_ff_);
  linear_forward(a_.data(), x, gate_proj_.value.data(), rows, d_model_, d_ff_);
  linear_forward(b_.data(), x, up_proj_.value.data(), rows, d_model_, d_ff_);
  swiglu_forward(h_.data(), a_.data(), b_.data(), rows * d_ff_);
  linear_forward(y, h_.data(), down_proj_.value.data(), rows, d_ff_, d_model_);
  tp_.reduce(y, rows * d_model_);  // row-parallel: the hidden units' partial sums
}

void DenseMlp::backward(const float* dy, float* dx) {
  da_.resize(rows_ * d_ff_), db_.resize(rows_ * d_ff_), dh_.resize(rows_ * d_ff_);
  linear_backward(dh_.data(), grad_sink(down_proj_, segment_rows_), dy, h_.data(), down_proj_.value.data(), rows_, d_ff_,
                  d_model_);
  swiglu_backward(da_.data(), db_.data(), dh_.data(), a_.data(), b_.data(), rows_ * d_ff_);
  linear_backward(dx, grad_sink(gate_proj_, segment_rows_), da_.data(), x_, gate_proj_.value.data(), rows_, d_model_, d_ff_);
  linear_backward(dx, grad_sink(up_proj_, segment_rows_), db_.data(), x_, up_proj_.value.data(), rows_, d_model_, d_ff_,
                  true);
  tp_.reduce(dx, rows_ * d_model_);  // the conjugate: x fed every rank's hidden units
}

}  // namespace moe::rt
