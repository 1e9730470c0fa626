// Gloo rendezvous store adapter (see gloo_store_adapter.h).
#include "gloo_store_adapter.h"

namespace moe::rt::comm {

GlooStoreAdapter::GlooStoreAdapter(std::shared_ptr<StoreClient> store, std::string prefix,
                                   std::chrono::milliseconds timeout)
    : store_(std::move(store)), prefix_(std::move(prefix) + "/"), timeout_(timeout) {}

std::vector<std::string> GlooStoreAdapter::prefixed(const std::vector<std::string>& keys) const {
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(prefix_ + k);
  return out;
}

void GlooStoreAdapter::set(const std::string& key, const std::vector<char>& data) { store_->set(prefix_ + key, data); }

std::vector<char> GlooStoreAdapter::get(const std::string& key) {
  store_->wait({prefix_ + key}, timeout_);
  return store_->get(prefix_ + key);
}

void GlooStoreAdapter::wait(const std::vector<std::string>& keys) { store_->wait(prefixed(keys), timeout_); }

void GlooStoreAdapter::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  store_->wait(prefixed(keys), timeout);
}

}  // namespace moe::rt::comm
