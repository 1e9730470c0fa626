// `moe import-hf CONFIG.json [-o SPEC.json]`: a Hugging Face config.json to a job spec; keys it
// cannot map are listed as warnings on stderr.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "error.h"
#include "hf_import.h"
#include "job_spec.h"
#include "spec_validation.h"

namespace moe::cli {

int cmd_import_hf(const std::vector<std::string>& argv) {
  Args args("import-hf", argv, {}, {"--output", "--set"}, {{"-o", "--output"}});
  if (args.help()) {
    std::string list;
    for (const auto& a : supported_hf_architectures()) list += "  " + a + "\n";
    std::printf(
        "usage: moe import-hf CONFIG.json [-o SPEC.json] [--set path.key=value]…\n\n"
        "Converts a Hugging Face config.json into a MoE Studio job spec (printed, or written to -o).\n"
        "Keys that cannot be mapped are listed as warnings on stderr. The layout is a starting point\n"
        "(EP over one 8-GPU node): check it with `moe plan`. Supported architectures:\n%s",
        list.c_str());
    return 0;
  }
  args.expect_positionals(1, "CONFIG.json (a Hugging Face config)");
  const std::string file = args.positionals()[0];
  HfImport imp = import_hf_config(parse_json_text(read_text_file(file), file), file);
  nlohmann::json resolved = spec_to_json(imp.spec);
  for (const auto& o : args.values("--set")) apply_override(resolved, o);
  const JobSpec spec = spec_from_json(resolved);
  for (const auto& w : imp.warnings) std::fprintf(stderr, "warning: %s: %s\n", file.c_str(), w.c_str());
  for (const auto& d : validate_spec(spec)) std::fprintf(stderr, "%s\n", d.text().c_str());

  const std::string out = args.value("--output");
  if (out.empty()) {
    std::cout << resolved.dump(2) << "\n";
  } else {
    std::error_code ec;
    if (std::filesystem::is_directory(out, ec)) throw Error(out + ": is a directory, not a file");
    save_spec(spec, out);
    std::fprintf(stderr, "moe import-hf: wrote %s (%s, %zu warning(s))\n", out.c_str(), imp.architecture.c_str(),
                 imp.warnings.size());
  }
  return 0;
}

}  // namespace moe::cli
