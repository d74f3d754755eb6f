// net/port_upstream.cpp — direct-or-agent upstream connections of the port proxy
// (port_upstream.hpp). Writes made before the route is decided are held here, so a refused
// direct connect falls back to the next path (loopback, the sandbox's address, the agent)
// without losing or reordering a byte.
#include "net/port_upstream.hpp"

#include <array>
#include <atomic>
#include <bitset>
#include <iterator>
#include <vector>

#include "net/tcp_upstream.hpp"
#include "vmm/agent/client.hpp"

namespace warren::net {

bool direct_routes::worth_trying(const std::string& key) {
  std::lock_guard lk(mu_);
  auto it = refused_at_.find(key);
  if (it == refused_at_.end()) return true;
  if (std::chrono::steady_clock::now() - it->second < memory_) return false;
  refused_at_.erase(it);
  return true;
}

void direct_routes::refused(const std::string& key) {
  std::lock_guard lk(mu_);
  auto now = std::chrono::steady_clock::now();
  if (refused_at_.size() > 4096)  // bounded: forget what has expired
    std::erase_if(refused_at_, [&](auto& kv) { return now - kv.second >= memory_; });
  refused_at_[key] = now;
}

namespace {

// Upstream connections opened, by the path they took (port_upstream_metrics_text).
enum class path { address, loopback, agent };
std::array<std::atomic<uint64_t>, 3> opened_by_path{};
void count(path p) { opened_by_path[static_cast<size_t>(p)].fetch_add(1, std::memory_order_relaxed); }

// The paths into a sandbox, in the order tried. Its loopback first, from a socket made in its
// network namespace: that reaches a server bound to 0.0.0.0 as well as one bound to 127.0.0.1
// (Vite's and Jupyter's default), and skips the veth, conntrack and nftables; IPv4, then IPv6
// (Node resolves "localhost" to ::1), as the agent does. Then the sandbox's address (a server
// bound to that address only, or a sandbox without a namespace the host can enter); the agent
// last.
enum class route : uint8_t { loopback_v4, loopback_v6, address, agent };
constexpr const char* loopbacks[] = {"127.0.0.1", "::1"};
route after(route r) { return static_cast<route>(static_cast<uint8_t>(r) + 1); }
bool on_loopback(route r) { return r == route::loopback_v4 || r == route::loopback_v6; }

class either_upstream final : public port_upstream,
                              public actors::port_table::closable,
                              public std::enable_shared_from_this<either_upstream> {
 public:
  either_upstream(const port_upstream_env& env, const actors::sandbox_link& link, uint16_t port,
                  port_upstream_callbacks cb)
      : agent_(link.agent), addr_(link.net_addr), netns_(env.loopback_via_agent ? nullptr : link.netns), port_(port),
        key_(link.id + ":" + std::to_string(port)), routes_(env.routes), connect_timeout_(env.connect_timeout),
        cb_(std::move(cb)) {}

  // The first path that accepts (see route). A port whose first path refused lately (a server
  // bound to the sandbox's address only, or, without a namespace, to its loopback only) starts
  // at the next one.
  void start(boost::asio::io_context* io) override {
    std::unique_lock<std::recursive_mutex> lk(mu_);
    if (cancelled_ || started_) return;
    started_ = true;
    io_ = io;
    bool skip_first = routes_ && !routes_->worth_trying(key_);
    if (try_from(skip_first ? (netns_ ? route::address : route::agent) : route::loopback_v4)) return;
    use_agent(lk);
  }

  void write(std::string data, std::function<void(status)> done) override {
    std::unique_lock<std::recursive_mutex> lk(mu_);
    if (!decided_) return pending_.push_back({std::move(data), std::move(done)});
    if (tcp_) return tcp_->write(std::move(data), std::move(done));
    if (ag_) return ag_->write(std::move(data), std::move(done));
    lk.unlock();
    if (done) done(make_error(errc::bad_gateway, "the connection is closed"));
  }

  void shutdown_write() override {
    std::lock_guard<std::recursive_mutex> lk(mu_);
    shut_ = true;
    if (!decided_) return;
    if (tcp_) tcp_->shutdown_write();
    if (ag_) ag_->shutdown_write();
  }

  void pause_output() override {
    std::lock_guard<std::recursive_mutex> lk(mu_);
    paused_ = true;
    if (tcp_) tcp_->pause_output();
    if (ag_) ag_->pause_output();
  }

  void resume_output() override {
    std::lock_guard<std::recursive_mutex> lk(mu_);
    paused_ = false;
    if (tcp_) tcp_->resume_output();
    if (ag_) ag_->resume_output();
  }

  void cancel() override {
    std::lock_guard<std::recursive_mutex> lk(mu_);
    cancelled_ = closed_ = true;
    pending_.clear();
    if (tcp_) tcp_->cancel();
    if (ag_) ag_->cancel();
  }

  bool preferred() const override {
    std::lock_guard<std::recursive_mutex> lk(mu_);
    return decided_ && tcp_ != nullptr && (netns_ ? on_loopback(route_) : route_ == route::address);
  }

  // The sandbox is going away: cut the direct connection (the agent's streams end on their own).
  void close_now() override {
    std::lock_guard<std::recursive_mutex> lk(mu_);
    if (closed_) return;
    closed_ = true;
    if (tcp_) tcp_->abort(make_error(errc::bad_gateway, "the sandbox went away"));
  }

 private:
  // Opens a direct connection on the first path from `r` on that this sandbox has; false when
  // none is left but the agent.
  bool try_from(route r) {
    for (; io_ && r != route::agent; r = after(r)) {
      if (on_loopback(r) ? !netns_ : addr_.empty()) continue;
      route_ = r;
      if (on_loopback(r) ? open_tcp(loopbacks[static_cast<size_t>(r)], netns_->get()) : open_tcp(addr_, -1))
        return true;
      refused_.set(static_cast<size_t>(r));
    }
    route_ = route::agent;
    return false;
  }

  // A direct TCP connection: to `ip` (the sandbox's address), or, with `netns`, to an address
  // in the sandbox's own network.
  bool open_tcp(const std::string& ip, int netns) {
    std::weak_ptr<either_upstream> weak = shared_from_this();
    tcp_upstream::callbacks tc;
    tc.on_connected = [weak] {
      if (auto s = weak.lock()) s->direct_connected();
    };
    tc.on_connect_failed = [weak](const error&) {
      if (auto s = weak.lock()) s->direct_failed();
    };
    tc.on_data = cb_.on_data;
    tc.on_eof = cb_.on_eof;
    tc.on_close = cb_.on_close;
    tcp_ = tcp_upstream::open(*io_, ip, port_, std::move(tc), connect_timeout_, netns);
    return tcp_ != nullptr;
  }

  bool refused(route r) const { return refused_.test(static_cast<size_t>(r)); }

  void direct_connected() {
    std::lock_guard<std::recursive_mutex> lk(mu_);
    if (decided_ || !tcp_) return;
    decided_ = true;
    count(on_loopback(route_) ? path::loopback : path::address);
    // Reached on the sandbox's address after both loopbacks refused: remembered, so that the
    // next connections go there first.
    if (route_ == route::address && refused(route::loopback_v4) && refused(route::loopback_v6) && routes_) routes_->refused(key_);
    auto held = std::move(pending_);
    pending_.clear();
    for (auto& w : held) tcp_->write(std::move(w.data), std::move(w.done));
    if (shut_) tcp_->shutdown_write();
  }

  // Refused (nothing listens there) or too slow: the next path.
  void direct_failed() {
    std::unique_lock<std::recursive_mutex> lk(mu_);
    tcp_.reset();
    if (cancelled_) return;
    if (closed_) {
      auto close = cb_.on_close;
      lk.unlock();
      if (close) close(make_error(errc::bad_gateway, "the sandbox went away"));
      return;
    }
    auto failed = route_;
    refused_.set(static_cast<size_t>(failed));
    if (try_from(after(failed))) return;
    use_agent(lk, failed == route::address && !netns_);
  }

  // Through the agent, which connects to 127.0.0.1:<port> inside the sandbox. `after_address`:
  // the sandbox's address refused and the host cannot enter its network. If the agent then gets
  // through, the server listens on loopback only: remembered, so its next connections skip the
  // address. If nothing listens at all (a server still starting), nothing is remembered.
  void use_agent(std::unique_lock<std::recursive_mutex>&, bool after_address = false) {
    agent::port_callbacks pc;
    pc.on_connected = [routes = after_address ? routes_ : nullptr, key = key_] {
      count(path::agent);
      if (routes) routes->refused(key);
    };
    pc.on_data = cb_.on_data;
    pc.on_eof = cb_.on_eof;
    pc.on_close = cb_.on_close;
    auto ag = agent_->connect_port(port_, std::move(pc));
    ag_ = ag;
    decided_ = true;
    auto held = std::move(pending_);
    pending_.clear();
    if (paused_) ag->pause_output();
    for (auto& w : held) ag->write(std::move(w.data), std::move(w.done));
    if (shut_) ag->shutdown_write();
  }

  std::shared_ptr<agent::client> agent_;
  std::string addr_;  // the sandbox's address ("" = agent only)
  std::shared_ptr<const owned_fd> netns_;  // its network namespace (null: none)
  uint16_t port_;
  std::string key_;
  std::shared_ptr<direct_routes> routes_;
  std::chrono::milliseconds connect_timeout_;
  port_upstream_callbacks cb_;

  // Recursive: the agent client runs a call inline when already on its strand, and that may
  // come back here (a failure reported to the relay, which cancels this connection).
  mutable std::recursive_mutex mu_;
  std::shared_ptr<tcp_upstream> tcp_;
  std::shared_ptr<agent::port_stream> ag_;
  std::vector<tcp_upstream::pending_write> pending_;  // until the route is decided
  bool started_ = false, decided_ = false, paused_ = false, shut_ = false, cancelled_ = false, closed_ = false;
  boost::asio::io_context* io_ = nullptr;  // the loop direct connections live on (null: agent only)
  route route_ = route::loopback_v4;        // the path tried last, or taken
  std::bitset<3> refused_;                 // direct paths that refused (by route)
};

}  // namespace

std::string port_upstream_metrics_text() {
  static constexpr const char* names[] = {"address", "loopback", "agent"};
  std::string o =
      "# HELP warren_port_proxy_upstream_connections_total Connections the port proxy opened into sandboxes, "
      "by path: the sandbox's address, its loopback from inside its network namespace, or the agent.\n"
      "# TYPE warren_port_proxy_upstream_connections_total counter\n";
  for (size_t i = 0; i < std::size(names); ++i)
    o += std::string("warren_port_proxy_upstream_connections_total{path=\"") + names[i] + "\"} " +
         std::to_string(opened_by_path[i].load(std::memory_order_relaxed)) + "\n";
  return o;
}

std::shared_ptr<port_upstream> make_port_upstream(const port_upstream_env& env, const actors::sandbox_link& link,
                                                  uint16_t port, port_upstream_callbacks cb) {
  auto u = std::make_shared<either_upstream>(env, link, port, std::move(cb));
  // Tracked before it connects: a sandbox destroyed from here on cuts it before its address
  // can be handed to another sandbox.
  if (link.ports && !link.ports->track(u)) return nullptr;
  return u;
}

}  // namespace warren::net
