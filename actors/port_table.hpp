// actors/port_table.hpp — the exposed ports of one sandbox as the port proxy reads them: auth
// settings and traffic counters, shared between the sandbox's port-forward actors (which own
// them) and the proxy (which counts into them). No CAF, no Beast: the proxy's hot path never
// sends an actor message, it reads this table and bumps atomics.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

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
  // Something the proxy holds open into the sandbox that must be cut when it goes away (a
  // direct TCP connection; the agent's own streams end with the agent connection).
  struct closable {
    virtual ~closable() = default;
    virtual void close_now() = 0;
  };

  // Every exposure, and the version it is as of (read the version first: a change in between
  // only makes the copy look older than it is, and the reader then copies again).
  std::map<uint16_t, std::shared_ptr<const exposure>> exposures() const {
    std::lock_guard lk(mu_);
    return by_port_;
  }
  // Bumped by every change to the exposures (and by close). The port proxy keeps a copy per
  // I/O thread and checks it with this one load per request: no lock, no written cache line.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  void put(std::shared_ptr<const exposure> e) {
    std::lock_guard lk(mu_);
    by_port_[e->port] = std::move(e);
    version_.fetch_add(1, std::memory_order_release);
  }
  void erase(uint16_t port) {
    std::lock_guard lk(mu_);
    by_port_.erase(port);
    version_.fetch_add(1, std::memory_order_release);
  }
  // False if the table is already closed (then the caller must not open anything).
  bool track(std::weak_ptr<closable> c) {
    std::lock_guard lk(mu_);
    if (closed_.load()) return false;
    if (tracked_.size() >= purge_at_) {  // bounded by the live ones: drop the expired
      std::erase_if(tracked_, [](auto& w) { return w.expired(); });
      purge_at_ = std::max<size_t>(64, tracked_.size() * 2);
    }
    tracked_.push_back(std::move(c));
    return true;
  }
  // The sandbox is being destroyed: every exposure is revoked, the proxy stops serving it, and
  // every tracked connection is cut — before the driver frees the sandbox's address.
  void close() {
    std::vector<std::weak_ptr<closable>> cut;
    {
      std::lock_guard lk(mu_);
      by_port_.clear();
      closed_.store(true);
      version_.fetch_add(1, std::memory_order_release);
      cut.swap(tracked_);
    }
    for (auto& w : cut)
      if (auto c = w.lock()) c->close_now();
  }
  bool closed() const { return closed_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mu_;
  std::map<uint16_t, std::shared_ptr<const exposure>> by_port_;
  std::atomic<bool> closed_{false};
  std::vector<std::weak_ptr<closable>> tracked_;
  size_t purge_at_ = 64;
  alignas(64) std::atomic<uint64_t> version_{0};  // its own cache line: the lock's writes do not touch it
};

}  // namespace warren::actors
