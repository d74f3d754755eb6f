// net/port_proxy.hpp — public URLs for sandbox ports (API.md "Public URLs for sandbox ports"):
// Host-based routing, exposure auth, and a streaming HTTP/1.1 reverse proxy onto the agent's
// port streams. It never buffers a whole body and never sends an actor message per chunk.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "actors/node_api.hpp"
#include "core/error.hpp"
#include "net/http_types.hpp"

namespace warren::net {

// The node's public domain and scheme, and the URLs built from them.
struct public_urls {
  std::string domain = "localhost:7070";  // may carry a port
  std::string scheme = "http";

  std::string host(const std::string& id, uint16_t port) const;      // "<port>-<id>.<domain>"
  std::string run_url(const std::string& id, uint16_t port) const;   // ".../sb/p/<port>/"
  std::string port_url(const std::string& id, uint16_t port) const;  // "<scheme>://<host>/"
};

// Where a request to a port host goes.
struct port_target {
  std::string sandbox_id;
  uint16_t port = 0;
  std::string prefix;  // "/sb/p/<port>" on the run<id> host, "" on the <port>-<id> host
  std::string target;  // the request-target inside the sandbox: path and query, verbatim
};

// nullopt: `host` is not a port host (the request is for the API). An error: it is one, but
// the request cannot be routed (run<id> host without /sb/p/<port>/, port 0 or > 65535).
std::optional<expected<port_target>> route_port_host(std::string_view host, std::string_view target,
                                                     std::string_view domain);

// `next` of a browser_url: a path on the same host, nothing a browser could read as another
// origin ("//evil", "/\\evil", "http:", control characters).
bool is_local_redirect(std::string_view next);

// The cookie a browser_url sets for `port` (name only).
std::string exposure_cookie_name(uint16_t port);
// The reserved path (on the port's host) that turns a browser_url's token into the cookie.
inline constexpr std::string_view auth_bootstrap_path = "/__warren/auth";

class port_proxy {
 public:
  struct options {
    public_urls urls;
    // Servers on a sandbox's loopback are reached through its agent even when a socket can be
    // made in its network namespace (the microVM path, kept testable on jails).
    bool loopback_via_agent = false;
    size_t idle_per_port = 64;               // pooled keep-alive connections per sandbox port
    std::chrono::seconds idle_timeout{30};   // a pooled connection unused this long is closed
  };
  port_proxy(std::shared_ptr<actors::node_api> node, options opts);
  ~port_proxy();

  // Takes the exchange if its Host is a port host (then it is answered here) — else false.
  bool handle(const exchange_ptr& ex);
  // Proxies the exchange to a sandbox port named some other way (E2B's E2b-Sandbox-Id and
  // E2b-Sandbox-Port headers), exactly as if it came to that port's host.
  void forward(const exchange_ptr& ex, port_target t);
  const public_urls& urls() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace warren::net
