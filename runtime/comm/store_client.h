#pragma once
// A rank's connection to the rendezvous store (store_server.h): set, get, add, check, and wait for
// keys with a timeout whose error names the keys still missing. Thread-safe (one request at a time).
// The CUDA backend passes NCCL's unique id through the same store (set on rank 0, get elsewhere).
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace moe::rt::comm {

class StoreClient {
 public:
  // Connects to host:port, retrying until `connect_timeout` (the master may still be starting).
  // `default_timeout` bounds get() and wait() when no timeout is given.
  StoreClient(const std::string& host, int port, std::chrono::milliseconds connect_timeout,
              std::chrono::milliseconds default_timeout = std::chrono::seconds(60));
  ~StoreClient();
  StoreClient(const StoreClient&) = delete;
  StoreClient& operator=(const StoreClient&) = delete;

  // Announces this process as `rank` of a world of `world_size`; throws moe::Error when the
  // master refuses (different world size, another job's id, rank out of range, rank already present).
  void hello(int rank, int world_size, const std::string& job_id = "");

  void set(const std::string& key, const std::vector<char>& value);
  void set(const std::string& key, const std::string& value);
  // Waits for the key (default timeout), then returns its value.
  std::vector<char> get(const std::string& key);
  std::string get_string(const std::string& key);
  int64_t add(const std::string& key, int64_t delta);  // returns the new value
  bool check(const std::vector<std::string>& keys);     // all present, now
  void erase(const std::string& key);
  // Blocks until every key exists. On timeout returns false and fills `missing` (if given);
  // the throwing overload names the missing keys.
  bool wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout,
            std::vector<std::string>* missing);
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout);
  void wait(const std::vector<std::string>& keys) { wait(keys, default_timeout_); }

  std::chrono::milliseconds default_timeout() const { return default_timeout_; }
  const std::string& address() const { return address_; }

 private:
  struct Reply;
  Reply request(const std::vector<char>& message, const char* what);

  int fd_ = -1;
  std::string address_;
  std::chrono::milliseconds default_timeout_;
  std::mutex mutex_;
};

}  // namespace moe::rt::comm
