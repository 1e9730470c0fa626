#pragma once
// The store ingests and exports core/metrics' records: the one definition of the stream
// (docs/architecture.md 3.3), here under the store's namespace.
#include "record_codec.h"

namespace moe::store {

using metrics::A2aRecord;
using metrics::CheckpointRecord;
using metrics::CoselectionRecord;
using metrics::EventRecord;
using metrics::ExpertLoadRecord;
using metrics::Ignored;
using metrics::Malformed;
using metrics::ParsedLine;
using metrics::PlacementRecord;
using metrics::Record;
using metrics::RunEndRecord;
using metrics::RunStartRecord;
using metrics::StepRecord;
using metrics::parse_line;
using metrics::printable_prefix;

}  // namespace moe::store
