// The pipeline's stage split and 1F1B order (core/pipeline_schedule.h), checked by playing the
// schedule: every stage runs its ops in order, a forward waits for the previous stage's forward of
// that micro-batch and a backward for the next stage's backward.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "pipeline_schedule.h"

namespace {

using moe::PipelineOp;

// The interleaved schedule played out: virtual stage j = chunk·pp + s; a forward waits for
// virtual stage j − 1's forward of its micro-batch (on the previous stage, or for chunk > 0 on
// stage 0 the last stage's chunk − 1), a backward for j + 1's backward and its own forward. Sends
// do not block (moe-runtime posts them asynchronously). Returns the makespan, −1 on a deadlock.
double play_interleaved(int64_t stages, int64_t chunks, int64_t micro, double f, double b) {
  std::vector<std::vector<PipelineOp>> ops;
  for (int64_t s = 0; s < stages; ++s) ops.push_back(moe::interleaved_one_f_one_b(stages, s, micro, chunks));
  const int64_t last = stages * chunks - 1;
  std::vector<size_t> next(static_cast<size_t>(stages), 0);
  std::vector<double> clock(static_cast<size_t>(stages), 0.0);
  std::map<std::tuple<bool, int64_t, int64_t>, double> done;  // (forward, virtual stage, micro) → end time
  for (bool progress = true; progress;) {
    progress = false;
    for (int64_t s = 0; s < stages; ++s) {
      auto& i = next[static_cast<size_t>(s)];
      if (i == ops[static_cast<size_t>(s)].size()) continue;
      const PipelineOp op = ops[static_cast<size_t>(s)][i];
      const int64_t j = op.chunk * stages + s;
      const bool edge = op.forward ? j == 0 : j == last;
      const auto dep = done.find({op.forward, op.forward ? j - 1 : j + 1, op.micro});
      if (!edge && dep == done.end()) continue;
      if (!op.forward && !done.count({true, j, op.micro})) continue;
      const double start = std::max(clock[static_cast<size_t>(s)], edge ? 0.0 : dep->second);
      clock[static_cast<size_t>(s)] = start + (op.forward ? f : b) / static_cast<double>(chunks);
      done[{op.forward, j, op.micro}] = clock[static_cast<size_t>(s)];
      ++i, progress = true;
    }
  }
  for (int64_t s = 0; s < stages; ++s)
    if (next[static_cast<size_t>(s)] != ops[static_cast<size_t>(s)].size()) return -1;
  return *std::max_element(clock.begin(), clock.end());
}

// Plays every stage's 1F1B order with forward time f and backward time b; returns the makespan,
// or −1 if the stages wait on each other forever (the interleaved play with one chunk).
double play(int64_t stages, int64_t micro, double f, double b) { return play_interleaved(stages, 1, micro, f, b); }

TEST(PipelineSchedule, StagesPartitionTheLayersEvenly) {
  for (int64_t layers : {1, 2, 5, 8, 61})
    for (int64_t stages = 1; stages <= layers && stages <= 8; ++stages) {
      int64_t at = 0;
      for (int64_t s = 0; s < stages; ++s) {
        const moe::StageLayers l = moe::stage_layers(layers, stages, s);
        EXPECT_EQ(l.begin, at);
        EXPECT_GE(l.end - l.begin, layers / stages);
        EXPECT_LE(l.end - l.begin, layers / stages + 1);
        at = l.end;
      }
      EXPECT_EQ(at, layers);
    }
}

TEST(PipelineSchedule, AnExplicitSplitGivesEachStageItsCount) {
  const std::vector<int64_t> split = {1, 3, 2};
  EXPECT_EQ(moe::layers_per_stage(6, 3, split), split);
  EXPECT_EQ(moe::stage_layers(6, 3, 1, split).begin, 1);
  EXPECT_EQ(moe::stage_layers(6, 3, 1, split).end, 4);
  EXPECT_EQ(moe::stage_layers(6, 3, 2, split).begin, 4);
  // A split of another length is not this layout's: the even one.
  EXPECT_EQ(moe::layers_per_stage(6, 2, split), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(moe::layers_per_stage(7, 3), (std::vector<int64_t>{2, 2, 3}));
}

TEST(PipelineSchedule, EveryStageRunsEachMicroBatchOnceForwardThenBackward) {
  for (int64_t stages = 1; stages <= 6; ++stages)
    for (int64_t micro = 1; micro <= 9; ++micro)
      for (int64_t s = 0; s < stages; ++s) {
        const auto ops = moe::one_f_one_b(stages, s, micro);
        ASSERT_EQ(ops.size(), static_cast<size_t>(2 * micro));
        int64_t forwards = 0, backwards = 0, most_in_flight = 0;
        for (const PipelineOp& op : ops) {
          EXPECT_EQ(op.micro, op.forward ? forwards : backwards) << "in micro-batch order";
          (op.forward ? forwards : backwards) += 1;
          EXPECT_LE(backwards, forwards);
          most_in_flight = std::max(most_in_flight, forwards - backwards);
        }
        // 1F1B's memory bound: stage s never holds more than pp − s micro-batches.
        EXPECT_EQ(most_in_flight, std::min(stages - s, micro)) << stages << " stages, stage " << s << ", " << micro;
      }
}

TEST(PipelineSchedule, PlayedOutTheBubbleIsTheFormulas) {
  for (int64_t stages = 1; stages <= 6; ++stages)
    for (int64_t micro = 1; micro <= 12; ++micro) {
      const double f = 1.0, b = 2.0;
      const double makespan = play(stages, micro, f, b);
      ASSERT_GT(makespan, 0) << stages << " stages, " << micro << " micro-batches deadlock";
      const double busy = static_cast<double>(micro) * (f + b);
      EXPECT_NEAR(1.0 - busy / makespan, moe::bubble_fraction(stages, micro), 1e-12) << stages << " × " << micro;
    }
  EXPECT_DOUBLE_EQ(moe::bubble_fraction(4, 8), 3.0 / 11.0);
  EXPECT_EQ(moe::bubble_fraction(1, 8), 0.0);
}

// Interleaved, with pp dividing the micro-batches (Megatron's rule; otherwise the order can
// deadlock, e.g. 4 stages, 3 chunks, 5 micro-batches, and moe-runtime refuses it): every
// (micro-batch, chunk) forward and backward once, each chunk's in micro-batch order, no deadlock,
// and the bubble is (pp − 1)/(v·m + pp − 1), the formula the cost model prices (bubble_fraction
// of v·m), 1/v of plain 1F1B's for large m.
TEST(PipelineSchedule, InterleavedEveryChunkOnceInOrderWithoutDeadlockAndItsBubble) {
  for (int64_t stages = 2; stages <= 4; ++stages)
    for (int64_t chunks = 1; chunks <= 3; ++chunks)
      for (int64_t micro = stages; micro <= 12; micro += stages) {  // Megatron's rule (a multiple of pp)
        for (int64_t s = 0; s < stages; ++s) {
          const auto ops = moe::interleaved_one_f_one_b(stages, s, micro, chunks);
          ASSERT_EQ(ops.size(), static_cast<size_t>(2 * micro * chunks));
          std::vector<int64_t> forwards(static_cast<size_t>(chunks), 0), backwards = forwards;
          for (const PipelineOp& op : ops) {
            ASSERT_GE(op.chunk, 0);
            ASSERT_LT(op.chunk, chunks);
            auto& seen = (op.forward ? forwards : backwards)[static_cast<size_t>(op.chunk)];
            EXPECT_EQ(op.micro, seen) << "chunk " << op.chunk << " in micro-batch order";
            ++seen;
          }
          for (int64_t c = 0; c < chunks; ++c) EXPECT_EQ(forwards[static_cast<size_t>(c)], micro);
        }
        const double f = 1.0, b = 2.0, makespan = play_interleaved(stages, chunks, micro, f, b);
        ASSERT_GT(makespan, 0) << stages << " stages, " << chunks << " chunks, " << micro << " micro-batches deadlock";
        EXPECT_NEAR(1.0 - static_cast<double>(micro) * (f + b) / makespan, moe::bubble_fraction(stages, micro * chunks),
                    1e-12) << stages << " stages, " << chunks << " chunks, " << micro << " micro-batches";
      }
  // Chunk c of stage s is virtual stage c·pp + s of the even split.
  const auto chunks = moe::stage_chunks(8, 2, 2, 1);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].begin, 2);
  EXPECT_EQ(chunks[0].end, 4);
  EXPECT_EQ(chunks[1].begin, 6);
  EXPECT_EQ(chunks[1].end, 8);
  EXPECT_EQ(moe::stage_chunks(8, 2, 1, 1)[0].begin, 4);
}

}  // namespace
