// Eval over consecutive windows (see evaluator.h).
#include "evaluator.h"

#include <algorithm>

#include "byte_data.h"
#include "error.h"

namespace moe::rt {

EvalResult evaluate_bytes(MixtralModel& model, const uint8_t* text, int64_t n, int64_t max_batch, EvalShare share,
                          const EvalForward& forward) {
  if (n < 2) throw Error("eval: the text needs at least 2 bytes, got " + std::to_string(n));
  if (max_batch < 1) throw Error("eval: max_batch must be at least 1, got " + std::to_string(max_batch));
  if (share.slices < 1 || share.slice < 0 || share.slice >= share.slices)
    throw Error("eval: slice " + std::to_string(share.slice) + " of " + std::to_string(share.slices) + " ranks");
  const int64_t seq_len = model.spec().model.seq_len;
  const std::vector<Window> windows = eval_windows(n, seq_len);
  MoeLayerOptions options;
  options.training = false;
  options.force_dropless = true;
  std::mt19937_64 rng(0);  // unused: no noise in eval
  std::vector<int32_t> tokens, targets;
  double total = 0.0;
  int64_t predicted = 0;
  const int64_t group = max_batch * share.slices;  // windows per batch, all ranks together
  for (size_t w = 0; w < windows.size();) {
    // Batch consecutive windows of the same length (all but possibly the last are full).
    const int64_t len = windows[w].length, seq = len - 1;
    int64_t batch = 0;
    while (w + static_cast<size_t>(batch) < windows.size() && batch < group &&
           windows[w + static_cast<size_t>(batch)].length == len)
      ++batch;
    // This rank's windows of the batch: [first, last), possibly empty (still a forward call).
    const int64_t first = std::min(batch, share.slice * max_batch), last = std::min(batch, first + max_batch);
    const int64_t mine = last - first;
    tokens.resize(static_cast<size_t>(mine * seq));
    targets.resize(tokens.size());
    for (int64_t b = 0; b < mine; ++b) {
      const uint8_t* win = text + windows[w + static_cast<size_t>(first + b)].begin;
      for (int64_t t = 0; t < seq; ++t) {
        tokens[static_cast<size_t>(b * seq + t)] = win[t];
        targets[static_cast<size_t>(b * seq + t)] = win[t + 1];
      }
    }
    const ForwardResult r = forward ? forward(tokens.data(), targets.data(), mine, options, rng, seq)
                                    : model.forward(tokens.data(), targets.data(), mine, options, rng, seq);
    total += r.lm_loss * static_cast<double>(mine * seq);
    predicted += mine * seq;
    w += static_cast<size_t>(batch);
  }
  return {predicted > 0 ? total / static_cast<double>(predicted) : 0.0, predicted, total};
}

}  // namespace moe::rt
