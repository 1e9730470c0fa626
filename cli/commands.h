#pragma once
// The command table of `moe`. To add a command: write cmd_<fn>.cpp defining
// `int cmd_<fn>(const std::vector<std::string>& args)` (args exclude the command name; return the
// exit code, throw moe::Error for a one-line failure) and add one X(...) line below.
#include <string>
#include <vector>

#define MOE_COMMAND_TABLE(X)                                                                          \
  X(plan, "plan", "memory, FLOPs, all-to-all bytes and step time of a spec on its hardware")          \
  X(import_hf, "import-hf", "convert a Hugging Face config.json (Mixtral, Qwen-MoE, DeepSeek) to a spec") \
  X(export, "export", "write a spec as Megatron-Core arguments or a DeepSpeed config")                \
  MOE_STORE_COMMANDS(X)

// Commands over the run store (core/store, SQLite): not in runtime-only builds.
#ifdef MOE_WITH_STORE
#define MOE_STORE_COMMANDS(X)                                                                         \
  X(run, "run", "run a spec on the local runtime, recording it live in a run store (--db)")          \
  X(runs, "runs", "list, show, export, compare, delete, tag or import recorded runs (--db)")        \
  X(placement, "placement", "suggest an expert placement from a recorded run's routing (--db)")
#else
#define MOE_STORE_COMMANDS(X)
#endif

namespace moe::cli {

#define MOE_DECLARE_COMMAND(fn, name, summary) int cmd_##fn(const std::vector<std::string>& args);
MOE_COMMAND_TABLE(MOE_DECLARE_COMMAND)
#undef MOE_DECLARE_COMMAND

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

}  // namespace moe::cli
