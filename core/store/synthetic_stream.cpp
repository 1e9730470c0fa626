// Deterministic synthetic metrics streams (synthetic_stream.h), written by core/metrics' codec whose
// bulk records skip the JSON library, so generating a large benchmark stream costs little next to
// ingesting it.
#include "synthetic_stream.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "record_codec.h"

namespace moe::store {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::string synthetic_run_start(const SyntheticShape& s) {
  const long long ranks = std::max<int64_t>(s.ranks, 1);
  char spec[512];
  std::snprintf(spec, sizeof spec,
                "{\"schema\":1,\"name\":\"%s\",\"model\":{\"n_layers\":%lld,\"moe\":{\"num_experts\":%lld,"
                "\"top_k\":%lld}},\"parallel\":{\"ep\":%lld}}",
                s.name.c_str(), static_cast<long long>(s.layers), static_cast<long long>(s.experts),
                static_cast<long long>(s.top_k), ranks);
  metrics::RunStartRecord rec;
  rec.spec = spec;
  rec.world_size = ranks;
  rec.backend = "cpu";
  rec.started_at = "2026-11-29T12:00:00Z";
  rec.hosts = "[\"localhost\"]";
  return metrics::to_line(rec) + "\n";
}

std::string synthetic_step(const SyntheticShape& s, int64_t step) {
  std::string out;
  out.reserve(static_cast<size_t>(s.layers * (s.experts * 8 + 80) + 400));
  const int64_t routed = s.tokens * s.top_k;
  const int64_t capacity = routed / s.experts * 5 / 4;  // capacity factor 1.25
  metrics::ExpertLoadRecord load;
  load.step = step;
  load.counts.resize(s.experts);
  load.dropped.resize(s.experts);
  metrics::A2aRecord a2a;
  a2a.step = step;
  a2a.rank_us.resize(s.ranks);
  a2a.rank_bytes.resize(s.ranks);
  std::vector<double> w(s.experts);
  for (int64_t layer = 0; layer < s.layers; ++layer) {
    // A skewed split of `routed` tokens: weight 1 + noise, a hot expert per layer.
    uint64_t h = mix(s.seed * 1000003u + static_cast<uint64_t>(step) * 7919u + static_cast<uint64_t>(layer));
    int64_t given = 0;
    double sum = 0;
    for (int64_t e = 0; e < s.experts; ++e) {
      h = mix(h);
      w[e] = 0.75 + 0.5 * static_cast<double>(h >> 11) / 9007199254740992.0 + (e == layer % s.experts ? 0.8 : 0.0);
      sum += w[e];
    }
    for (int64_t e = 0; e < s.experts; ++e) {
      load.counts[e] = static_cast<int64_t>(std::floor(routed * w[e] / sum));
      given += load.counts[e];
    }
    load.counts[0] += routed - given;
    for (int64_t e = 0; e < s.experts; ++e) load.dropped[e] = std::max<int64_t>(0, load.counts[e] - capacity);
    load.layer = layer;
    metrics::append_line(out, load);
    if (s.ranks > 0) {
      a2a.layer = layer;
      for (const char* phase : {"dispatch", "combine"}) {
        for (const char* pass : {"fwd", "bwd"}) {
          a2a.phase = phase;
          a2a.pass = pass;
          for (int64_t r = 0; r < s.ranks; ++r) {
            h = mix(h);
            a2a.rank_us[r] = 100.0 + static_cast<double>(h % 5000) / 100.0 + 10.0 * r;
            a2a.rank_bytes[r] = routed * 512 / s.ranks + r * 64;
          }
          metrics::append_line(out, a2a);
        }
      }
    }
  }
  const uint64_t h = mix(s.seed + static_cast<uint64_t>(step));
  metrics::StepRecord rec;
  rec.step = step;
  rec.loss = 5.5 * std::exp(-static_cast<double>(step) / 400.0) + 0.5 + static_cast<double>(h % 1000) / 10000.0;
  rec.aux_loss = 1.0 + static_cast<double>(h % 97) / 1000.0;
  rec.z_loss = 0.25 + static_cast<double>(h % 13) / 1000.0;
  rec.lr = 0.003;
  rec.tokens = s.tokens;
  rec.step_ms = 100.0 + static_cast<double>(h % 20);
  rec.tokens_per_s = s.tokens * 1000.0 / rec.step_ms;
  metrics::append_line(out, rec);
  return out;
}

std::string synthetic_run_end(const SyntheticShape& s, const std::string& status) {
  metrics::RunEndRecord rec;
  rec.status = status;
  rec.steps = s.steps;
  return metrics::to_line(rec) + "\n";
}

std::string synthetic_stream(const SyntheticShape& s) {
  std::string out;
  if (s.run_start) out += synthetic_run_start(s);
  for (int64_t step = 1; step <= s.steps; ++step) out += synthetic_step(s, step);
  if (s.run_end) out += synthetic_run_end(s);
  return out;
}

}  // namespace moe::store
