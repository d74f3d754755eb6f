// net/e2b/gateway.hpp — E2B compatibility (docs/guides/e2b-compat.md): E2B's REST control plane
// and its in-sandbox daemon's API (envd: Connect-JSON process and filesystem services, /files)
// served on Warren's own listener, translated onto Warren's actors, agent and port proxy. E2B's
// unmodified SDK works against a node with E2B_API_URL / E2B_SANDBOX_URL pointed at it.
#pragma once

#include <memory>
#include <string>

#include "actors/node_api.hpp"
#include "net/auth/key_registry.hpp"
#include "net/http_types.hpp"
#include "net/port_proxy.hpp"

namespace warren::net::e2b {

// What the SDK is told the sandbox's envd is: every feature the SDK gates on a version up to
// 0.6.4 is served (stdin 0.3.0, default user 0.4.0, closeStdin 0.5.2, octet-stream upload 0.5.7,
// file metadata 0.6.2, watch includeEntry 0.6.3 and allowNetworkMounts 0.6.4).
inline constexpr const char* envd_version = "0.6.4";
inline constexpr uint16_t envd_port = 49983;

struct options {
  std::string default_template = "base";  // the SDK's default templateID → image base:latest
  std::string node_id;
};

class gateway {
 public:
  gateway(std::shared_ptr<actors::node_api> node, auth::key_registry& keys, std::shared_ptr<port_proxy> proxy,
          options opts);
  ~gateway();
  // Takes the exchange if it is E2B traffic — the control plane (/v2/sandboxes, /sandboxes/…,
  // X-API-KEY) or envd (E2b-Sandbox-Id/E2b-Sandbox-Port headers, or a 49983-<id>.<domain>
  // host) — and answers it; else false.
  bool handle(const exchange_ptr& ex);

  struct state;

 private:
  std::shared_ptr<state> st_;
};

}  // namespace warren::net::e2b
