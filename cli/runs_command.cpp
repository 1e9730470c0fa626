// `moe runs list|show|export|compare|delete|tag|import|prune|vacuum --db FILE …`: the recorded runs of a run
// store (core/store). Reads go through RunReader, edits through RunStore, import through Ingestor.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>

#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "cli_format.h"
#include "commands.h"
#include "error.h"
#include "external_run.h"
#include "ingestor.h"
#include "run_reader.h"
#include "run_store.h"
#include "run_writers.h"
#include "store_export.h"
#include "store_prune.h"

namespace moe::cli {

namespace {

using store::A2aRankStats;
using store::RunInfo;
using store::RunReader;

const char* kUsage =
    "usage: moe runs list --db FILE [--json]\n"
    "       moe runs show RUN --db FILE\n"
    "       moe runs export RUN --db FILE --format jsonl|csv [--table steps|expert_load|a2a|a2a_steps|events] [-o FILE]\n"
    "       moe runs compare RUN RUN… --db FILE [--metric loss] [--points N]\n"
    "       moe runs delete RUN… --db FILE\n"
    "       moe runs tag RUN TAG… --db FILE [--remove]\n"
    "       moe runs import FILE|- --db FILE [--format auto|stream|tensorboard|megatron-log] [--name NAME] [--tag TAG]…\n"
    "       moe runs prune [RUN…] --db FILE [--keep-last N] [--dry-run]\n"
    "       moe runs vacuum --db FILE [--dry-run]\n\n"
    "RUN is a run id or a run name (the newest run of that name). `export --format jsonl` writes the\n"
    "metrics stream back (docs/architecture.md 3.3); `import` records a stream made elsewhere (a cluster\n"
    "job's stdout), or another engine's run: a TensorBoard event file (Megatron-LM, DeepSpeed,\n"
    "torch.utils.tensorboard) or a Megatron-LM training log, recognised by content with --format auto\n"
    "(docs/run-store.md). `prune` drops finished runs' per-rank all-to-all records older than the last N\n"
    "steps (default 0; every step's per-rank sums stay); `vacuum` gives the freed pages back to the disk.\n"
    "Exit status: 0 success, 1 a failure (one line on stderr), 2 usage.\n";

std::string num_or_dash(double v, int decimals) { return std::isnan(v) ? "-" : fmt_fixed(v, decimals); }

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// Tags for one line: each shown by display_text (quoted when it holds the separator ',').
std::string tags_text(const std::vector<std::string>& tags, const std::string& sep) {
  std::vector<std::string> shown;
  for (const auto& t : tags) shown.push_back(display_text(t, ","));
  return join(shown, sep);
}

std::string hosts_text(const std::string& hosts_json) {
  try {
    std::vector<std::string> hosts;
    for (auto& h : nlohmann::json::parse(hosts_json))
      hosts.push_back(h.is_string() ? display_text(h.get<std::string>(), ",") : h.dump());
    return hosts.empty() ? "-" : join(hosts, ", ");
  } catch (const nlohmann::json::exception&) {
    return display_text(hosts_json);
  }
}

// The store named by --db. Local runs whose recording process died (kill -9, reboot) are marked
// failed first, when the file is writable (run_writers.h), so every subcommand shows their end.
std::string db_of(const Args& args) {
  std::string db = args.value("--db");
  if (db.empty()) throw UsageError{"--db FILE is required"};
  if (::access(db.c_str(), W_OK) == 0) {
    try {
      store::RunStore st(db);
      for (int64_t id : store::reap_abandoned_runs(st))
        std::fprintf(stderr, "moe runs: run %lld was still 'running' but its recording process is gone: marked failed\n",
                     static_cast<long long>(id));
    } catch (const Error& e) {  // e.g. a full disk: the store is still readable
      std::fprintf(stderr, "moe runs: warning: could not check for abandoned runs: %s\n", e.what());
    }
  }
  return db;
}

int list(const Args& args) {
  RunReader reader(db_of(args));
  auto runs = reader.list_runs();
  if (args.flag("--json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const RunInfo& r : runs) {
      out.push_back({{"id", r.id}, {"name", r.name}, {"status", r.status}, {"created_at", r.created_at},
                     {"steps", r.n_steps}, {"last_step", r.last_step},
                     {"final_loss", std::isnan(r.last_loss) ? nlohmann::json() : nlohmann::json(r.last_loss)},
                     {"tokens_per_s", std::isnan(r.last_tokens_per_s) ? nlohmann::json() : nlohmann::json(r.last_tokens_per_s)},
                     {"drop_rate", r.drop_rate}, {"tags", r.tags}});
    }
    // Names and tags are valid UTF-8 (the store refuses others); a store written before that
    // check still lists, with U+FFFD for the bytes JSON cannot carry.
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  // One line per run whatever the names hold (display_text); `--json` has the exact strings.
  std::printf("%5s  %-24s %-11s %7s %9s %10s %7s %7s  %-20s %s\n", "ID", "NAME", "STATUS", "STEPS", "LOSS",
              "TOKENS/S", "DROP", "IMBAL", "CREATED", "TAGS");
  for (const RunInfo& r : runs) {
    std::printf("%5lld  %s %-11s %7lld %9s %10s %7s %7s  %-20s %s\n", static_cast<long long>(r.id),
                fit_column(display_text(r.name), 24).c_str(), r.status.c_str(), static_cast<long long>(r.n_steps),
                num_or_dash(r.last_loss, 4).c_str(),
                std::isnan(r.last_tokens_per_s) ? "-" : fmt_count(r.last_tokens_per_s).c_str(),
                r.routed_total > 0 ? fmt_percent(r.drop_rate).c_str() : "-",
                num_or_dash(r.last_imbalance, 2).c_str(), r.created_at.c_str(), tags_text(r.tags, ",").c_str());
  }
  if (runs.empty()) std::printf("(no runs)\n");
  return 0;
}

// Expert-parallel runs: each all-to-all (phase, pass) over all layers and steps — the mean time of
// an exchange per rank, the slowest rank (where the others wait) and the bytes each rank sends.
void print_a2a_summary(RunReader& reader, int64_t id) {
  const char* phases[] = {"dispatch", "combine", "combine", "dispatch"};
  const char* passes[] = {"fwd", "fwd", "bwd", "bwd"};
  bool header = false;
  for (int i = 0; i < 4; ++i) {
    const A2aRankStats s = reader.a2a_rank_stats(id, phases[i], passes[i], -1, 0, -1);
    if (s.samples == 0 || s.mean_us.empty()) continue;
    if (!header) {
      std::printf("\n  %-14s %8s %12s %18s %16s\n", "all-to-all", "records", "mean ms", "slowest rank, ms",
                  "KiB sent/rank");
      header = true;
    }
    double us = 0, bytes = 0;
    size_t slow = 0;
    for (size_t r = 0; r < s.mean_us.size(); ++r) {
      us += s.mean_us[r] / static_cast<double>(s.mean_us.size());
      bytes += s.mean_bytes[r] / static_cast<double>(s.mean_bytes.size());
      if (s.mean_us[r] > s.mean_us[slow]) slow = r;
    }
    const std::string name = std::string(phases[i]) + " " + passes[i];
    std::printf("  %-14s %8lld %12.3f %10zu (%5.3f) %16.1f\n", name.c_str(), static_cast<long long>(s.samples), us / 1e3,
                slow, s.mean_us[slow] / 1e3, bytes / 1024.0);
  }
}

int show(const Args& args) {
  args.expect_positionals(2, "RUN (an id or a name)");
  RunReader reader(db_of(args));
  int64_t id = reader.find_run(args.positionals()[1]);
  RunInfo r = reader.run(id);
  std::printf("run %lld  %s  [%s]%s\n", static_cast<long long>(r.id), display_text(r.name).c_str(), r.status.c_str(),
              r.end_reason.empty() ? "" : (" — " + one_line(r.end_reason)).c_str());
  std::printf("  created %s   started %s   ended %s\n", r.created_at.c_str(),
              r.started_at.empty() ? "-" : r.started_at.c_str(), r.ended_at.empty() ? "-" : r.ended_at.c_str());
  std::printf("  backend %s, world size %lld, hosts %s\n", r.backend.empty() ? "-" : r.backend.c_str(),
              static_cast<long long>(r.world_size), hosts_text(r.hosts_json).c_str());
  if (!r.tags.empty()) std::printf("  tags: %s\n", tags_text(r.tags, ", ").c_str());
  if (!r.notes.empty()) std::printf("  notes: %s\n", display_text(r.notes).c_str());
  std::printf("  steps            %lld (last step %lld)\n", static_cast<long long>(r.n_steps),
              static_cast<long long>(r.last_step));
  std::printf("  final loss       %s\n", num_or_dash(r.last_loss, 4).c_str());
  std::printf("  tokens/s         %s (last step)\n",
              std::isnan(r.last_tokens_per_s) ? "-" : fmt_count(r.last_tokens_per_s).c_str());
  std::printf("  tokens           %s\n", fmt_count(static_cast<double>(r.total_tokens)).c_str());
  std::printf("  drop rate        %s (%lld of %lld routed tokens)\n", fmt_percent(r.drop_rate).c_str(),
              static_cast<long long>(r.dropped_total), static_cast<long long>(r.routed_total));
  std::printf("  load imbalance   %s (max/mean expert load, latest step, mean over layers)\n",
              num_or_dash(r.last_imbalance, 3).c_str());
  std::printf("  layers×experts   %lld × %lld\n", static_cast<long long>(r.n_layers), static_cast<long long>(r.n_experts));
  std::printf("  malformed lines  %lld\n", static_cast<long long>(r.malformed_lines));
  if (const auto tp = reader.last_step_extension(id, "tp_bytes"))
    std::printf("  tp collectives   %s per step (payload of rank 0, last step; docs/parallelism.md)\n",
                fmt_bytes(static_cast<double>(*tp)).c_str());
  if (const auto etp = reader.last_step_extension(id, "etp_bytes"))
    std::printf("  expert rows      %s per step over tp (parallel.etp; payload of rank 0, last step)\n",
                fmt_bytes(static_cast<double>(*etp)).c_str());
  if (const auto groups = reader.last_gradient_bytes(id); !groups.empty()) {
    std::string text;
    for (const auto& [group, bytes] : groups) text += (text.empty() ? "" : ", ") + group + " " + fmt_bytes(static_cast<double>(bytes));
    std::printf("  gradient sums    %s per step (payload of rank 0, last step; docs/parallelism.md)\n", text.c_str());
  }
  if (const auto pp = reader.last_pipeline_step(id)) {
    std::string stages;
    for (size_t s = 0; s < pp->busy_ms.size(); ++s)
      stages += (s ? ", " : "") + fmt_percent(pp->idle_ms[s] / std::max(1e-9, pp->idle_ms[s] + pp->busy_ms[s]));
    std::printf("  pipeline         idle %s of step %lld (stages: %s; docs/parallelism.md)\n", fmt_percent(pp->idle_share()).c_str(),
                static_cast<long long>(pp->step), stages.c_str());
  }
  auto layers = reader.layer_balance(id);
  if (!layers.empty()) {
    std::printf("\n  %5s %7s %14s %14s %9s %9s\n", "layer", "steps", "max/mean avg", "max/mean last", "CV avg", "drop");
    for (const auto& l : layers) {
      std::printf("  %5lld %7lld %14s %14s %9s %9s\n", static_cast<long long>(l.layer), static_cast<long long>(l.steps),
                  num_or_dash(l.mean_max_over_mean, 3).c_str(), num_or_dash(l.last_max_over_mean, 3).c_str(),
                  num_or_dash(l.mean_cv, 3).c_str(), fmt_percent(l.drop_rate).c_str());
    }
  }
  print_a2a_summary(reader, id);
  auto events = reader.events(id, 0, 1000000);
  if (!events.empty()) {
    std::printf("\n  events (%zu, last 5):\n", events.size());
    for (size_t i = events.size() > 5 ? events.size() - 5 : 0; i < events.size(); ++i) {
      std::printf("    %s %-9s %s\n", events[i].at.c_str(), events[i].kind.c_str(), one_line(events[i].message).c_str());
    }
  }
  return 0;
}

int export_run(const Args& args) {
  args.expect_positionals(2, "RUN (an id or a name)");
  const std::string format = args.value("--format", "jsonl");
  if (format != "jsonl" && format != "csv") throw UsageError{"--format must be jsonl or csv"};
  RunReader reader(db_of(args));
  int64_t id = reader.find_run(args.positionals()[1]);
  const std::string file = args.value("--output");
  std::ofstream f;
  if (!file.empty()) {
    f.open(file, std::ios::binary);
    if (!f) throw Error(file + ": cannot write");
  }
  std::ostream& out = file.empty() ? std::cout : f;
  if (format == "jsonl") store::export_jsonl(reader, id, out);
  else store::export_csv(reader, id, args.value("--table", "steps"), out);
  out.flush();
  if (!out) throw Error((file.empty() ? std::string("stdout") : file) + ": write failed");
  return 0;
}

int compare(const Args& args) {
  if (args.positionals().size() < 3) throw UsageError{"compare needs two or more RUNs"};
  RunReader reader(db_of(args));
  std::vector<int64_t> ids;
  std::vector<RunInfo> runs;
  for (size_t i = 1; i < args.positionals().size(); ++i) {
    ids.push_back(reader.find_run(args.positionals()[i]));
    runs.push_back(reader.run(ids.back()));
  }
  auto row = [&](const char* label, auto cell) {
    std::printf("  %-16s", label);
    for (const RunInfo& r : runs) std::printf(" %18s", cell(r).c_str());
    std::printf("\n");
  };
  row("run", [](const RunInfo& r) { return std::to_string(r.id) + " " + fit_column(display_text(r.name), 14); });
  row("status", [](const RunInfo& r) { return r.status; });
  row("steps", [](const RunInfo& r) { return std::to_string(r.n_steps); });
  row("final loss", [](const RunInfo& r) { return num_or_dash(r.last_loss, 4); });
  row("tokens/s", [](const RunInfo& r) { return std::isnan(r.last_tokens_per_s) ? std::string("-") : fmt_count(r.last_tokens_per_s); });
  row("drop rate", [](const RunInfo& r) { return fmt_percent(r.drop_rate); });
  row("load imbalance", [](const RunInfo& r) { return num_or_dash(r.last_imbalance, 3); });

  const store::Metric metric = store::metric_from_name(args.value("--metric", "loss"));
  const int64_t points = std::stoll(args.value("--points", "10"));
  int64_t first = -1;  // the earliest step of any run
  for (int64_t id : ids) {
    auto head = reader.steps_after(id, std::numeric_limits<int64_t>::min(), 1);
    if (!head.empty()) first = first < 0 ? head[0].step : std::min(first, head[0].step);
  }
  store::AlignedSeries s = reader.aligned_series(ids, metric, std::max<int64_t>(first, 0), -1, points);
  if (!s.bucket_first_step.empty()) {
    std::printf("\n  %s (last value of each step bucket)\n  %-16s", store::metric_name(metric), "from step");
    for (const RunInfo& r : runs) std::printf(" %18s", std::to_string(r.id).c_str());
    std::printf("\n");
    for (size_t b = 0; b < s.bucket_first_step.size(); ++b) {
      std::printf("  %-16.0f", s.bucket_first_step[b]);
      for (size_t i = 0; i < runs.size(); ++i) std::printf(" %18s", num_or_dash(s.last[i][b], 4).c_str());
      std::printf("\n");
    }
  }
  auto diff = reader.config_diff(ids);
  std::printf("\n  config: %zu key(s) differ\n", diff.size());
  for (const auto& d : diff) {
    std::printf("  %-32s", d.key.c_str());
    for (const auto& v : d.values) std::printf(" %18s", v.c_str());
    std::printf("\n");
  }
  return 0;
}

int delete_runs(const Args& args) {
  if (args.positionals().size() < 2) throw UsageError{"delete needs one or more RUNs"};
  const std::string db = db_of(args);
  std::vector<int64_t> ids;
  {
    RunReader reader(db);
    for (size_t i = 1; i < args.positionals().size(); ++i) ids.push_back(reader.find_run(args.positionals()[i]));
  }
  store::RunStore st(db);
  for (int64_t id : ids) {
    st.delete_run(id);
    std::fprintf(stderr, "moe runs: deleted run %lld\n", static_cast<long long>(id));
  }
  return 0;
}

int tag(const Args& args) {
  if (args.positionals().size() < 3) throw UsageError{"tag needs RUN and one or more TAGs"};
  const std::string db = db_of(args);
  int64_t id;
  {
    RunReader reader(db);
    id = reader.find_run(args.positionals()[1]);
  }
  store::RunStore st(db);
  for (size_t i = 2; i < args.positionals().size(); ++i) {
    if (args.flag("--remove")) st.remove_tag(id, args.positionals()[i]);
    else st.add_tag(id, args.positionals()[i]);
  }
  return 0;
}

// Another engine's run (a TensorBoard event file, a Megatron log) as a metrics stream, recorded.
int import_external(const Args& args, const std::string& db, const std::string& file, const std::string& format) {
  const store::ExternalRun run = store::read_external_run(file, format);
  std::string name = args.value("--name");
  if (name.empty()) name = std::filesystem::path(file).filename().string();
  int64_t id;
  {
    store::RunStore st(db);
    id = st.create_run(name);
    for (const auto& t : args.values("--tag")) st.add_tag(id, t);
  }
  store::Ingestor ing(db, id);
  ing.feed(store::external_run_stream(run, name));
  const store::IngestResult r = ing.finish();
  std::printf("%lld\n", static_cast<long long>(id));
  std::fprintf(stderr, "moe runs import: run %lld: %zu step(s) from a %s file, status %s%s%s\n",
               static_cast<long long>(id), run.steps.size(), run.format.c_str(), r.status.c_str(),
               run.unmapped.empty() ? "" : "; not stored: ", one_line(join(run.unmapped, ", ")).c_str());
  return 0;
}

int import(const Args& args) {
  args.expect_positionals(2, "FILE (a metrics stream, an event file or a Megatron log; - for stdin)");
  const std::string db = db_of(args);
  const std::string file = args.positionals()[1];
  std::string format = args.value("--format", "auto");
  if (format == "auto") format = file == "-" ? "stream" : store::detect_import_format(file);
  if (format != "stream") return import_external(args, db, file, format);
  int fd = file == "-" ? 0 : ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file + ": cannot open the stream: " + std::strerror(errno));
  int64_t id;
  {
    store::RunStore st(db);
    id = st.create_run(args.value("--name"));
    for (const auto& t : args.values("--tag")) st.add_tag(id, t);
  }
  store::IngestResult r;
  try {
    store::Ingestor ing(db, id);
    store::feed_from_fd(ing, fd, file);
    r = ing.finish();
  } catch (...) {
    if (fd > 0) ::close(fd);
    throw;
  }
  if (fd > 0) ::close(fd);
  std::printf("%lld\n", static_cast<long long>(id));
  std::fprintf(stderr, "moe runs import: run %lld: %lld records, %lld malformed line(s), %lld ignored, status %s\n",
               static_cast<long long>(id), static_cast<long long>(r.records), static_cast<long long>(r.malformed),
               static_cast<long long>(r.ignored), r.status.c_str());
  return 0;
}

std::string mb(int64_t bytes) { return fmt_fixed(static_cast<double>(bytes) / 1e6, 1) + " MB"; }

int prune(const Args& args) {
  const std::string db = db_of(args);
  std::vector<int64_t> ids;
  {
    RunReader reader(db);
    for (size_t i = 1; i < args.positionals().size(); ++i) ids.push_back(reader.find_run(args.positionals()[i]));
  }
  const std::string keep_text = args.value("--keep-last", "0");
  int64_t keep = -1;
  try {
    size_t used = 0;
    keep = std::stoll(keep_text, &used);
    if (used != keep_text.size()) keep = -1;
  } catch (const std::exception&) {
  }
  if (keep < 0) throw UsageError{"--keep-last: '" + keep_text + "' is not a number of steps (0 or more)"};
  const bool dry = args.flag("--dry-run");
  store::RunStore st(db);
  const store::PruneReport r = store::prune_a2a_detail(st, ids, keep, dry);
  for (int64_t id : r.skipped_running)
    std::fprintf(stderr, "moe runs prune: run %lld has not ended: left alone\n", static_cast<long long>(id));
  std::printf("%s%lld finished run(s): %lld per-rank a2a record(s), %s freed in the file%s\n",
              dry ? "dry run: " : "", static_cast<long long>(r.runs), static_cast<long long>(r.rows),
              mb(r.freed_bytes).c_str(), dry ? " (nothing changed)" : "; `moe runs vacuum` gives it back to the disk");
  return 0;
}

int vacuum(const Args& args) {
  const std::string db = db_of(args);
  store::RunStore st(db);
  const bool dry = args.flag("--dry-run");
  const store::VacuumReport r = store::vacuum_store(st, dry);
  std::printf("%s%s: %s -> %s\n", dry ? "dry run: " : "", display_text(db).c_str(), mb(r.bytes_before).c_str(),
              mb(r.bytes_after).c_str());
  return 0;
}

}  // namespace

int cmd_runs(const std::vector<std::string>& argv) {
  Args args("runs", argv, {"--json", "--remove", "--dry-run"},
            {"--db", "--format", "--table", "--output", "--name", "--tag", "--metric", "--points", "--keep-last"},
            {{"-o", "--output"}});
  if (args.help()) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (args.positionals().empty()) throw UsageError{"which? list, show, export, compare, delete, tag, import, prune or vacuum"};
  const std::string sub = args.positionals()[0];
  if (sub == "list") return list(args);
  if (sub == "show") return show(args);
  if (sub == "export") return export_run(args);
  if (sub == "compare") return compare(args);
  if (sub == "delete") return delete_runs(args);
  if (sub == "tag") return tag(args);
  if (sub == "import") return import(args);
  if (sub == "prune") return prune(args);
  if (sub == "vacuum") return vacuum(args);
  throw UsageError{"unknown subcommand '" + sub + "' (list, show, export, compare, delete, tag, import, prune, vacuum)"};
}

}  // namespace moe::cli
