// The synthetic multi-domain generator. Four languages, disjoint alphabets:
//   0 "syllabic": lowercase consonant-vowel words ("tako mele"), sentences end with '.'
//   1 "arithmetic": correct sums over digits and "+=;" ("12+7=19;")
//   2 "shouting": uppercase words from a small vocabulary following a fixed bigram chain, '_' and '!'
//   3 "high bytes": bytes 0xA0-0xDF following a modular recurrence with random restarts
// Each has structure a model can learn, and a router can tell them apart by alphabet alone.
#include "synthetic_data.h"

#include <string>

namespace moe::rt {
namespace {

struct Rng {
  uint64_t state;
  uint64_t next() { return state = splitmix64(state); }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
};

void syllabic(Rng& rng, std::string& out) {
  static const char consonants[] = "bdfgklmnprstvz";
  static const char vowels[] = "aeiou";
  const int64_t words = 3 + rng.below(8);
  for (int64_t w = 0; w < words; ++w) {
    const int64_t syllables = 1 + rng.below(3);
    for (int64_t s = 0; s < syllables; ++s) {
      out += consonants[rng.below(14)];
      out += vowels[rng.below(5)];
    }
    out += w + 1 < words ? ' ' : '.';
  }
}

void arithmetic(Rng& rng, std::string& out) {
  const int64_t sums = 2 + rng.below(5);
  for (int64_t i = 0; i < sums; ++i) {
    const int64_t a = rng.below(100), b = rng.below(100);
    out += std::to_string(a) + "+" + std::to_string(b) + "=" + std::to_string(a + b) + ";";
  }
}

void shouting(Rng& rng, std::string& out) {
  static const char* words[] = {"ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"};
  int64_t w = rng.below(8);
  const int64_t n = 3 + rng.below(6);
  for (int64_t i = 0; i < n; ++i) {
    out += words[w];
    out += i + 1 < n ? '_' : '!';
    w = (w * 3 + 1 + (rng.below(4) == 0 ? 1 : 0)) % 8;  // a mostly deterministic bigram chain
  }
}

void high_bytes(Rng& rng, std::string& out) {
  const int64_t n = 20 + rng.below(60);
  int64_t v = rng.below(64);
  for (int64_t i = 0; i < n; ++i) {
    out += static_cast<char>(0xA0 + v);
    v = rng.below(8) == 0 ? rng.below(64) : (v * 5 + 3) % 64;
  }
}

}  // namespace

int synthetic_language_of(uint8_t c) {
  if (c == '\n') return -1;
  if ((c >= 'a' && c <= 'z') || c == ' ' || c == '.') return 0;
  if ((c >= '0' && c <= '9') || c == '+' || c == '=' || c == ';') return 1;
  if ((c >= 'A' && c <= 'Z') || c == '_' || c == '!') return 2;
  if (c >= 0xA0 && c <= 0xDF) return 3;
  return -1;
}

std::vector<uint8_t> generate_synthetic(uint64_t seed, int64_t n_bytes) {
  Rng rng{splitmix64(seed ^ 0x5EED5EED5EEDull)};
  std::string text;
  text.reserve(static_cast<size_t>(n_bytes) + 512);
  while (static_cast<int64_t>(text.size()) < n_bytes) {
    switch (rng.below(kSyntheticLanguages)) {
      case 0: syllabic(rng, text); break;
      case 1: arithmetic(rng, text); break;
      case 2: shouting(rng, text); break;
      default: high_bytes(rng, text); break;
    }
    text += '\n';
  }
  text.resize(static_cast<size_t>(n_bytes));
  return std::vector<uint8_t>(text.begin(), text.end());
}

}  // namespace moe::rt
