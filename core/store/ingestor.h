#pragma once
// Streaming ingest of a metrics stream (docs/architecture.md 3.3) into the run store.
//
//   moe::store::Ingestor ing("runs.sqlite", run_id);
//   while (n = read(fd, buf, …)) ing.feed({buf, n});   // any byte source, any piece size
//   IngestResult r = ing.finish();                      // flushes; status "interrupted" if no run_end
//
// feed() splits lines and parses them on the caller's thread; a single writer thread (its own
// connection) commits the parsed records in one transaction every flush_interval or batch_rows
// records, whichever comes first. A malformed line is counted, kept as an event and skipped; an
// unknown record type is ignored. feed() blocks when the writer is max_queue_rows behind, so memory
// stays bounded. A write error (full or read-only disk) is rethrown by the next feed() or finish().
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "line_splitter.h"
#include "run_store.h"
#include "store_records.h"

namespace moe::store {

struct IngestOptions {
  std::chrono::milliseconds flush_interval{100};
  size_t batch_rows = 4096;
  size_t max_queue_rows = 8192;
  size_t max_line_bytes = 16u << 20;  // longer lines are skipped and reported, never buffered
  StoreOptions store;
  // Called on the writer thread after each commit (for progress and tests).
  std::function<void(const BatchResult& batch, int64_t committed_records)> on_commit;
};

struct IngestResult {
  int64_t lines = 0;        // lines seen (blank ones included)
  int64_t records = 0;      // records stored
  int64_t malformed = 0;    // lines that failed to parse (the run summary's malformed_lines also
                            // counts records out of order, e.g. run_end without run_start)
  int64_t ignored = 0;      // unknown record types and blank lines
  bool saw_run_end = false;
  std::string status;       // the run's status after finish()
};

class Ingestor {
 public:
  Ingestor(const std::string& db_path, int64_t run_id, IngestOptions options = {});
  ~Ingestor();  // finishes (errors swallowed) if finish() was not called
  Ingestor(const Ingestor&) = delete;
  Ingestor& operator=(const Ingestor&) = delete;

  void feed(std::string_view bytes);
  // Feeds one complete line (without '\n') that ends at byte `end_offset` of its source (e.g. a
  // remote metrics file). The batch holding its records also stores end_offset in
  // remote_runs.metrics_offset, in the same transaction: a reader resuming from the stored offset
  // gets every record exactly once.
  void feed_line(std::string_view line, uint64_t end_offset);
  // Ends the stream: the last partial line is parsed, everything is committed and the writer
  // stops. Without a valid run_end the status becomes status_without_end ("interrupted", or
  // "cancelled" when the caller stopped the run).
  IngestResult finish(const std::string& status_without_end = "interrupted");

  int64_t run_id() const { return run_; }

 private:
  void on_line(std::string_view line, int64_t line_no);
  void on_oversize(int64_t line_no, uint64_t bytes);
  void push_pending(bool force);
  void writer_loop();
  void rethrow_writer_error();

  std::string path_;
  int64_t run_;
  IngestOptions opt_;
  LineSplitter splitter_;
  std::vector<Record> pending_;  // parsed on the feeding thread, not yet handed over
  IngestResult result_;
  bool finished_ = false;

  std::mutex mu_;
  std::condition_variable work_cv_, space_cv_;
  std::vector<Record> queue_;
  // feed_line: the end offset of the line being fed, and of the last line whose records are queued.
  std::optional<uint64_t> line_offset_, queue_offset_;
  bool closing_ = false;
  bool saw_run_end_ = false;  // set by the writer (a run_end it accepted)
  std::exception_ptr writer_error_;
  std::unique_ptr<RunStore> store_;  // opened in the constructor, used by the writer thread only
  std::thread writer_;
};

// Feeds everything readable from a file descriptor (a pipe, a file) until end of file.
void feed_from_fd(Ingestor& ingestor, int fd, const std::string& what);

}  // namespace moe::store
