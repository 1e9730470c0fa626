// Client of the rendezvous store (see store_client.h): one blocking request/reply per call.
#include "store_client.h"

#include <cstdio>

#include "error.h"
#include "socket_util.h"
#include "store_protocol.h"

namespace moe::rt::comm {

using namespace store_wire;

struct StoreClient::Reply {
  uint8_t status = 0;
  std::vector<char> body;  // everything after the status byte
};

StoreClient::StoreClient(const std::string& host, int port, std::chrono::milliseconds connect_timeout,
                         std::chrono::milliseconds default_timeout)
    : address_(host + ":" + std::to_string(port)), default_timeout_(default_timeout) {
  fd_ = connect_tcp(host, port, connect_timeout);
}

StoreClient::~StoreClient() { close_fd(fd_); }

StoreClient::Reply StoreClient::request(const std::vector<char>& message, const char* what) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string context = std::string("rendezvous store ") + address_ + " " + what;
  send_all(fd_, message.data(), message.size(), context);
  uint32_t n = 0;
  if (!recv_all(fd_, &n, 4, context)) throw Error(context + ": the master closed the connection (rank 0 exited?)");
  Reply reply;
  std::vector<char> buf(n);
  if (n > 0 && !recv_all(fd_, buf.data(), n, context)) throw Error(context + ": connection closed");
  if (n < 1) throw Error(context + ": empty reply");
  reply.status = static_cast<uint8_t>(buf[0]);
  reply.body.assign(buf.begin() + 1, buf.end());
  return reply;
}

namespace {

std::vector<std::string> trailing_strings(Reader& r) {
  std::vector<std::string> out;
  const uint32_t count = r.num<uint32_t>();
  for (uint32_t i = 0; i < count; ++i) out.push_back(r.str());
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& item : items) s += (s.empty() ? "" : ", ") + item;
  return s;
}

}  // namespace

void StoreClient::hello(int rank, int world_size, const std::string& job_id) {
  Writer w;
  w.u8(kHello);
  w.num<int32_t>(rank);
  w.num<int32_t>(world_size);
  w.str(job_id);
  Reply reply = request(w.finish(), "hello");
  if (reply.status != kOk) {
    Reader r(reply.body.data(), reply.body.size());
    auto text = trailing_strings(r);
    throw Error("rendezvous refused rank " + std::to_string(rank) + ": " + (text.empty() ? "?" : text[0]));
  }
}

void StoreClient::set(const std::string& key, const std::vector<char>& value) {
  Writer w;
  w.u8(kSet);
  w.str(key);
  w.blob(value.data(), value.size());
  if (request(w.finish(), "set").status != kOk) throw Error("rendezvous store " + address_ + ": set '" + key + "' failed");
}

void StoreClient::set(const std::string& key, const std::string& value) {
  set(key, std::vector<char>(value.begin(), value.end()));
}

std::vector<char> StoreClient::get(const std::string& key) {
  wait({key}, default_timeout_);
  Writer w;
  w.u8(kGet);
  w.str(key);
  Reply reply = request(w.finish(), "get");
  if (reply.status != kOk) throw Error("rendezvous store " + address_ + ": key '" + key + "' vanished");
  Reader r(reply.body.data(), reply.body.size());
  return r.blob();
}

std::string StoreClient::get_string(const std::string& key) {
  auto v = get(key);
  return std::string(v.begin(), v.end());
}

int64_t StoreClient::add(const std::string& key, int64_t delta) {
  Writer w;
  w.u8(kAdd);
  w.str(key);
  w.num<int64_t>(delta);
  Reply reply = request(w.finish(), "add");
  if (reply.status != kOk) throw Error("rendezvous store " + address_ + ": add '" + key + "' failed");
  Reader r(reply.body.data(), reply.body.size());
  return r.num<int64_t>();
}

bool StoreClient::check(const std::vector<std::string>& keys) {
  Writer w;
  w.u8(kCheck);
  w.num<uint32_t>(static_cast<uint32_t>(keys.size()));
  for (const auto& k : keys) w.str(k);
  return request(w.finish(), "check").status == kOk;
}

void StoreClient::erase(const std::string& key) {
  Writer w;
  w.u8(kDelete);
  w.str(key);
  request(w.finish(), "delete");
}

bool StoreClient::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout,
                       std::vector<std::string>* missing) {
  Writer w;
  w.u8(kWait);
  w.num<uint32_t>(static_cast<uint32_t>(keys.size()));
  for (const auto& k : keys) w.str(k);
  w.num<int64_t>(timeout.count());
  Reply reply = request(w.finish(), "wait");
  if (reply.status == kOk) return true;
  Reader r(reply.body.data(), reply.body.size());
  auto absent = trailing_strings(r);
  if (missing) *missing = absent;
  return false;
}

void StoreClient::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  std::vector<std::string> absent;
  if (!wait(keys, timeout, &absent)) {
    char secs[32];
    std::snprintf(secs, sizeof(secs), "%g", std::chrono::duration<double>(timeout).count());
    throw Error("rendezvous store " + address_ + ": timed out after " + secs + " s waiting for key(s) " + join(absent));
  }
}

}  // namespace moe::rt::comm
