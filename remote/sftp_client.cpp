// SFTP helpers over libssh's synchronous sftp API; every call checked, errors name host and path.
#include "sftp_client.h"

#include <fcntl.h>

#include <fstream>
#include <vector>

#include "error.h"

namespace moe::remote {

namespace {
constexpr size_t kChunk = 1 << 16;  // below OpenSSH's 256 KiB packet limit
}

SftpClient::SftpClient(SshSession& session) : session_(session) {
  sftp_ = sftp_new(session.raw());
  if (!sftp_) throw moe::Error(session.name() + ": cannot open an SFTP channel: " + ssh_get_error(session.raw()));
  if (sftp_init(sftp_) != SSH_OK) {
    std::string msg = session.name() + ": SFTP init failed: " + ssh_get_error(session.raw());
    sftp_free(sftp_);
    throw moe::Error(msg);
  }
}

SftpClient::~SftpClient() { sftp_free(sftp_); }

std::string SftpClient::error(const std::string& what, const std::string& path) {
  return session_.name() + ": " + what + " " + path + ": " + ssh_get_error(session_.raw()) +
         " (sftp error " + std::to_string(sftp_get_error(sftp_)) + ")";
}

void SftpClient::mkdir_p(const std::string& path, unsigned mode) {
  if (path.empty() || path[0] != '/') throw moe::Error(session_.name() + ": not an absolute path: " + path);
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    const std::string prefix = path.substr(0, next);
    pos = next + 1;
    if (prefix.empty() || prefix.back() == '/') continue;
    sftp_attributes a = sftp_stat(sftp_, prefix.c_str());
    if (a) {
      const bool is_dir = a->type == SSH_FILEXFER_TYPE_DIRECTORY;
      sftp_attributes_free(a);
      if (!is_dir) throw moe::Error(session_.name() + ": " + prefix + " exists and is not a directory");
      continue;
    }
    if (sftp_mkdir(sftp_, prefix.c_str(), mode) != 0) {
      // Another worker on a shared home may have created it meanwhile.
      sftp_attributes b = sftp_stat(sftp_, prefix.c_str());
      if (!b) throw moe::Error(error("cannot create directory", prefix));
      sftp_attributes_free(b);
    }
  }
}

void SftpClient::write_file(const std::string& path, std::string_view content, unsigned mode) {
  sftp_file f = sftp_open(sftp_, path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (!f) throw moe::Error(error("cannot create", path));
  size_t done = 0;
  while (done < content.size()) {
    const size_t n = std::min(kChunk, content.size() - done);
    ssize_t w = sftp_write(f, content.data() + done, n);
    if (w < 0 || static_cast<size_t>(w) != n) {
      sftp_close(f);
      throw moe::Error(error("write failed for", path));
    }
    done += n;
  }
  if (sftp_close(f) != SSH_NO_ERROR) throw moe::Error(error("close failed for", path));
  if (sftp_chmod(sftp_, path.c_str(), mode) != 0) throw moe::Error(error("cannot chmod", path));
}

uint64_t SftpClient::upload_file(const std::filesystem::path& local, const std::string& path, unsigned mode) {
  std::ifstream in(local, std::ios::binary);
  if (!in) throw moe::Error(local.string() + ": cannot open for upload");
  sftp_file f = sftp_open(sftp_, path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (!f) throw moe::Error(error("cannot create", path));
  std::vector<char> buf(kChunk);
  uint64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    ssize_t w = sftp_write(f, buf.data(), n);
    if (w < 0 || static_cast<size_t>(w) != n) {
      sftp_close(f);
      throw moe::Error(error("write failed for", path));
    }
    total += n;
  }
  if (in.bad()) {
    sftp_close(f);
    throw moe::Error(local.string() + ": read error during upload");
  }
  if (sftp_close(f) != SSH_NO_ERROR) throw moe::Error(error("close failed for", path));
  if (sftp_chmod(sftp_, path.c_str(), mode) != 0) throw moe::Error(error("cannot chmod", path));
  return total;
}

}  // namespace moe::remote
