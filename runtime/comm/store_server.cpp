// The rendezvous store's server (see store_server.h): a single poll() loop, so there is no locking;
// a `wait` that cannot be answered yet is parked with its deadline and answered by the `set` or
// `add` that completes it, or with the list of keys still missing when the deadline passes.
#include "store_server.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "error.h"
#include "socket_util.h"
#include "store_protocol.h"

namespace moe::rt::comm {

using namespace store_wire;
using Clock = std::chrono::steady_clock;

namespace {

struct Client {
  int fd = -1;
  int rank = -1;  // after hello
  std::vector<char> in;
};

struct ParkedWait {
  int fd;
  std::vector<std::string> keys;
  Clock::time_point deadline;
};

}  // namespace

struct StoreServer::Impl {
  int listen_fd = -1;
  int wake[2] = {-1, -1};  // self-pipe: the destructor wakes the loop
  int port = 0;
  int world_size = 0;
  std::string job_id;
  std::map<std::string, std::vector<char>> data;
  std::vector<Client> clients;
  std::vector<ParkedWait> waits;
  std::thread thread;

  void reply(int fd, Status status, const std::vector<std::string>& strings = {},
             const std::vector<char>* blob = nullptr, const int64_t* number = nullptr) {
    Writer w;
    w.u8(status);
    if (blob) w.blob(blob->data(), blob->size());
    if (number) w.num<int64_t>(*number);
    w.num<uint32_t>(static_cast<uint32_t>(strings.size()));
    for (const auto& s : strings) w.str(s);
    const auto& bytes = w.finish();
    try {
      send_all(fd, bytes.data(), bytes.size(), "rendezvous store reply");
    } catch (const Error&) {
      // The client went away; its socket is closed when poll reports it.
    }
  }

  std::vector<std::string> missing(const std::vector<std::string>& keys) const {
    std::vector<std::string> out;
    for (const auto& k : keys)
      if (!data.count(k)) out.push_back(k);
    return out;
  }

  void release_waits() {
    const auto now = Clock::now();
    std::set<std::string> given_up;  // keys a wait timed out on now
    for (auto it = waits.begin(); it != waits.end();) {
      auto absent = missing(it->keys);
      if (absent.empty()) {
        reply(it->fd, kOk);
        it = waits.erase(it);
      } else if (now >= it->deadline) {
        reply(it->fd, kTimeout, absent);
        given_up.insert(absent.begin(), absent.end());
        it = waits.erase(it);
      } else {
        ++it;
      }
    }
    // Every other wait for one of those keys times out with it: the ranks waiting for the same
    // missing ranks all report them, instead of a race between the first rank's timeout (which
    // may take the master, and this store, down) and the others' "connection closed".
    if (given_up.empty()) return;
    for (auto it = waits.begin(); it != waits.end();) {
      auto absent = missing(it->keys);
      const bool shared = std::any_of(absent.begin(), absent.end(), [&](const std::string& k) { return given_up.count(k) > 0; });
      if (shared) {
        reply(it->fd, kTimeout, absent);
        it = waits.erase(it);
      } else {
        ++it;
      }
    }
  }

  void handle(Client& c, const char* msg, size_t n) {
    Reader r(msg, n);
    const uint8_t op = r.u8();
    switch (op) {
      case kHello: {
        const int rank = r.num<int32_t>();
        const int size = r.num<int32_t>();
        const std::string job = r.str();
        if (world_size > 0 && size != world_size) {
          reply(c.fd, kRefused, {"rank " + std::to_string(rank) + " was started with world size " +
                                 std::to_string(size) + " but the master (rank 0) has world size " +
                                 std::to_string(world_size)});
          return;
        }
        if (job != job_id) {
          reply(c.fd, kRefused, {"rank " + std::to_string(rank) + " belongs to job '" + job + "' but the master (rank 0) serves job '" +
                                 job_id + "' on port " + std::to_string(port) +
                                 ": two jobs share the master address (give each its own --master port)"});
          return;
        }
        if (world_size > 0 && (rank < 0 || rank >= world_size)) {
          reply(c.fd, kRefused, {"rank " + std::to_string(rank) + " is outside the world of size " +
                                 std::to_string(world_size)});
          return;
        }
        if (data.count(rank_key(rank))) {
          reply(c.fd, kRefused, {"rank " + std::to_string(rank) + " joined twice (two processes have the same rank)"});
          return;
        }
        c.rank = rank;
        data[rank_key(rank)] = {};
        reply(c.fd, kOk);
        release_waits();
        return;
      }
      case kSet: {
        const std::string key = r.str();
        data[key] = r.blob();
        reply(c.fd, kOk);
        release_waits();
        return;
      }
      case kGet: {
        const std::string key = r.str();
        auto it = data.find(key);
        if (it == data.end()) reply(c.fd, kNotFound, {key});
        else reply(c.fd, kOk, {}, &it->second);
        return;
      }
      case kAdd: {
        const std::string key = r.str();
        const int64_t delta = r.num<int64_t>();
        int64_t value = 0;
        auto it = data.find(key);
        if (it != data.end()) value = std::stoll(std::string(it->second.begin(), it->second.end()));
        value += delta;
        const std::string text = std::to_string(value);
        data[key] = std::vector<char>(text.begin(), text.end());
        reply(c.fd, kOk, {}, nullptr, &value);
        release_waits();
        return;
      }
      case kWait:
      case kCheck: {
        const uint32_t count = r.num<uint32_t>();
        std::vector<std::string> keys;
        for (uint32_t i = 0; i < count; ++i) keys.push_back(r.str());
        auto absent = missing(keys);
        if (absent.empty()) {
          reply(c.fd, kOk);
        } else if (op == kCheck) {
          reply(c.fd, kNotFound, absent);
        } else {
          const int64_t timeout_ms = r.num<int64_t>();
          waits.push_back({c.fd, std::move(keys), Clock::now() + std::chrono::milliseconds(timeout_ms)});
        }
        return;
      }
      case kDelete: {
        data.erase(r.str());
        reply(c.fd, kOk);
        return;
      }
      default:
        reply(c.fd, kRefused, {"unknown store operation " + std::to_string(op)});
    }
  }

  // Reads what is available on a client; returns false when it closed.
  bool pump(Client& c) {
    char buf[65536];
    const ssize_t k = ::recv(c.fd, buf, sizeof(buf), 0);
    if (k == 0) return false;
    if (k < 0) return errno == EINTR || errno == EAGAIN;
    c.in.insert(c.in.end(), buf, buf + k);
    size_t pos = 0;
    while (c.in.size() - pos >= 4) {
      uint32_t n;
      std::memcpy(&n, c.in.data() + pos, 4);
      if (c.in.size() - pos - 4 < n) break;
      try {
        handle(c, c.in.data() + pos + 4, n);
      } catch (const std::exception&) {
        return false;  // malformed: drop this client, keep serving the others
      }
      pos += 4 + n;
    }
    c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(pos));
    return true;
  }

  void loop() {
    for (;;) {
      std::vector<pollfd> fds;
      fds.push_back({wake[0], POLLIN, 0});
      fds.push_back({listen_fd, POLLIN, 0});
      for (const auto& c : clients) fds.push_back({c.fd, POLLIN, 0});
      int timeout_ms = -1;
      if (!waits.empty()) {
        auto first = std::min_element(waits.begin(), waits.end(),
                                      [](const auto& a, const auto& b) { return a.deadline < b.deadline; });
        timeout_ms = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(first->deadline - Clock::now()).count() + 1));
      }
      const int rc = ::poll(fds.data(), fds.size(), timeout_ms);
      if (rc < 0 && errno != EINTR) return;
      if (fds[0].revents) return;  // shutdown
      if (fds[1].revents & POLLIN) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) clients.push_back({fd, -1, {}});
      }
      std::vector<int> closed;
      for (size_t i = 2; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        auto it = std::find_if(clients.begin(), clients.end(), [&](const Client& c) { return c.fd == fds[i].fd; });
        if (it != clients.end() && !pump(*it)) closed.push_back(it->fd);
      }
      for (int fd : closed) {
        std::erase_if(waits, [&](const ParkedWait& w) { return w.fd == fd; });
        std::erase_if(clients, [&](const Client& c) { return c.fd == fd; });
        ::close(fd);
      }
      release_waits();
    }
  }
};

StoreServer::StoreServer(const std::string& host, int port, int world_size, const std::string& job_id)
    : impl_(std::make_unique<Impl>()) {
  impl_->world_size = world_size;
  impl_->job_id = job_id;
  impl_->listen_fd = listen_tcp(host, port);
  impl_->port = local_port_of(impl_->listen_fd);
  if (::pipe2(impl_->wake, O_CLOEXEC) != 0) {
    close_fd(impl_->listen_fd);
    throw Error("rendezvous store: pipe failed: " + errno_text(errno));
  }
  impl_->thread = std::thread([this] { impl_->loop(); });
}

StoreServer::~StoreServer() {
  const char byte = 1;
  if (::write(impl_->wake[1], &byte, 1) < 0) { /* the loop also ends when the pipe closes */ }
  impl_->thread.join();
  for (const auto& c : impl_->clients) ::close(c.fd);
  close_fd(impl_->listen_fd);
  close_fd(impl_->wake[0]);
  close_fd(impl_->wake[1]);
}

int StoreServer::port() const { return impl_->port; }

}  // namespace moe::rt::comm
