// Connect (ssh config, timeouts) → verify host key → authenticate; then helpers on the session.
#include "ssh_session.h"

#include "error.h"
#include "host_keys.h"
#include "sftp_client.h"
#include "ssh_auth.h"

namespace moe::remote {

namespace {

void set_option(ssh_session s, enum ssh_options_e opt, const void* value, const std::string& host,
                const char* what) {
  if (ssh_options_set(s, opt, value) != SSH_OK)
    throw moe::Error(host + ": cannot set ssh option " + what + ": " + ssh_get_error(s));
}

// libssh expands %d, %u, %h… (and a leading ~) in the known_hosts and ssh config paths it is
// given; a literal '%' is written %%. Without this, "/data/100%done/known_hosts" was read as
// "/data/100<home>one/known_hosts": every host looked unknown, and an accepted key went there.
std::string libssh_path(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '%') out += '%';
    out += c;
  }
  return out;
}

}  // namespace

SshSession::SshSession(ssh_session s, HostEntry host, ConnectOptions options)
    : session_(s), host_(std::move(host)), options_(std::move(options)) {}

SshSession::~SshSession() {
  if (ssh_is_connected(session_)) ssh_disconnect(session_);
  ssh_free(session_);
}

std::string SshSession::error_text() { return ssh_get_error(session_); }

std::unique_ptr<SshSession> SshSession::connect(const HostEntry& host, const ConnectOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  // Entries from a hostfile are checked when parsed; these come from code (a table, a test). A
  // host or user that is not plain data never reaches libssh (whose ProxyCommand goes to /bin/sh).
  check_host_entry(host, "host entry");
  ssh_session s = ssh_new();
  if (!s) throw moe::Error(host.host + ": cannot create an ssh session");
  // Owned from here on, so every throw below frees it.
  std::unique_ptr<SshSession> self(new SshSession(s, host, options));

  set_option(s, SSH_OPTIONS_HOST, host.host.c_str(), host.host, "host");
  if (options.process_config) {
    // Parse the config first: libssh lets a config line overwrite options set before it, and the
    // hostfile's explicit user/port/key must win, as they do on OpenSSH's command line.
    const std::string config = libssh_path(options.ssh_config_file);
    const char* file = config.empty() ? nullptr : config.c_str();
    if (ssh_options_parse_config(s, file) < 0)
      throw moe::Error(host.host + ": cannot parse ssh config " +
                       (file ? options.ssh_config_file : std::string("~/.ssh/config")) + ": " +
                       ssh_get_error(s));
  } else {
    int no = 0;
    set_option(s, SSH_OPTIONS_PROCESS_CONFIG, &no, host.host, "ProcessConfig");
  }
  if (host.port != 0) {
    unsigned int port = static_cast<unsigned int>(host.port);
    set_option(s, SSH_OPTIONS_PORT, &port, host.host, "port");
  }
  if (!host.user.empty()) set_option(s, SSH_OPTIONS_USER, host.user.c_str(), host.host, "user");
  if (!options.known_hosts_file.empty())
    set_option(s, SSH_OPTIONS_KNOWNHOSTS, libssh_path(options.known_hosts_file).c_str(), host.host, "known_hosts");
  // Every exchange here is a small request waiting for its answer: Nagle's delay would add ~40 ms
  // to each (measured on loopback: channel open 45 ms → under 1 ms).
  int nodelay = 1;
  set_option(s, SSH_OPTIONS_NODELAY, &nodelay, host.host, "nodelay");
  long timeout = options.connect_timeout_s;
  set_option(s, SSH_OPTIONS_TIMEOUT, &timeout, host.host, "timeout");

  if (ssh_connect(s) != SSH_OK) {
    char* h = nullptr;
    std::string addr = host.host;
    if (ssh_options_get(s, SSH_OPTIONS_HOST, &h) == SSH_OK && h) {
      addr = h;
      ssh_string_free_char(h);
    }
    unsigned int port = 0;
    ssh_options_get_port(s, &port);
    throw moe::Error(host.host + ": cannot connect to " + addr + ":" + std::to_string(port) + ": " +
                     ssh_get_error(s));
  }
  verify_host_key(s, host, options);
  authenticate(s, host, options);
  // From now on the timeout bounds each round trip (channel open, SFTP request, keepalive).
  timeout = options.keepalive_timeout_s;
  set_option(s, SSH_OPTIONS_TIMEOUT, &timeout, host.host, "timeout");
  self->connect_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - t0);
  return self;
}

StreamResult SshSession::stream(const std::string& command, const StreamHandlers& handlers) {
  StreamResult result;
  ssh_channel ch = ssh_channel_new(session_);
  if (!ch) {
    result.lost = "cannot create a channel: " + error_text();
    return result;
  }
  struct Free {
    ssh_channel c;
    ~Free() {
      if (ssh_channel_is_open(c)) ssh_channel_close(c);
      ssh_channel_free(c);
    }
  } guard{ch};
  if (ssh_channel_open_session(ch) != SSH_OK) {
    result.lost = "cannot open a channel: " + error_text();
    return result;
  }
  if (ssh_channel_request_exec(ch, command.c_str()) != SSH_OK) {
    result.lost = "cannot start a command: " + error_text();
    return result;
  }
  std::string buf(1 << 15, '\0');
  auto last_keepalive = std::chrono::steady_clock::now();
  const auto interval = std::chrono::seconds(options_.keepalive_interval_s);
  auto drain_stderr = [&]() -> bool {
    for (;;) {
      int m = ssh_channel_read_nonblocking(ch, buf.data(), static_cast<uint32_t>(buf.size()), 1);
      if (m == SSH_ERROR) return false;
      if (m <= 0) return true;
      if (handlers.on_stderr) handlers.on_stderr(std::string_view(buf.data(), static_cast<size_t>(m)));
    }
  };
  for (;;) {
    if (handlers.stop && handlers.stop()) {
      result.stopped = true;
      return result;
    }
    int n = ssh_channel_read_timeout(ch, buf.data(), static_cast<uint32_t>(buf.size()), 0, 100);
    if (n == SSH_ERROR) {
      result.lost = "connection lost: " + error_text();
      return result;
    }
    if (n > 0 && handlers.on_stdout) handlers.on_stdout(std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!drain_stderr()) {
      result.lost = "connection lost: " + error_text();
      return result;
    }
    if (n == 0 && ssh_channel_is_eof(ch)) break;
    if (n == 0 && (!ssh_is_connected(session_) || ssh_channel_is_closed(ch))) {
      result.lost = "connection lost: " + error_text();
      return result;
    }
    const auto now = std::chrono::steady_clock::now();
    if (options_.keepalive_interval_s > 0 && now - last_keepalive >= interval) {
      if (!keepalive()) {
        result.lost = "no answer to keepalive within " + std::to_string(options_.keepalive_timeout_s) + " s";
        return result;
      }
      last_keepalive = std::chrono::steady_clock::now();
    }
  }
  // Whatever arrived with the EOF.
  for (;;) {
    int n = ssh_channel_read_nonblocking(ch, buf.data(), static_cast<uint32_t>(buf.size()), 0);
    if (n <= 0) break;
    if (handlers.on_stdout) handlers.on_stdout(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  drain_stderr();
  result.exit_status = ssh_channel_get_exit_status(ch);
  return result;
}

ExecResult SshSession::run(const std::string& command) {
  ExecResult r;
  StreamHandlers h;
  h.on_stdout = [&](std::string_view s) { r.out += s; };
  h.on_stderr = [&](std::string_view s) { r.err += s; };
  StreamResult s = stream(command, h);
  if (!s.lost.empty()) throw moe::Error(host_.host + ": " + s.lost);
  r.exit_status = s.exit_status;
  return r;
}

bool SshSession::keepalive() {
  if (!ssh_is_connected(session_)) return false;
  ssh_channel ch = ssh_channel_new(session_);
  if (!ch) return false;
  // Opening a session channel is a full round trip (open → confirmation) bounded by the session
  // timeout; unlike ssh_send_keepalive it tells us whether the server answered.
  const bool ok = ssh_channel_open_session(ch) == SSH_OK;
  if (ok) ssh_channel_close(ch);
  ssh_channel_free(ch);
  return ok;
}

const std::string& SshSession::home() {
  if (home_.empty()) {
    ExecResult r = run("printf '%s' \"$HOME\"");
    if (r.exit_status != 0 || r.out.empty() || r.out[0] != '/')
      throw moe::Error(host_.host + ": cannot find the remote home directory ($HOME is '" + r.out + "')");
    home_ = r.out;
  }
  return home_;
}

void SshSession::write_files(const std::string& dir, const std::vector<JobFile>& files) {
  SftpClient sftp(*this);
  sftp.mkdir_p(dir, 0700);
  for (const JobFile& f : files) sftp.write_file(dir + "/" + f.name, f.content, f.mode);
}

}  // namespace moe::remote
