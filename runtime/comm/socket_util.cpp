// Blocking TCP helpers (see socket_util.h). MSG_NOSIGNAL everywhere: a closed peer must become an
// error message, not a SIGPIPE that kills the rank silently.
#include "socket_util.h"

#include <arpa/inet.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <poll.h>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "error.h"

namespace moe::rt::comm {

std::string errno_text(int err) { return std::strerror(err); }

void parse_host_port(const std::string& text, std::string& host, int& port, const std::string& what) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw Error(what + ": expected HOST:PORT, got '" + text + "'");
  host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  char* end = nullptr;
  const long value = std::strtol(port_text.c_str(), &end, 10);
  if (*end != '\0' || value < 1 || value > 65535)
    throw Error(what + ": port must be 1..65535, got '" + port_text + "'");
  port = static_cast<int>(value);
}

namespace {

struct AddrList {
  addrinfo* head = nullptr;
  ~AddrList() {
    if (head) freeaddrinfo(head);
  }
};

void resolve(const std::string& host, int port, bool passive, AddrList& out) {
  addrinfo hints{};
  hints.ai_family = AF_INET;  // the runtime's transports are IPv4 (Gloo's device is created the same way)
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &out.head);
  if (rc != 0) throw Error("cannot resolve host '" + host + "': " + gai_strerror(rc));
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // best effort: latency only
}

}  // namespace

int listen_tcp(const std::string& host, int port, int backlog) {
  AddrList addrs;
  resolve(host, port, true, addrs);
  const std::string where = host + ":" + std::to_string(port);
  int last_err = 0;
  for (addrinfo* a = addrs.head; a; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_err = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, backlog) == 0) return fd;
    last_err = errno;
    ::close(fd);
  }
  if (last_err == EADDRINUSE)
    throw Error("master port " + where + " is busy (address already in use): pick another --master port");
  if (last_err == EADDRNOTAVAIL)
    throw Error("master address " + where + " is not an address of this host (rank 0 hosts the store)");
  throw Error("cannot listen on " + where + ": " + errno_text(last_err));
}

int local_port_of(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw Error("getsockname failed: " + errno_text(errno));
  return ntohs(addr.sin_port);
}

namespace {

// One non-blocking connect attempt bounded by `budget`, so an unreachable host (no RST, packets
// dropped) cannot stall for the kernel's two-minute SYN timeout. Returns the fd or -1 with errno.
int connect_once(const addrinfo* a, std::chrono::milliseconds budget) {
  const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
  if (fd < 0) return -1;
  if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      const int err = errno;
      ::close(fd);
      errno = err;
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    const int ms = static_cast<int>(std::max<int64_t>(1, budget.count()));
    int rc;
    do rc = ::poll(&p, 1, ms);
    while (rc < 0 && errno == EINTR);
    int err = ETIMEDOUT;
    if (rc > 0) {
      socklen_t len = sizeof(err);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    }
    if (err != 0) {
      ::close(fd);
      errno = err;
      return -1;
    }
  }
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace

int connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout) {
  const std::string where = host + ":" + std::to_string(port);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(5);
  int last_err = 0;
  for (;;) {
    AddrList addrs;
    resolve(host, port, false, addrs);
    for (addrinfo* a = addrs.head; a; a = a->ai_next) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      const int fd = connect_once(a, std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(2000)));
      if (fd >= 0) {
        set_nodelay(fd);
        return fd;
      }
      last_err = errno;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", std::chrono::duration<double>(timeout).count());
  throw Error("could not reach master " + where + " within " + buf + " s: " + errno_text(last_err));
}

void send_all(int fd, const void* data, size_t n, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      throw Error(what + ": send failed: " + errno_text(errno));
    }
    p += k;
    n -= static_cast<size_t>(k);
  }
}

bool recv_all(int fd, void* data, size_t n, const std::string& what) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < n) {
    const ssize_t k = ::recv(fd, p + got, n - got, 0);
    if (k == 0) {
      if (got == 0) return false;
      throw Error(what + ": connection closed in the middle of a message");
    }
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET && got == 0) return false;
      throw Error(what + ": receive failed: " + errno_text(errno));
    }
    got += static_cast<size_t>(k);
  }
  return true;
}

void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

int free_loopback_port() {
  const int fd = listen_tcp("127.0.0.1", 0);
  const int port = local_port_of(fd);
  close_fd(fd);
  return port;
}

}  // namespace moe::rt::comm
