#pragma once
// The metrics stream's one writer and one reader (docs/architecture.md 3.3): a record to one JSON
// line and one line back to a record. Every key of the contract and of our extensions is spelled
// in record_codec.cpp only.
#include <string>
#include <string_view>
#include <variant>

#include "metrics_records.h"

namespace moe::metrics {

// One line, without the newline: "type" first, then the record's fields in contract order, its
// extensions, then the fields of `extra` that are not already there. Strings that are not valid
// UTF-8 are written with U+FFFD; a non-finite number is written as null (callers keep them out:
// a NaN loss ends a run with run_end failed instead of a step record).
std::string to_line(const Record& record);
// to_line plus '\n', appended to `out`. The bulk records (expert_load, a2a without extensions or
// extra) are formatted by hand, fast enough to generate benchmark streams of 64 layers × 256 experts.
void append_line(std::string& out, const Record& record);

struct Malformed {
  std::string reason;
};
struct Ignored {};  // an unknown record type or a blank line

using ParsedLine = std::variant<Record, Malformed, Ignored>;

// A line that breaks the contract becomes a Malformed with the reason; an extension with an
// unexpected type stays in `extra`.
ParsedLine parse_line(std::string_view line);

// A record type's "type" in the stream, e.g. type_name<ExpertLoadRecord>(); the store names its
// tables after these, so a table name is spelled here too and nowhere else.
template <class R>
std::string_view type_name();
template <> std::string_view type_name<RunStartRecord>();
template <> std::string_view type_name<StepRecord>();
template <> std::string_view type_name<ExpertLoadRecord>();
template <> std::string_view type_name<A2aRecord>();
template <> std::string_view type_name<CheckpointRecord>();
template <> std::string_view type_name<RunEndRecord>();
template <> std::string_view type_name<PlacementRecord>();
template <> std::string_view type_name<CoselectionRecord>();

// The JSON object text a store keeps beside a record's columns: the record's extensions and its
// extra, so that writing the record back from the columns and this text gives the same fields.
// Empty when there is nothing.
std::string stored_extra(const Record& record);

// The first `max_bytes` of text with invalid UTF-8 and control bytes replaced (for messages).
std::string printable_prefix(std::string_view text, size_t max_bytes = 120);

// "2026-11-29T14:03:07Z": the current UTC time, as run_start's started_at.
std::string iso8601_now();

}  // namespace moe::metrics
