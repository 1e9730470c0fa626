// Deterministic synthetic metrics streams (synthetic_stream.h). Written with snprintf, not a JSON
// library, so generating a large benchmark stream costs little next to ingesting it.
#include "synthetic_stream.h"

#include <cmath>
#include <cstdio>
#include <vector>

namespace moe::store {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  out.append(buf, n);
}

void append_num(std::string& out, double v) {
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%.17g", v);
  out.append(buf, n);
}

}  // namespace

std::string synthetic_run_start(const SyntheticShape& s) {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "{\"type\":\"run_start\",\"schema\":1,\"spec\":{\"schema\":1,\"name\":\"%s\",\"model\":{\"n_layers\":%lld,"
                "\"moe\":{\"num_experts\":%lld,\"top_k\":%lld}},\"parallel\":{\"ep\":%lld}},\"world_size\":%lld,"
                "\"backend\":\"cpu\",\"started_at\":\"2026-11-29T12:00:00Z\",\"hosts\":[\"localhost\"]}\n",
                s.name.c_str(), static_cast<long long>(s.layers), static_cast<long long>(s.experts),
                static_cast<long long>(s.top_k), static_cast<long long>(std::max<int64_t>(s.ranks, 1)),
                static_cast<long long>(std::max<int64_t>(s.ranks, 1)));
  return buf;
}

std::string synthetic_step(const SyntheticShape& s, int64_t step) {
  std::string out;
  out.reserve(static_cast<size_t>(s.layers * (s.experts * 8 + 80) + 400));
  const int64_t routed = s.tokens * s.top_k;
  const int64_t capacity = routed / s.experts * 5 / 4;  // capacity factor 1.25
  std::vector<int64_t> counts(s.experts);
  for (int64_t layer = 0; layer < s.layers; ++layer) {
    // A skewed split of `routed` tokens: weight 1 + noise, a hot expert per layer.
    uint64_t h = mix(s.seed * 1000003u + static_cast<uint64_t>(step) * 7919u + static_cast<uint64_t>(layer));
    int64_t given = 0;
    std::vector<double> w(s.experts);
    double sum = 0;
    for (int64_t e = 0; e < s.experts; ++e) {
      h = mix(h);
      w[e] = 0.75 + 0.5 * static_cast<double>(h >> 11) / 9007199254740992.0 + (e == layer % s.experts ? 0.8 : 0.0);
      sum += w[e];
    }
    for (int64_t e = 0; e < s.experts; ++e) {
      counts[e] = static_cast<int64_t>(std::floor(routed * w[e] / sum));
      given += counts[e];
    }
    counts[0] += routed - given;
    out += "{\"type\":\"expert_load\",\"step\":";
    append_int(out, step);
    out += ",\"layer\":";
    append_int(out, layer);
    out += ",\"counts\":[";
    for (int64_t e = 0; e < s.experts; ++e) {
      if (e) out += ',';
      append_int(out, counts[e]);
    }
    out += "],\"dropped\":[";
    for (int64_t e = 0; e < s.experts; ++e) {
      if (e) out += ',';
      append_int(out, std::max<int64_t>(0, counts[e] - capacity));
    }
    out += "]}\n";
    if (s.ranks > 0) {
      for (const char* phase : {"dispatch", "combine"}) {
        for (const char* pass : {"fwd", "bwd"}) {
          out += "{\"type\":\"a2a\",\"step\":";
          append_int(out, step);
          out += ",\"layer\":";
          append_int(out, layer);
          out += ",\"phase\":\"";
          out += phase;
          out += "\",\"pass\":\"";
          out += pass;
          out += "\",\"rank_us\":[";
          for (int64_t r = 0; r < s.ranks; ++r) {
            h = mix(h);
            if (r) out += ',';
            append_num(out, 100.0 + static_cast<double>(h % 5000) / 100.0 + 10.0 * r);
          }
          out += "],\"rank_bytes\":[";
          for (int64_t r = 0; r < s.ranks; ++r) {
            if (r) out += ',';
            append_int(out, routed * 512 / s.ranks + r * 64);
          }
          out += "]}\n";
        }
      }
    }
  }
  uint64_t h = mix(s.seed + static_cast<uint64_t>(step));
  double loss = 5.5 * std::exp(-static_cast<double>(step) / 400.0) + 0.5 + static_cast<double>(h % 1000) / 10000.0;
  out += "{\"type\":\"step\",\"step\":";
  append_int(out, step);
  out += ",\"loss\":";
  append_num(out, loss);
  out += ",\"aux_loss\":";
  append_num(out, 1.0 + static_cast<double>(h % 97) / 1000.0);
  out += ",\"z_loss\":";
  append_num(out, 0.25 + static_cast<double>(h % 13) / 1000.0);
  out += ",\"lr\":0.003,\"tokens\":";
  append_int(out, s.tokens);
  out += ",\"step_ms\":";
  append_num(out, 100.0 + static_cast<double>(h % 20));
  out += ",\"tokens_per_s\":";
  append_num(out, s.tokens * 1000.0 / (100.0 + static_cast<double>(h % 20)));
  out += "}\n";
  return out;
}

std::string synthetic_run_end(const SyntheticShape& s, const std::string& status) {
  return "{\"type\":\"run_end\",\"status\":\"" + status + "\",\"steps\":" + std::to_string(s.steps) + "}\n";
}

std::string synthetic_stream(const SyntheticShape& s) {
  std::string out;
  if (s.run_start) out += synthetic_run_start(s);
  for (int64_t step = 1; step <= s.steps; ++step) out += synthetic_step(s, step);
  if (s.run_end) out += synthetic_run_end(s);
  return out;
}

}  // namespace moe::store
