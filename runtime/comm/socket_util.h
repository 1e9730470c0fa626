#pragma once
// Small blocking-TCP helpers for the rendezvous store and the launcher: resolve, listen, connect
// with retry, whole-buffer send/receive. Every failure throws moe::Error naming host:port and errno.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace moe::rt::comm {

// "HOST:PORT" → host, port. Throws moe::Error naming `what` (e.g. "--master") on a bad value.
void parse_host_port(const std::string& text, std::string& host, int& port, const std::string& what);

// A listening socket on host:port (port 0: any free port). Throws a clear error when the port is
// busy ("address already in use") or the host does not resolve to a local address.
int listen_tcp(const std::string& host, int port, int backlog = 128);
int local_port_of(int fd);
// A loopback port that was free a moment ago (tests and benchmarks pick their --master with it).
int free_loopback_port();

// Connects to host:port, retrying refused connections until `timeout` passes (the master may
// still be starting). Throws "could not reach HOST:PORT within Ns: <last error>".
int connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout);

// Send/receive exactly n bytes. Return false if the peer closed the connection (recv at a message
// boundary); throw moe::Error on other errors. `what` names the operation for the message.
void send_all(int fd, const void* data, size_t n, const std::string& what);
bool recv_all(int fd, void* data, size_t n, const std::string& what);

void close_fd(int fd);
std::string errno_text(int err);

}  // namespace moe::rt::comm
