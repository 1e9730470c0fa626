#pragma once
// The expert all-to-all at scale (`moe plan --simulate-a2a`, the Design workspace's scaling
// curve): one dispatch of one MoE layer over a two-level topology — NVLink inside a node,
// rail-optimised InfiniBand across nodes (each GPU's NIC on its own rail; the hierarchical exchange
// sends a token once per remote node to the GPU with the sender's local index, which forwards it
// over NVLink) — with the profile's bandwidths and per-stage latencies, for 8 to 8,192 GPUs.
// Routing is sampled (top-k without replacement over the experts' popularity: uniform, or Zipf with
// exponent `skew`, the hot experts at random places), and every GPU's sent and received bytes per
// link are accounted from the samples; the slowest GPU sets the time. Dropless; expert placement
// uniform (EP member m holds experts [m·E/ep, (m+1)·E/ep)). docs/cost-model.md §9.
#include <cstdint>
#include <map>
#include <vector>

#include "hardware_profile.h"
#include "job_spec.h"

namespace moe {

struct A2aSimCase {
  int64_t gpus = 8;          // GPUs of the job; the EP group is the largest divisor of E that divides gpus / tp
  double skew = 0;           // 0: uniform routing; s > 0: expert popularity ∝ rank^−s
  bool hierarchical = false;
};

struct A2aSimResult {
  A2aSimCase c;
  int64_t ep = 1, nodes = 1;  // EP group size and the nodes it spans
  // Bytes of one dispatch of one MoE layer and micro-batch; each the largest over the GPUs.
  double send_intra = 0, send_inter = 0, recv_intra = 0, recv_inter = 0;
  double mean_send_inter = 0;
  double load_max_over_mean = 1;  // token copies the GPUs' experts receive: busiest / mean
  double seconds = 0;             // the slowest GPU: transfers plus one latency per stage
};

class A2aSimulator {
 public:
  // `samples` token routes per skew (the estimate's error shrinks as 1/√samples); fixed seed.
  A2aSimulator(const JobSpec& spec, const HardwareProfile& hw, int64_t samples = 1 << 16, uint64_t seed = 1);
  A2aSimResult run(const A2aSimCase& c);
  int64_t samples() const { return samples_; }

 private:
  const std::vector<int32_t>& routes(double skew);  // samples × k expert ids

  JobSpec spec_;
  HardwareProfile hw_;
  int64_t samples_;
  uint64_t seed_;
  std::map<double, std::vector<int32_t>> routes_;
};

// The scaling sweep the CLI and the studio show: GPU counts 8, 16, … 8192, flat and hierarchical,
// for each skew.
std::vector<A2aSimResult> simulate_a2a_sweep(const JobSpec& spec, const HardwareProfile& hw,
                                             const std::vector<double>& skews, int64_t max_gpus = 8192);

}  // namespace moe
