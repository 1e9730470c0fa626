// Incremental line splitting with a bound on line length (line_splitter.h).
#include "line_splitter.h"

namespace moe::store {

void LineSplitter::feed(std::string_view bytes, const LineFn& on_line, const OversizeFn& on_oversize) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view piece = bytes.substr(0, nl);  // whole rest when no newline
    if (skipping_) {
      skipped_ += piece.size();
    } else if (partial_.size() + piece.size() > max_line_) {
      skipping_ = true;
      skipped_ = partial_.size() + piece.size();
      std::string().swap(partial_);  // release the memory
    } else if (nl != std::string_view::npos && partial_.empty()) {
      // The common case: a whole line inside this piece, no copy.
      ++line_no_;
      on_line(piece, line_no_);
      bytes.remove_prefix(nl + 1);
      continue;
    } else {
      partial_.append(piece);
    }
    if (nl == std::string_view::npos) return;
    ++line_no_;
    if (skipping_) {
      on_oversize(line_no_, skipped_);
      skipping_ = false;
      skipped_ = 0;
    } else {
      on_line(partial_, line_no_);
      partial_.clear();
    }
    bytes.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish(const LineFn& on_line, const OversizeFn& on_oversize) {
  if (skipping_) {
    on_oversize(++line_no_, skipped_);
  } else if (!partial_.empty()) {
    on_line(partial_, ++line_no_);
  }
  partial_.clear();
  skipping_ = false;
  skipped_ = 0;
}

}  // namespace moe::store
