#pragma once
// Which spec fields have no effect given the others (model.mla.* beside gqa attention, parallel.etp
// with tp 1, …), and what 0 means for the integer fields where 0 is a setting ("auto", "never").
// The Design form greys out the former and names the latter in its spin boxes; the rules live here,
// beside the spec, so the studio holds none of them.
#include <string>
#include <string_view>

#include "job_spec.h"

namespace moe {

// Empty when the field at `path` ("model.mla.kv_lora_rank") has an effect in `spec`; otherwise the
// reason it has none, naming the field that decides ("only with model.attention mla (it is gqa)").
std::string unused_field_reason(const JobSpec& spec, std::string_view path);

// What a 0 in the integer field at `path` means ("auto: d_model / n_heads"); empty when 0 is just
// the number.
std::string_view zero_meaning(std::string_view path);

}  // namespace moe
