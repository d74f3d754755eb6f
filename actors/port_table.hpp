// actors/port_table.hpp — the exposed ports of one sandbox as the port proxy reads them: auth
// settings and traffic counters, shared between the sandbox's port-forward actors (which own
// them) and the proxy (which counts into them). No CAF, no Beast: the proxy's hot path never
// sends an actor message, it reads this table and bumps atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace warren::actors {

// Updated by the proxy per request and per chunk; read by the port-forward actor for /metrics.
struct port_counters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_in{0};   // client → sandbox (request heads and bodies, tunnels)
  std::atomic<uint64_t> bytes_out{0};  // sandbox → client
  std::atomic<int64_t> open_connections{0};
};

struct exposure {
  uint16_t port = 0;
  bool auth = false;
  std::string token_sha256;  // hex of SHA-256(token); empty when auth is false
  std::string created_at;
  std::shared_ptr<port_counters> counters = std::make_shared<port_counters>();

  // Constant-time check of a presented token (only its hash is kept).
  bool accepts(std::string_view token) const;
};

// Hex SHA-256, for exposure tokens.
std::string sha256_hex(std::string_view data);

class port_table {
 public:
  std::shared_ptr<const exposure> find(uint16_t port) const {
    std::lock_guard lk(mu_);
    auto it = by_port_.find(port);
    return it == by_port_.end() ? nullptr : it->second;
  }
  void put(std::shared_ptr<const exposure> e) {
    std::lock_guard lk(mu_);
    by_port_[e->port] = std::move(e);
  }
  void erase(uint16_t port) {
    std::lock_guard lk(mu_);
    by_port_.erase(port);
  }
  // The sandbox is being destroyed: every exposure is revoked and the proxy stops serving it.
  void close() {
    std::lock_guard lk(mu_);
    by_port_.clear();
    closed_.store(true);
  }
  bool closed() const { return closed_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mu_;
  std::map<uint16_t, std::shared_ptr<const exposure>> by_port_;
  std::atomic<bool> closed_{false};
};

}  // namespace warren::actors
