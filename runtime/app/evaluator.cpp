// Eval over consecutive windows (see evaluator.h).
#include "evaluator.h"

#include "byte_data.h"
#include "error.h"

namespace moe::rt {

EvalResult evaluate_bytes(MixtralModel& model, const uint8_t* text, int64_t n, int64_t max_batch) {
  if (n < 2) throw Error("eval: the text needs at least 2 bytes, got " + std::to_string(n));
  const int64_t seq_len = model.spec().model.seq_len;
  const std::vector<Window> windows = eval_windows(n, seq_len);
  MoeLayerOptions options;
  options.training = false;
  options.force_dropless = true;
  std::mt19937_64 rng(0);  // unused: no noise in eval
  std::vector<int32_t> tokens, targets;
  double total = 0.0;
  int64_t predicted = 0;
  for (size_t w = 0; w < windows.size();) {
    // Batch consecutive windows of the same length (all but possibly the last are full).
    const int64_t len = windows[w].length, seq = len - 1;
    int64_t batch = 0;
    while (w + static_cast<size_t>(batch) < windows.size() && batch < max_batch &&
           windows[w + static_cast<size_t>(batch)].length == len)
      ++batch;
    tokens.resize(static_cast<size_t>(batch * seq));
    targets.resize(tokens.size());
    for (int64_t b = 0; b < batch; ++b) {
      const uint8_t* win = text + windows[w + static_cast<size_t>(b)].begin;
      for (int64_t t = 0; t < seq; ++t) {
        tokens[static_cast<size_t>(b * seq + t)] = win[t];
        targets[static_cast<size_t>(b * seq + t)] = win[t + 1];
      }
    }
    const ForwardResult r = model.forward(tokens.data(), targets.data(), batch, options, rng, seq);
    total += r.lm_loss * static_cast<double>(batch * seq);
    predicted += batch * seq;
    w += static_cast<size_t>(batch);
  }
  return {total / static_cast<double>(predicted), predicted};
}

}  // namespace moe::rt
