// The streaming ingestor (ingestor.h): parse on the feeding thread, write on one writer thread.
#include "ingestor.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"

namespace moe::store {

Ingestor::Ingestor(const std::string& db_path, int64_t run_id, IngestOptions options)
    : path_(db_path), run_(run_id), opt_(std::move(options)), splitter_(opt_.max_line_bytes) {
  // Open (and migrate) here so a bad path fails in the caller's thread with a clear message.
  store_ = std::make_unique<RunStore>(db_path, opt_.store);
  if (!store_->run_exists(run_id)) throw Error(db_path + ": no run with id " + std::to_string(run_id));
  writer_ = std::thread([this] { writer_loop(); });
}

Ingestor::~Ingestor() {
  if (!finished_) {
    try {
      finish();
    } catch (...) {
      // A destructor must not throw; finish() is where callers see errors.
    }
  }
}

void Ingestor::on_line(std::string_view line, int64_t line_no) {
  ParsedLine parsed = parse_line(line);
  if (auto* rec = std::get_if<Record>(&parsed)) {
    pending_.push_back(std::move(*rec));
    ++result_.records;
  } else if (auto* bad = std::get_if<Malformed>(&parsed)) {
    ++result_.malformed;
    // The parser's reason can quote the bad bytes: clean the whole message, not just the excerpt.
    std::string message = "line " + std::to_string(line_no) + ": " + bad->reason + ": " + std::string(line.substr(0, 80));
    pending_.push_back(EventRecord{"malformed", line_no, printable_prefix(message, 400)});
  } else {
    ++result_.ignored;
  }
  if (pending_.size() >= 512) push_pending(false);
}

void Ingestor::on_oversize(int64_t line_no, uint64_t bytes) {
  ++result_.malformed;
  pending_.push_back(EventRecord{"malformed", line_no,
                                 "line " + std::to_string(line_no) + ": " + std::to_string(bytes) +
                                     " bytes, longer than the limit of " +
                                     std::to_string(opt_.max_line_bytes) + "; skipped"});
}

void Ingestor::rethrow_writer_error() {
  std::lock_guard lk(mu_);
  if (writer_error_) std::rethrow_exception(writer_error_);
}

void Ingestor::push_pending(bool force) {
  if (pending_.empty() && !force) return;
  std::unique_lock lk(mu_);
  space_cv_.wait(lk, [&] { return queue_.size() < opt_.max_queue_rows || writer_error_; });
  if (writer_error_) std::rethrow_exception(writer_error_);
  if (queue_.empty()) {
    queue_.swap(pending_);
  } else {
    for (auto& r : pending_) queue_.push_back(std::move(r));
    pending_.clear();
  }
  if (line_offset_) queue_offset_ = line_offset_;  // every record of that line is in the queue now
  if (queue_.size() >= opt_.batch_rows || force) work_cv_.notify_one();
}

void Ingestor::feed(std::string_view bytes) {
  if (finished_) throw Error(path_ + ": feed() after finish()");
  rethrow_writer_error();
  splitter_.feed(
      bytes, [this](std::string_view l, int64_t n) { on_line(l, n); },
      [this](int64_t n, uint64_t b) { on_oversize(n, b); });
  push_pending(false);
}

void Ingestor::feed_line(std::string_view line, uint64_t end_offset) {
  line_offset_ = end_offset;  // set first: on_line may push this line's records before we return
  std::string whole;
  whole.reserve(line.size() + 1);
  whole.append(line).push_back('\n');
  feed(whole);
}

void Ingestor::writer_loop() {
  RunWriteState state;
  int64_t committed = 0;
  std::vector<Record> batch;
  try {
    state = store_->load_write_state(run_);
    for (;;) {
      {
        std::unique_lock lk(mu_);
        work_cv_.wait_for(lk, opt_.flush_interval,
                          [&] { return closing_ || queue_.size() >= opt_.batch_rows; });
        if (queue_.empty()) {
          if (closing_) break;
          continue;
        }
        batch.swap(queue_);
        state.source_offset = queue_offset_;
        queue_offset_.reset();
      }
      space_cv_.notify_all();
      BatchResult r = store_->write_batch(run_, batch, state);
      committed += r.records;
      batch.clear();
      {
        std::lock_guard lk(mu_);
        saw_run_end_ = state.has_run_end;
      }
      if (opt_.on_commit) opt_.on_commit(r, committed);
    }
  } catch (...) {
    std::lock_guard lk(mu_);
    writer_error_ = std::current_exception();
  }
  space_cv_.notify_all();
}

IngestResult Ingestor::finish(const std::string& status_without_end) {
  if (finished_) return result_;
  finished_ = true;
  std::exception_ptr feed_error;
  try {
    splitter_.finish([this](std::string_view l, int64_t n) { on_line(l, n); },
                     [this](int64_t n, uint64_t b) { on_oversize(n, b); });
    push_pending(true);
  } catch (...) {
    feed_error = std::current_exception();
  }
  {
    std::lock_guard lk(mu_);
    closing_ = true;
  }
  work_cv_.notify_one();
  writer_.join();
  if (writer_error_) std::rethrow_exception(writer_error_);
  if (feed_error) std::rethrow_exception(feed_error);
  result_.lines = splitter_.lines();
  result_.saw_run_end = saw_run_end_;
  if (!saw_run_end_) store_->set_status(run_, status_without_end);
  Stmt st(store_->db(), "SELECT status FROM runs WHERE id = ?1");
  st.bind(1, run_);
  result_.status = st.step() ? st.col_text(0) : "";
  return result_;
}

void feed_from_fd(Ingestor& ingestor, int fd, const std::string& what) {
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n == 0) return;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(what + ": read failed: " + std::strerror(errno));
    }
    ingestor.feed(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
}

}  // namespace moe::store
