#pragma once
// A design taken to another training engine (`moe export`, the Design workspace's Export menu):
// Megatron-Core's pretrain_gpt.py argument list, or a DeepSpeed ds_config plus the arguments of
// deepspeed.moe.layer.MoE. Every leaf of the spec is accounted for: mapped to a setting of the
// engine, or listed in `unmapped` with the reason. Nothing is dropped silently
// (docs/engine-export.md, the flag names checked against the engines' sources).
#include <string>
#include <vector>

#include "job_spec.h"

namespace moe {

struct UnmappedSetting {
  std::string field;  // spec path, e.g. "routing.type"
  std::string value;  // the spec's value, as JSON text
  std::string why;    // what the engine lacks or does differently, and what the export does instead
};

struct EngineExport {
  std::string engine;  // "megatron" | "deepspeed"
  std::string text;    // the file to hand to the engine (a shell script or a JSON document)
  std::vector<UnmappedSetting> unmapped;
  std::vector<std::string> accounted;  // every spec path the export read (mapped or unmapped)
};

// The engines `moe export` knows, for usage lines and the studio's menu.
const std::vector<std::string>& export_engines();

// Throws moe::Error for an unknown engine or an invalid spec (its first error, naming the field).
EngineExport export_spec(const std::string& engine, const JobSpec& spec);

EngineExport export_megatron(const JobSpec& spec);
EngineExport export_deepspeed(const JobSpec& spec);

// The spec paths (leaves; arrays count as one leaf) of a spec: what an export must account for.
std::vector<std::string> spec_leaf_paths(const JobSpec& spec);

}  // namespace moe
