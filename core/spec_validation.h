#pragma once
// Validation of a resolved JobSpec: each rule yields a diagnostic that names the JSON path and the
// rule ("parallel.ep: 3 does not divide model.moe.num_experts (8)"). Errors make the spec unusable;
// warnings point at something legal but probably unintended.
#include <string>
#include <vector>

#include "job_spec.h"

namespace moe {

enum class Severity { error, warning };

struct Diagnostic {
  Severity severity = Severity::error;
  std::string path;     // JSON path of the offending field
  std::string message;  // the rule, without the path

  std::string text() const;  // "error: path: message" / "warning: path: message"
};

struct HardwareProfile;  // hardware_profile.h

// Every rule in one place, for the CLI, the studio and the runtime: the spec's own rules and, given
// a hardware profile, the memory rule (peak memory per GPU against the device: an error above it,
// a warning above 90 %; skipped while the spec has errors).
std::vector<Diagnostic> validate_spec(const JobSpec& spec, const HardwareProfile* hardware = nullptr);
// The model's rules alone (part of validate_spec): what a runtime needs before it builds a model
// from a spec that may have no cluster or training part worth checking.
std::vector<Diagnostic> validate_model(const ModelSpec& model);

bool has_errors(const std::vector<Diagnostic>& diagnostics);
// Why the CPU runtime's deterministic arithmetic cannot hold for this spec (empty: it can). The
// runtime refuses such a spec; validation only warns, since a design may be meant for another engine.
std::string deterministic_conflict(const JobSpec& spec);
// Throws moe::Error with the first error's text, if there is one.
void throw_if_invalid(const std::vector<Diagnostic>& diagnostics);

}  // namespace moe
