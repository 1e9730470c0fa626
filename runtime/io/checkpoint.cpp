// Atomic checkpoint directories (see checkpoint.h).
#include "checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <unistd.h>

#include "error.h"
#include "hf_config.h"

namespace fs = std::filesystem;

namespace moe::rt {
namespace {

void write_text_synced(const fs::path& file, const std::string& text) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(file.string() + ": cannot create (" + std::strerror(errno) + ")");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw Error(file.string() + ": write failed (" + std::strerror(errno) + ")");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw Error(file.string() + ": fsync/close failed (" + std::strerror(errno) + ")");
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(dir.string() + ": cannot open directory (" + std::strerror(errno) + ")");
  ::fsync(fd);  // best effort: some file systems refuse fsync on directories
  ::close(fd);
}

std::string step_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return name;
}

nlohmann::json read_json_file(const fs::path& file) {
  return parse_json_text(read_text_file(file), file.string());
}

}  // namespace

fs::path save_checkpoint(const fs::path& root, int64_t step, const JobSpec& spec, const CheckpointData& data, int keep) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw Error("checkpoint dir " + root.string() + ": cannot create (" + ec.message() + ")");
  const std::string name = step_name(step);
  const fs::path final_dir = root / name;
  const fs::path tmp = root / (".tmp-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec) || ec) throw Error("checkpoint dir " + tmp.string() + ": cannot create (" + ec.message() + ")");

  write_safetensors(tmp / "model.safetensors", data.weights);
  if (!data.optimizer.empty()) write_safetensors(tmp / "optimizer.safetensors", data.optimizer);
  write_text_synced(tmp / "config.json", hf_config_from_spec(spec).dump(2) + "\n");
  nlohmann::json state = data.trainer_state;
  state["step"] = step;
  state["spec"] = spec_to_json(spec);
  write_text_synced(tmp / "trainer_state.json", state.dump(2) + "\n");
  fsync_dir(tmp);

  // Publish: replace an older checkpoint of the same step (a re-run), then move `latest`.
  if (fs::exists(final_dir, ec)) fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) throw Error("checkpoint dir " + final_dir.string() + ": cannot rename into place (" + ec.message() + ")");
  fsync_dir(root);
  write_text_synced(root / "latest.tmp", name + "\n");
  fs::rename(root / "latest.tmp", root / "latest", ec);
  if (ec) throw Error("checkpoint dir " + root.string() + ": cannot update latest (" + ec.message() + ")");
  fsync_dir(root);

  // Keep the newest `keep` checkpoints (by step number in the name).
  std::vector<fs::path> all;
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.is_directory() && entry.path().filename().string().rfind("step-", 0) == 0) all.push_back(entry.path());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; keep > 0 && i + static_cast<size_t>(keep) < all.size(); ++i)
    if (all[i] != final_dir) fs::remove_all(all[i], ec);
  return final_dir;
}

fs::path resolve_checkpoint_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("checkpoint " + dir.string() + ": no such directory");
  if (fs::exists(dir / "model.safetensors", ec)) return dir;
  if (fs::exists(dir / "latest", ec)) {
    std::string name = read_text_file(dir / "latest");
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    // One name in this directory (messages quote it: no control characters, so they stay one line).
    const bool control = std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == ".." || control)
      throw Error("checkpoint " + (dir / "latest").string() + ": corrupt (no checkpoint name)");
    if (!fs::exists(dir / name / "model.safetensors", ec))
      throw Error("checkpoint " + (dir / name).string() + ": named by latest but has no model.safetensors");
    return dir / name;
  }
  throw Error("checkpoint " + dir.string() + ": neither a checkpoint (model.safetensors) nor a checkpoint root (latest)");
}

LoadedCheckpoint load_checkpoint(const fs::path& dir_in, bool with_optimizer) {
  LoadedCheckpoint ck;
  ck.dir = resolve_checkpoint_dir(dir_in);
  std::error_code ec;
  const fs::path config = ck.dir / "config.json";
  if (!fs::exists(config, ec)) throw Error("checkpoint " + ck.dir.string() + ": config.json is missing");
  ck.config = read_json_file(config);
  const fs::path state = ck.dir / "trainer_state.json";
  ck.trainer_state = fs::exists(state, ec) ? read_json_file(state) : nlohmann::json::object();
  if (!ck.trainer_state.is_object()) throw Error(state.string() + ": not a JSON object");
  if (ck.trainer_state.contains("spec")) {
    try {
      ck.spec = spec_from_json(resolve_spec_json(ck.trainer_state["spec"]));
    } catch (const Error& e) {
      throw Error(state.string() + ": spec: " + e.what());
    }
  }
  // config.json is authoritative for the architecture (a user may bring a Hugging Face config).
  apply_hf_config(ck.config, ck.spec, config.string());
  ck.weights = read_safetensors(ck.dir / "model.safetensors");
  if (with_optimizer) {
    const fs::path opt = ck.dir / "optimizer.safetensors";
    if (!fs::exists(opt, ec)) throw Error("checkpoint " + ck.dir.string() + ": optimizer.safetensors is missing (cannot resume)");
    ck.optimizer = read_safetensors(opt);
  }
  return ck;
}

std::string rng_to_string(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

std::mt19937_64 rng_from_string(const std::string& text, const std::string& origin) {
  std::istringstream in(text);
  std::mt19937_64 rng;
  in >> rng;
  if (in.fail()) throw Error(origin + ": corrupt RNG state");
  return rng;
}

}  // namespace moe::rt
