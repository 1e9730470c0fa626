#pragma once
// Gloo's rendezvous::Store over our TCP store (Debian's Gloo has no TCP store of its own), with a
// key prefix per communicator so several groups can run connectFullMesh through one store.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

#include "store_client.h"

namespace moe::rt::comm {

class GlooStoreAdapter : public gloo::rendezvous::Store {
 public:
  GlooStoreAdapter(std::shared_ptr<StoreClient> store, std::string prefix, std::chrono::milliseconds timeout);

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  std::vector<std::string> prefixed(const std::vector<std::string>& keys) const;
  std::shared_ptr<StoreClient> store_;
  std::string prefix_;
  std::chrono::milliseconds timeout_;
};

}  // namespace moe::rt::comm
