// `moe export megatron|deepspeed SPEC [--set k=v]… [-o FILE]`: a design as another engine's
// settings (core/engine_export.h). Settings the engine cannot express are listed in the output and
// counted on stderr; an invalid spec is refused with its first error.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "engine_export.h"
#include "error.h"
#include "job_spec.h"

namespace moe::cli {

namespace {

const char* kHelp =
    "usage: moe export ENGINE SPEC [--set path.key=value]… [-o FILE]\n"
    "\n"
    "Writes the job spec SPEC as settings of another training engine:\n"
    "  megatron   a bash script running Megatron-Core's pretrain_gpt.py with the model, routing,\n"
    "             parallel layout (tp, pp, ep, expert tp, sequence parallel), batch and optimizer\n"
    "  deepspeed  a JSON document: ds_config, the arguments of deepspeed.moe.layer.MoE, and what\n"
    "             your model code and training loop must supply\n"
    "Every spec setting the engine has no counterpart for is listed in the output with the reason\n"
    "(docs/engine-export.md); none is dropped silently.\n"
    "\n"
    "  --set path.key=value   override a spec field (repeatable)\n"
    "  -o, --output FILE      write to FILE instead of standard output\n"
    "\n"
    "Exit status: 0 written, 1 invalid spec or unwritable file, 2 usage.\n";

}  // namespace

int cmd_export(const std::vector<std::string>& argv) {
  Args args("export", argv, {}, {"--set", "--output"}, {{"-o", "--output"}});
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  args.expect_positionals(2, "ENGINE (megatron or deepspeed) and SPEC");
  const std::string engine = args.positionals()[0], file = args.positionals()[1];
  const JobSpec spec = load_spec(file, args.values("--set"));
  const EngineExport out = export_spec(engine, spec);

  const std::string target = args.value("--output");
  if (target.empty()) {
    std::cout << out.text << std::flush;
  } else {
    std::error_code ec;
    if (std::filesystem::is_directory(target, ec)) throw Error(target + ": is a directory, not a file");
    std::ofstream f(target, std::ios::binary | std::ios::trunc);
    if (!(f << out.text) || !f.flush()) throw Error(target + ": cannot write");
    if (engine == "megatron")
      std::filesystem::permissions(target, std::filesystem::perms::owner_exec | std::filesystem::perms::group_exec,
                                   std::filesystem::perm_options::add, ec);
  }
  std::fprintf(stderr, "moe export: %s: %zu setting(s) without a %s counterpart, listed in the output\n",
               spec.name.c_str(), out.unmapped.size(), engine.c_str());
  return 0;
}

}  // namespace moe::cli
