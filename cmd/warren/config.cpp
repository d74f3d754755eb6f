// cmd/warren/config.cpp — option registration and the three-layer load.
#include "cmd/warren/config.hpp"

#include <caf/config_option_adder.hpp>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

#include "cmd/warren/single_node_ini.hpp"  // generated from cluster-configs/single-node.ini

namespace warren::cmd {

warren_config::warren_config() {
  caf::config_option_adder{custom_options_, "global"}
      .add(data_dir, "data-dir", "data directory (RocksDB, images, sandboxes, admin.key)")
      .add(listen, "listen", "HOST:PORT of the front door")
      .add(node_id, "node-id", "this node's id")
      .add(region, "region", "region part of API keys ([a-z0-9]+)")
      .add(tls_cert, "tls-cert", "PEM certificate chain; TLS when set with tls-key")
      .add(tls_key, "tls-key", "PEM private key")
      .add(max_header_bytes, "max-header-bytes", "largest accepted request header block")
      .add(max_body_bytes, "max-body-bytes", "largest accepted JSON request body")
      .add(io_threads, "io-threads", "front door I/O threads")
      .add(drain_timeout_ms, "drain-timeout-ms", "how long SIGTERM waits for in-flight requests")
      .add(idle_timeout_s, "idle-timeout", "seconds a client connection may wait for (or send) its next request head")
      .add(default_image, "default-image", "image of sandboxes created without one")
      .add(public_domain, "public-domain", "domain of sandbox port URLs (default localhost:<api port>)")
      .add(public_scheme, "public-scheme", "scheme of sandbox port URLs (default http, https with TLS)")
      .add(proxy_loopback, "proxy-loopback",
           "how the port proxy reaches a sandbox's servers: netns (its loopback from a socket in the sandbox's "
           "network, then its address) or agent (its address, then through its agent, as for microVMs)");
  caf::config_option_adder{custom_options_, "images"}.add(
      auto_pull, "auto_pull", "a create of an image the node does not have pulls it from its registry first");
  caf::config_option_adder{custom_options_, "egress"}
      .add(egress_dns, "dns", "upstream DNS resolvers of the egress proxy and forwarder (default: /etc/resolv.conf's)")
      .add(egress_upstream_ca, "upstream_ca", "PEM CA the egress proxy trusts for upstream TLS besides the host's store")
      .add(egress_proxy_port, "proxy_port", "port of the transparent egress proxy (0: any free port)")
      .add(egress_dns_port, "dns_port", "port of the per-sandbox DNS forwarder (0: any free port)");
}

std::string default_data_dir() {
  if (geteuid() == 0) return "/var/lib/warren";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/tmp") + "/.local/share/warren";
}

std::string warren_config::load(std::vector<std::string> args) {
  static const std::set<std::string> valued = {
      "--data-dir", "--listen", "--node-id", "--region", "--tls-cert", "--tls-key",
      "--max-header-bytes", "--max-body-bytes", "--io-threads", "--drain-timeout-ms", "--idle-timeout",
      "--default-image", "--public-domain", "--public-scheme", "--proxy-loopback", "--config"};
  std::vector<std::string> norm;
  std::string config_file;
  for (size_t i = 0; i < args.size(); ++i) {
    auto a = args[i];
    if (valued.count(a)) {
      if (i + 1 >= args.size()) return a + " needs a value";
      a += "=" + args[++i];
    }
    if (a.rfind("--config=", 0) == 0) {
      config_file = a.substr(9);
      continue;
    }
    norm.push_back(a);
  }
  std::string ini = embedded_single_node_ini;
  if (!config_file.empty()) {
    std::ifstream f(config_file);
    if (!f) return "cannot read config file " + config_file;
    std::stringstream ss;
    ss << f.rdbuf();
    ini += "\n" + ss.str();
  }
  std::istringstream in(ini);
  if (auto err = parse(norm, in)) return "bad configuration: " + caf::to_string(err);
  if (!remainder.empty()) return "unexpected argument: " + remainder.front();
  if (proxy_loopback != "netns" && proxy_loopback != "agent")
    return "proxy-loopback must be netns or agent, not \"" + proxy_loopback + "\"";
  if (data_dir.empty()) data_dir = default_data_dir();
  return "";
}

}  // namespace warren::cmd
