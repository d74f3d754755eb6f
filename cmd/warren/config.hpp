// cmd/warren/config.hpp — the daemon's configuration: CAF's actor_system_config with Warren's
// options in the "global" group, read from the embedded single-node INI, then --config FILE,
// then flags. `--flag VALUE` is accepted as well as CAF's `--flag=VALUE`.
#pragma once

#include <caf/actor_system_config.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace warren::cmd {

struct warren_config : caf::actor_system_config {
  std::string data_dir;
  std::string listen = "127.0.0.1:7070";
  std::string node_id = "n1";
  std::string region = "local";
  std::string tls_cert, tls_key;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 16 * 1024 * 1024;
  size_t io_threads = 2;
  size_t drain_timeout_ms = 10000;
  size_t idle_timeout_s = 75;  // a client connection waiting this long for its next request is closed
  std::string default_image = "debian:bookworm";
  std::string public_domain;  // "" = localhost:<api port>
  std::string public_scheme;  // "" = https with TLS, else http
  std::string proxy_loopback = "netns";  // or "agent" (the microVM path; for tests)
  bool auto_pull = false;  // [images] auto_pull: a create of a missing image pulls it first
  // [egress]: the node's egress proxy and DNS forwarder (net/egress/service.hpp).
  std::vector<std::string> egress_dns;  // upstream resolvers; empty = /etc/resolv.conf's
  std::string egress_upstream_ca;       // a CA the proxy trusts for upstream TLS, besides the host's
  uint16_t egress_proxy_port = 0, egress_dns_port = 0;  // 0 = any free port

  warren_config();

  // Parses args (without the program and subcommand names). Returns an error text, or "".
  std::string load(std::vector<std::string> args);
};

// The data dir to use when none is configured.
std::string default_data_dir();

}  // namespace warren::cmd
