// Parsing one line of the metrics stream into a typed record (stream_record.h).
#include "stream_record.h"

#include <limits>

#include <nlohmann/json.hpp>

#include "job_spec.h"

namespace moe::store {

namespace {

using json = nlohmann::json;

struct Bad {
  std::string reason;
};

const json& field(const json& rec, const char* type, const char* key) {
  auto it = rec.find(key);
  if (it == rec.end()) throw Bad{std::string(type) + ": missing '" + key + "'"};
  return *it;
}

int64_t as_int(const json& v, const char* type, const char* key) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw Bad{std::string(type) + ": '" + key + "' is out of range"};
    }
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (!v.is_number_integer()) {
    throw Bad{std::string(type) + ": '" + key + "' must be an integer, got " + v.type_name()};
  }
  return v.get<int64_t>();
}

int64_t get_int(const json& rec, const char* type, const char* key) {
  return as_int(field(rec, type, key), type, key);
}

int64_t get_index(const json& rec, const char* type, const char* key) {
  int64_t v = get_int(rec, type, key);
  if (v < 0) throw Bad{std::string(type) + ": '" + key + "' is negative"};
  return v;
}

// Bounds far beyond any real run that keep the store's arithmetic inside int64 (sums of a batch,
// n_layers = layer + 1, step spans of the plots; steps also travel as doubles, exact below 2^53).
constexpr int64_t kMaxStep = int64_t{1} << 53;
constexpr int64_t kMaxLayer = int64_t{1} << 20;
constexpr int64_t kMaxTokens = int64_t{1} << 40;  // per step, like an expert's count

int64_t get_bounded(const json& rec, const char* type, const char* key, int64_t max) {
  int64_t v = get_index(rec, type, key);
  if (v > max) throw Bad{std::string(type) + ": '" + key + "' is out of range (above " + std::to_string(max) + ")"};
  return v;
}

double get_num(const json& rec, const char* type, const char* key) {
  const json& v = field(rec, type, key);
  if (!v.is_number()) throw Bad{std::string(type) + ": '" + key + "' must be a number, got " + v.type_name()};
  return v.get<double>();
}

std::string get_str(const json& rec, const char* type, const char* key) {
  const json& v = field(rec, type, key);
  if (!v.is_string()) throw Bad{std::string(type) + ": '" + key + "' must be a string, got " + v.type_name()};
  return v.get<std::string>();
}

constexpr size_t kMaxArray = 1 << 20;  // experts or ranks

const json& get_array(const json& rec, const char* type, const char* key) {
  const json& v = field(rec, type, key);
  if (!v.is_array()) throw Bad{std::string(type) + ": '" + key + "' must be an array"};
  if (v.size() > kMaxArray) throw Bad{std::string(type) + ": '" + key + "' is too long"};
  return v;
}

std::vector<int64_t> get_ints(const json& rec, const char* type, const char* key, bool non_negative) {
  const json& a = get_array(rec, type, key);
  std::vector<int64_t> out;
  out.reserve(a.size());
  for (const json& v : a) {
    int64_t x = as_int(v, type, key);
    if (non_negative && x < 0) throw Bad{std::string(type) + ": '" + key + "' has a negative value"};
    out.push_back(x);
  }
  return out;
}

std::vector<double> get_nums(const json& rec, const char* type, const char* key) {
  const json& a = get_array(rec, type, key);
  std::vector<double> out;
  out.reserve(a.size());
  for (const json& v : a) {
    if (!v.is_number()) throw Bad{std::string(type) + ": '" + key + "' must hold numbers"};
    out.push_back(v.get<double>());
  }
  return out;
}

// Fields other than `type` and the contract's: kept verbatim for the round trip.
std::string extra_of(const json& rec, std::initializer_list<const char*> known) {
  json extra = json::object();
  for (auto it = rec.begin(); it != rec.end(); ++it) {
    if (it.key() == "type") continue;
    bool is_known = false;
    for (const char* k : known) is_known = is_known || it.key() == k;
    if (!is_known) extra[it.key()] = it.value();
  }
  return extra.empty() ? std::string() : extra.dump();
}

Record parse_record(const std::string& type, const json& rec) {
  const char* t = type.c_str();
  if (type == "step") {
    StepRecord r;
    r.step = get_bounded(rec, t, "step", kMaxStep);
    r.loss = get_num(rec, t, "loss");
    r.aux_loss = get_num(rec, t, "aux_loss");
    r.z_loss = get_num(rec, t, "z_loss");
    r.lr = get_num(rec, t, "lr");
    r.tokens = get_bounded(rec, t, "tokens", kMaxTokens);
    r.step_ms = get_num(rec, t, "step_ms");
    r.tokens_per_s = get_num(rec, t, "tokens_per_s");
    r.extra = extra_of(rec, {"step", "loss", "aux_loss", "z_loss", "lr", "tokens", "step_ms", "tokens_per_s"});
    return r;
  }
  if (type == "expert_load") {
    ExpertLoadRecord r;
    r.step = get_bounded(rec, t, "step", kMaxStep);
    r.layer = get_bounded(rec, t, "layer", kMaxLayer);
    r.counts = get_ints(rec, t, "counts", true);
    r.dropped = get_ints(rec, t, "dropped", true);
    if (r.counts.size() != r.dropped.size()) throw Bad{"expert_load: counts and dropped differ in length"};
    for (size_t e = 0; e < r.counts.size(); ++e) {
      if (r.dropped[e] > r.counts[e]) {
        throw Bad{"expert_load: expert " + std::to_string(e) + " dropped more tokens than chose it"};
      }
      // Sums of a step must not overflow int64: bound each count well below.
      if (r.counts[e] > (int64_t{1} << 40)) throw Bad{"expert_load: 'counts' is out of range"};
    }
    r.extra = extra_of(rec, {"step", "layer", "counts", "dropped"});
    return r;
  }
  if (type == "a2a") {
    A2aRecord r;
    r.step = get_bounded(rec, t, "step", kMaxStep);
    r.layer = get_bounded(rec, t, "layer", kMaxLayer);
    r.phase = get_str(rec, t, "phase");
    r.pass = get_str(rec, t, "pass");
    if (r.phase != "dispatch" && r.phase != "combine") throw Bad{"a2a: phase must be dispatch or combine"};
    if (r.pass != "fwd" && r.pass != "bwd") throw Bad{"a2a: pass must be fwd or bwd"};
    r.rank_us = get_nums(rec, t, "rank_us");
    r.rank_bytes = get_ints(rec, t, "rank_bytes", true);
    if (r.rank_us.size() != r.rank_bytes.size()) throw Bad{"a2a: rank_us and rank_bytes differ in length"};
    if (rec.contains("intra_bytes")) r.intra_bytes = get_index(rec, t, "intra_bytes");
    if (rec.contains("inter_bytes")) r.inter_bytes = get_index(rec, t, "inter_bytes");
    r.extra = extra_of(rec, {"step", "layer", "phase", "pass", "rank_us", "rank_bytes", "intra_bytes",
                             "inter_bytes"});
    return r;
  }
  if (type == "run_start") {
    RunStartRecord r;
    r.schema = get_int(rec, t, "schema");
    const json& spec = field(rec, t, "spec");
    if (!spec.is_object()) throw Bad{"run_start: 'spec' must be an object"};
    r.spec = spec.dump();
    r.world_size = get_int(rec, t, "world_size");
    if (r.world_size < 1) throw Bad{"run_start: 'world_size' must be at least 1"};
    r.backend = get_str(rec, t, "backend");
    r.started_at = get_str(rec, t, "started_at");
    r.hosts = get_array(rec, t, "hosts").dump();
    r.extra = extra_of(rec, {"schema", "spec", "world_size", "backend", "started_at", "hosts"});
    return r;
  }
  if (type == "checkpoint") {
    CheckpointRecord r;
    r.step = get_bounded(rec, t, "step", kMaxStep);
    r.path = get_str(rec, t, "path");
    r.extra = extra_of(rec, {"step", "path"});
    return r;
  }
  if (type == "run_end") {
    RunEndRecord r;
    r.status = get_str(rec, t, "status");
    if (r.status != "completed" && r.status != "failed" && r.status != "cancelled") {
      throw Bad{"run_end: status must be completed, failed or cancelled"};
    }
    r.steps = get_bounded(rec, t, "steps", kMaxStep);
    if (rec.contains("reason")) r.reason = get_str(rec, t, "reason");
    r.extra = extra_of(rec, {"status", "steps", "reason"});
    return r;
  }
  // type == "log"
  EventRecord r;
  r.kind = rec.contains("level") && rec["level"].is_string() ? rec["level"].get<std::string>() : "log";
  r.message = get_str(rec, t, "message");
  return r;
}

}  // namespace

ParsedLine parse_line(std::string_view line) {
  size_t first = line.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return Ignored{};
  // Copying and dumping a value recurse per level: a deep line must not reach them (job_spec.h).
  if (moe::json_nesting_exceeds(line)) return Malformed{"nested deeper than " + std::to_string(moe::kMaxJsonDepth) + " levels"};
  json rec;
  try {
    rec = json::parse(line);
  } catch (const json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at …" → keep the part after the tag.
    size_t tag = what.find("] ");
    return Malformed{"not JSON (" + (tag == std::string::npos ? what : what.substr(tag + 2)) + ")"};
  }
  if (!rec.is_object()) return Malformed{"not a JSON object"};
  auto type_it = rec.find("type");
  if (type_it == rec.end() || !type_it->is_string()) return Malformed{"no string field 'type'"};
  const std::string& type = type_it->get_ref<const std::string&>();
  static const char* const known[] = {"run_start", "step", "expert_load", "a2a", "checkpoint", "run_end", "log"};
  bool is_known = false;
  for (const char* k : known) is_known = is_known || type == k;
  if (!is_known) return Ignored{};
  try {
    return parse_record(type, rec);
  } catch (const Bad& b) {
    return Malformed{b.reason};
  } catch (const json::exception& e) {
    return Malformed{type + ": " + e.what()};
  }
}

// Length of the valid UTF-8 sequence at text[i] (RFC 3629: no overlongs, no surrogates), 0 if invalid.
static size_t utf8_length(std::string_view text, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char c = at(i);
  if (c < 0x80) return 1;
  size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (len == 0 || i + len > text.size()) return 0;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c == 0xe0) lo = 0xa0;
  if (c == 0xed) hi = 0x9f;
  if (c == 0xf0) lo = 0x90;
  if (c == 0xf4) hi = 0x8f;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (at(i + k) < 0x80 || at(i + k) > 0xbf) return 0;
  }
  return len;
}

std::string printable_prefix(std::string_view text, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < text.size() && out.size() < max_bytes) {
    unsigned char c = text[i];
    size_t len = utf8_length(text, i);
    if (len > 0 && !(len == 1 && (c < 0x20 || c == 0x7f))) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  if (i < text.size()) out += "…";
  return out;
}

}  // namespace moe::store
