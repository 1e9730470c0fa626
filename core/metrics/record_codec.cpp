// The metrics stream's writer and reader (see record_codec.h): the only file that spells its keys.
#include "record_codec.h"

#include <charconv>
#include <cmath>
#include <ctime>
#include <limits>

#include <nlohmann/json.hpp>

#include "job_spec.h"  // json_nesting_exceeds

namespace moe::metrics {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// ---- writing --------------------------------------------------------------------------------

template <typename T>
void put(ojson& o, const char* key, const std::optional<T>& v) {
  if (v) o[key] = *v;
}
template <typename T>
void put(ojson& o, const char* key, const std::vector<T>& v) {
  if (!v.empty()) o[key] = v;
}

// The fields of `extra` (a JSON object text) that `o` does not have yet.
void merge_extra(ojson& o, const std::string& extra) {
  if (extra.empty()) return;
  const ojson e = ojson::parse(extra, nullptr, false);
  if (!e.is_object()) return;
  for (auto it = e.begin(); it != e.end(); ++it)
    if (!o.contains(it.key())) o[it.key()] = it.value();
}

// The extensions of each record, in the order they are written.
void put_extensions(ojson& o, const RunStartRecord& r) {
  put(o, "params", r.params), put(o, "data", r.data), put(o, "train_bytes", r.train_bytes);
  put(o, "val_bytes", r.val_bytes), put(o, "gemm", r.gemm), put(o, "gemm_threads", r.gemm_threads);
  put(o, "resumed_at", r.resumed_at), put(o, "device", r.device), put(o, "dtype", r.dtype);
}
void put_extensions(ojson& o, const StepRecord& r) {
  put(o, "grad_norm", r.grad_norm), put(o, "val_loss", r.val_loss), put(o, "val_rank_bytes", r.val_rank_bytes);
}
void put_extensions(ojson&, const ExpertLoadRecord&) {}
void put_extensions(ojson& o, const A2aRecord& r) {
  put(o, "rank_intra_bytes", r.rank_intra_bytes), put(o, "rank_inter_bytes", r.rank_inter_bytes);
  put(o, "rank_exposed_us", r.rank_exposed_us), put(o, "rank_meta_bytes", r.rank_meta_bytes);
  put(o, "rank_counts_us", r.rank_counts_us), put(o, "rank_rows", r.rank_rows);
  put(o, "rank_slot_rows", r.rank_slot_rows);
}
void put_extensions(ojson&, const CheckpointRecord&) {}
void put_extensions(ojson& o, const RunEndRecord& r) {
  put(o, "ended_at", r.ended_at), put(o, "failed_rank", r.failed_rank), put(o, "signal", r.signal), put(o, "exit_status", r.exit_status);
  put(o, "peak_rss_bytes", r.peak_rss_bytes), put(o, "val_loss", r.val_loss), put(o, "val_rank_bytes", r.val_rank_bytes);
}
void put_extensions(ojson&, const EventRecord&) {}
void put_extensions(ojson& o, const PlacementRecord& r) {
  put(o, "migrated_bytes", r.migrated_bytes), put(o, "migrate_ms", r.migrate_ms);
}
void put_extensions(ojson&, const CoselectionRecord&) {}

// The required fields (and the contract's optional ones) of each record.
void put_fields(ojson& o, const RunStartRecord& r) {
  o["type"] = "run_start";
  o["schema"] = r.schema;
  o["spec"] = ojson::parse(r.spec.empty() ? "{}" : r.spec);
  o["world_size"] = r.world_size;
  o["backend"] = r.backend;
  o["started_at"] = r.started_at;
  o["hosts"] = ojson::parse(r.hosts.empty() ? "[]" : r.hosts);
}
void put_fields(ojson& o, const StepRecord& r) {
  o["type"] = "step";
  o["step"] = r.step, o["loss"] = r.loss, o["aux_loss"] = r.aux_loss, o["z_loss"] = r.z_loss, o["lr"] = r.lr;
  o["tokens"] = r.tokens, o["step_ms"] = r.step_ms, o["tokens_per_s"] = r.tokens_per_s;
}
void put_fields(ojson& o, const ExpertLoadRecord& r) {
  o["type"] = "expert_load";
  o["step"] = r.step, o["layer"] = r.layer, o["counts"] = r.counts, o["dropped"] = r.dropped;
}
void put_fields(ojson& o, const A2aRecord& r) {
  o["type"] = "a2a";
  o["step"] = r.step, o["layer"] = r.layer, o["phase"] = r.phase, o["pass"] = r.pass;
  o["rank_us"] = r.rank_us, o["rank_bytes"] = r.rank_bytes;
  put(o, "intra_bytes", r.intra_bytes), put(o, "inter_bytes", r.inter_bytes);
}
void put_fields(ojson& o, const CheckpointRecord& r) {
  o["type"] = "checkpoint";
  o["step"] = r.step, o["path"] = r.path;
}
void put_fields(ojson& o, const RunEndRecord& r) {
  o["type"] = "run_end";
  o["status"] = r.status, o["steps"] = r.steps;
  put(o, "reason", r.reason);
}
void put_fields(ojson& o, const EventRecord& r) {
  o["type"] = "log";
  o["level"] = r.kind, o["message"] = r.message;
}
void put_fields(ojson& o, const PlacementRecord& r) {
  o["type"] = "placement";
  o["step"] = r.step, o["layer"] = r.layer, o["slots_per_rank"] = r.slots_per_rank, o["phy_to_log"] = r.phy_to_log;
}
void put_fields(ojson& o, const CoselectionRecord& r) {
  o["type"] = "coselection";
  o["step"] = r.step, o["layer"] = r.layer, o["experts"] = r.experts, o["pairs"] = r.pairs;
}

std::string dump(const ojson& o) { return o.dump(-1, ' ', false, ojson::error_handler_t::replace); }

// The hand-written forms of the bulk records: the same keys in the same order as put_fields.
void append_number(std::string& out, int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}
void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);  // shortest round trip
}
template <typename T>
void append_array(std::string& out, const char* key, const std::vector<T>& v) {
  out += ",\"";
  out += key;
  out += "\":[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    append_number(out, v[i]);
  }
  out += ']';
}
void append_int_field(std::string& out, const char* key, int64_t v) {
  out += ",\"";
  out += key;
  out += "\":";
  append_number(out, v);
}

// False when the record has what only the general writer handles (extensions, extra).
bool append_fast(std::string& out, const ExpertLoadRecord& r) {
  if (!r.extra.empty()) return false;
  out += "{\"type\":\"expert_load\"";
  append_int_field(out, "step", r.step);
  append_int_field(out, "layer", r.layer);
  append_array(out, "counts", r.counts);
  append_array(out, "dropped", r.dropped);
  out += "}\n";
  return true;
}
bool append_fast(std::string& out, const A2aRecord& r) {
  const bool plain = r.extra.empty() && r.rank_intra_bytes.empty() && r.rank_inter_bytes.empty() &&
                     r.rank_meta_bytes.empty() && r.rank_exposed_us.empty() && r.rank_counts_us.empty() &&
                     r.rank_rows.empty() && r.rank_slot_rows.empty();
  const auto safe = [](const std::string& s) { return s.find_first_of("\"\\") == std::string::npos && s.size() < 64; };
  if (!plain || !safe(r.phase) || !safe(r.pass)) return false;
  out += "{\"type\":\"a2a\"";
  append_int_field(out, "step", r.step);
  append_int_field(out, "layer", r.layer);
  out += ",\"phase\":\"" + r.phase + "\",\"pass\":\"" + r.pass + "\"";
  append_array(out, "rank_us", r.rank_us);
  append_array(out, "rank_bytes", r.rank_bytes);
  if (r.intra_bytes) append_int_field(out, "intra_bytes", *r.intra_bytes);
  if (r.inter_bytes) append_int_field(out, "inter_bytes", *r.inter_bytes);
  out += "}\n";
  return true;
}
template <typename R>
bool append_fast(std::string&, const R&) {
  return false;
}

// ---- reading --------------------------------------------------------------------------------

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

// What is left of a record once its known fields are read: the extensions are taken out of it when
// their type fits (else they stay), and the rest becomes `extra`.
class Rest {
 public:
  Rest(const json& rec, std::initializer_list<const char*> known) {
    for (auto it = rec.begin(); it != rec.end(); ++it) {
      if (it.key() == "type") continue;
      bool is_known = false;
      for (const char* k : known) is_known = is_known || it.key() == k;
      if (!is_known) rest_[it.key()] = it.value();
    }
  }
  void take(const char* key, std::optional<int64_t>& out) {
    take_if(key, out, [](const json& v) { return v.is_number_integer(); }, [](const json& v) { return v.get<int64_t>(); });
  }
  void take(const char* key, std::optional<double>& out) {
    take_if(key, out, [](const json& v) { return v.is_number(); }, [](const json& v) { return v.get<double>(); });
  }
  void take(const char* key, std::optional<std::string>& out) {
    take_if(key, out, [](const json& v) { return v.is_string(); }, [](const json& v) { return v.get<std::string>(); });
  }
  template <typename T>
  void take(const char* key, std::vector<T>& out) {
    auto it = rest_.find(key);
    if (it == rest_.end() || !it->is_array() || it->size() > kMaxArray) return;
    std::vector<T> values;
    for (const json& v : *it) {
      if (std::is_integral_v<T> ? !v.is_number_integer() : !v.is_number()) return;
      values.push_back(v.get<T>());
    }
    out = std::move(values);
    rest_.erase(it);
  }
  std::string extra() const { return rest_.empty() ? std::string() : rest_.dump(); }

 private:
  template <typename T, typename Ok, typename Get>
  void take_if(const char* key, std::optional<T>& out, Ok ok, Get get) {
    auto it = rest_.find(key);
    if (it == rest_.end() || !ok(*it)) return;
    out = get(*it);
    rest_.erase(it);
  }
  json rest_ = json::object();
};

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
    Rest rest(rec, {"step", "loss", "aux_loss", "z_loss", "lr", "tokens", "step_ms", "tokens_per_s"});
    rest.take("grad_norm", r.grad_norm), rest.take("val_loss", r.val_loss), rest.take("val_rank_bytes", r.val_rank_bytes);
    r.extra = rest.extra();
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
      if (r.counts[e] > kMaxTokens) throw Bad{"expert_load: 'counts' is out of range"};
    }
    r.extra = Rest(rec, {"step", "layer", "counts", "dropped"}).extra();
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
    Rest rest(rec, {"step", "layer", "phase", "pass", "rank_us", "rank_bytes", "intra_bytes", "inter_bytes"});
    rest.take("rank_intra_bytes", r.rank_intra_bytes), rest.take("rank_inter_bytes", r.rank_inter_bytes);
    rest.take("rank_exposed_us", r.rank_exposed_us), rest.take("rank_meta_bytes", r.rank_meta_bytes);
    rest.take("rank_counts_us", r.rank_counts_us), rest.take("rank_rows", r.rank_rows);
    rest.take("rank_slot_rows", r.rank_slot_rows);
    r.extra = rest.extra();
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
    Rest rest(rec, {"schema", "spec", "world_size", "backend", "started_at", "hosts"});
    rest.take("params", r.params), rest.take("data", r.data), rest.take("train_bytes", r.train_bytes);
    rest.take("val_bytes", r.val_bytes), rest.take("gemm", r.gemm), rest.take("gemm_threads", r.gemm_threads);
    rest.take("resumed_at", r.resumed_at), rest.take("device", r.device), rest.take("dtype", r.dtype);
    r.extra = rest.extra();
    return r;
  }
  if (type == "checkpoint") {
    CheckpointRecord r;
    r.step = get_bounded(rec, t, "step", kMaxStep);
    r.path = get_str(rec, t, "path");
    r.extra = Rest(rec, {"step", "path"}).extra();
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
    Rest rest(rec, {"status", "steps", "reason"});
    rest.take("ended_at", r.ended_at), rest.take("failed_rank", r.failed_rank), rest.take("signal", r.signal), rest.take("exit_status", r.exit_status);
    rest.take("peak_rss_bytes", r.peak_rss_bytes), rest.take("val_loss", r.val_loss);
    rest.take("val_rank_bytes", r.val_rank_bytes);
    r.extra = rest.extra();
    return r;
  }
  if (type == "placement") {
    PlacementRecord r;
    r.step = get_bounded(rec, t, "step", kMaxStep);
    r.layer = get_bounded(rec, t, "layer", kMaxLayer);
    r.slots_per_rank = get_bounded(rec, t, "slots_per_rank", kMaxLayer);
    r.phy_to_log = get_ints(rec, t, "phy_to_log", true);
    if (r.slots_per_rank < 1 || r.phy_to_log.empty() || r.phy_to_log.size() % static_cast<size_t>(r.slots_per_rank) != 0)
      throw Bad{"placement: phy_to_log must hold a positive multiple of slots_per_rank entries"};
    Rest rest(rec, {"step", "layer", "slots_per_rank", "phy_to_log"});
    rest.take("migrated_bytes", r.migrated_bytes), rest.take("migrate_ms", r.migrate_ms);
    r.extra = rest.extra();
    return r;
  }
  if (type == "coselection") {
    CoselectionRecord r;
    r.step = get_bounded(rec, t, "step", kMaxStep);
    r.layer = get_bounded(rec, t, "layer", kMaxLayer);
    r.experts = get_bounded(rec, t, "experts", kMaxLayer);
    r.pairs = get_ints(rec, t, "pairs", true);
    if (r.pairs.size() % 3 != 0) throw Bad{"coselection: pairs must hold (a, b, tokens) triples"};
    for (size_t i = 0; i < r.pairs.size(); i += 3)
      if (r.pairs[i] >= r.pairs[i + 1] || r.pairs[i + 1] >= r.experts)
        throw Bad{"coselection: pair " + std::to_string(i / 3) + " must have a < b < experts"};
    r.extra = Rest(rec, {"step", "layer", "experts", "pairs"}).extra();
    return r;
  }
  // type == "log"
  EventRecord r;
  r.kind = rec.contains("level") && rec["level"].is_string() ? rec["level"].get<std::string>() : "log";
  r.message = get_str(rec, t, "message");
  return r;
}

// Length of the valid UTF-8 sequence at text[i] (RFC 3629: no overlongs, no surrogates), 0 if invalid.
size_t utf8_length(std::string_view text, size_t i) {
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

}  // namespace

void append_line(std::string& out, const Record& record) {
  if (std::visit([&](const auto& r) { return append_fast(out, r); }, record)) return;
  out += std::visit(
      [](const auto& r) {
        ojson o;
        put_fields(o, r);
        put_extensions(o, r);
        if constexpr (!std::is_same_v<std::decay_t<decltype(r)>, EventRecord>) merge_extra(o, r.extra);
        return dump(o);
      },
      record);
  out += '\n';
}

std::string to_line(const Record& record) {
  std::string line;
  append_line(line, record);
  line.pop_back();  // the '\n'
  return line;
}

std::string stored_extra(const Record& record) {
  return std::visit(
      [](const auto& r) {
        ojson o = ojson::object();
        put_extensions(o, r);
        if constexpr (!std::is_same_v<std::decay_t<decltype(r)>, EventRecord>) merge_extra(o, r.extra);
        return o.empty() ? std::string() : dump(o);
      },
      record);
}

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
  static const char* const known[] = {"run_start", "step", "expert_load", "a2a", "checkpoint", "run_end", "log",
                                      "placement", "coselection"};
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

template <> std::string_view type_name<RunStartRecord>() { return "run_start"; }
template <> std::string_view type_name<StepRecord>() { return "step"; }
template <> std::string_view type_name<ExpertLoadRecord>() { return "expert_load"; }
template <> std::string_view type_name<A2aRecord>() { return "a2a"; }
template <> std::string_view type_name<CheckpointRecord>() { return "checkpoint"; }
template <> std::string_view type_name<RunEndRecord>() { return "run_end"; }
template <> std::string_view type_name<PlacementRecord>() { return "placement"; }
template <> std::string_view type_name<CoselectionRecord>() { return "coselection"; }

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

std::string iso8601_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace moe::metrics
