#pragma once
// The rendezvous key-value store, hosted by global rank 0 on the --master port: one thread that
// serves set / get / add / wait-with-timeout / check over TCP to every rank (store_client.h).
// It also checks the world: a rank announcing a different world size, a rank id out of range or a
// rank joining twice is refused with a message that the client throws.
#include <cstdint>
#include <memory>
#include <string>

namespace moe::rt::comm {

class StoreServer {
 public:
  // Binds host:port (port 0 picks a free one) and starts serving. Throws moe::Error when the port
  // is busy or the address is not local. `world_size` 0 disables the world check (plain store).
  // `job_id`: the job this store serves; a hello from another job's rank is refused (two jobs that
  // share a master address must not train each other's ranks).
  StoreServer(const std::string& host, int port, int world_size, const std::string& job_id = "");
  ~StoreServer();  // stops the thread and closes every connection
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe::rt::comm
