// net/port_upstream.hpp — one upstream connection of the port proxy into a sandbox port. It
// goes over TCP to the sandbox's loopback (127.0.0.1, then ::1), from a socket made in its
// network namespace: that reaches a server bound to 0.0.0.0 or to loopback alike, the cheapest
// way in. Then to the sandbox's network address (a server bound to that address only, or a
// sandbox whose network the host cannot enter); through the agent's port stream last (a microVM
// whose server listens on loopback only, or a daemon told not to enter namespaces). The choice
// is made per connection and invisible to the caller. It never connects anywhere but the one
// sandbox it was opened for, and every direct connection is cut when that sandbox goes away.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "actors/sandbox_link.hpp"
#include "core/error.hpp"

namespace boost::asio { class io_context; }

namespace warren::net {

struct port_upstream_callbacks {
  std::function<void(std::string_view)> on_data;
  std::function<void()> on_eof;          // the server shut down its writing half
  std::function<void(status)> on_close;  // once: both halves done (ok) or failed. Nothing
                                         // listening: bad_gateway "... connection refused"
};

class port_upstream {
 public:
  virtual ~port_upstream() = default;
  // Connects; a direct connection runs on `io` (the client connection's event loop; null:
  // through the agent). Writes made before are held and sent once connected. Callbacks may
  // fire (on any thread) from here on, so the caller has everything they touch in place first.
  virtual void start(boost::asio::io_context* io) = 0;
  // `done` fires once the bytes left (or failed): send the next chunk then.
  virtual void write(std::string data, std::function<void(status)> done = {}) = 0;
  virtual void shutdown_write() = 0;  // half-close after queued writes
  virtual void pause_output() = 0;    // backpressure: stop taking the server's bytes
  virtual void resume_output() = 0;
  virtual void cancel() = 0;          // close; no more callbacks
  // On the first path this sandbox has (its loopback; its address when the host cannot enter
  // its network), once decided. Connections on a later path are reused only briefly: the
  // server may rebind meanwhile, and new connections then take the first path.
  virtual bool preferred() const = 0;
};

// Ports whose first path refused lately while a later one accepted (a server bound to the
// sandbox's address only; without a namespace, one bound to loopback only): their next
// connections start at the later path instead of paying a refused connect each time.
// Forgotten after `memory`, so a server that rebinds is found.
class direct_routes {
 public:
  explicit direct_routes(std::chrono::milliseconds memory = std::chrono::seconds(2)) : memory_(memory) {}
  bool worth_trying(const std::string& key);
  void refused(const std::string& key);

 private:
  std::chrono::milliseconds memory_;
  std::mutex mu_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> refused_at_;
};

struct port_upstream_env {
  std::shared_ptr<direct_routes> routes;
  std::chrono::milliseconds connect_timeout{500};
  bool loopback_via_agent = false;  // never a socket in the sandbox's network namespace
};

// A connection to `port` of the link's sandbox, not started yet (see start). Null only if the
// sandbox is already going away (its port table is closed).
// /metrics lines: upstream connections opened, by path (address, loopback, agent).
std::string port_upstream_metrics_text();

std::shared_ptr<port_upstream> make_port_upstream(const port_upstream_env& env, const actors::sandbox_link& link,
                                                  uint16_t port, port_upstream_callbacks cb);

}  // namespace warren::net
