#pragma once
// The few SFTP operations deploy and launch need (mkdir -p, write a file with a mode), on an
// SshSession. Paths are absolute remote paths; SFTP takes them verbatim, no shell involved.
#include <libssh/sftp.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "ssh_session.h"

namespace moe::remote {

class SftpClient {
 public:
  explicit SftpClient(SshSession& session);  // throws moe::Error naming the host
  ~SftpClient();
  SftpClient(const SftpClient&) = delete;
  SftpClient& operator=(const SftpClient&) = delete;

  // Creates `path` and its missing parents with `mode` (existing directories are kept).
  void mkdir_p(const std::string& path, unsigned mode);
  // Writes bytes to `path` (created or truncated) and sets `mode`.
  void write_file(const std::string& path, std::string_view content, unsigned mode);
  // Copies a local file; returns the bytes sent.
  uint64_t upload_file(const std::filesystem::path& local, const std::string& path, unsigned mode);

 private:
  std::string error(const std::string& what, const std::string& path);
  SshSession& session_;
  sftp_session sftp_ = nullptr;
};

}  // namespace moe::remote
