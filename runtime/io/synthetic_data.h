#pragma once
// A synthetic multi-domain corpus for tests where experts should specialise: several "languages",
// each with its own alphabet (disjoint byte ranges) and its own grammar, one language per line.
// Deterministic for a seed on every platform (own integer RNG, no std distributions).
#include <cstdint>
#include <vector>

namespace moe::rt {

inline constexpr int kSyntheticLanguages = 4;

// `n_bytes` bytes of text; line i is in one language chosen at random.
std::vector<uint8_t> generate_synthetic(uint64_t seed, int64_t n_bytes);

// Which language a byte belongs to (0..kSyntheticLanguages-1), or -1 for the shared '\n'.
int synthetic_language_of(uint8_t byte);

// SplitMix64: the project's small counter-based RNG (data sampling, synthetic text).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace moe::rt
