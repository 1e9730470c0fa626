#pragma once
// A process-wide pool of worker threads for the CPU runtime's own kernels (ordered_gemm): started
// once, so a GEMM of a few hundred microseconds does not pay for thread creation. One job runs at a
// time; a call made while another thread's job runs (or from inside a job) runs serially instead.
#include <cstdint>
#include <functional>

namespace moe::rt {

// Runs fn(i) for every i in [0, n) on up to `threads` threads (the caller is one of them) and
// returns when all are done. Which thread runs which i is unspecified: fn must not depend on it.
void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& fn);

}  // namespace moe::rt
