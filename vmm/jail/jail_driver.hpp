// vmm/jail/jail_driver.hpp — the `jail` isolation driver (Linux namespaces + cgroups + overlay).
// The only header the rest of Warren includes from vmm/jail/; it never exposes driver internals.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vmm/driver.hpp"

namespace warren::vmm {

struct jail_config {
  std::string data_dir;     // run state under <data_dir>/sandboxes/<id>/, scratch fs, markers
  std::string agent_path;   // host path of the static warren-agent binary
  std::string helper_path = "/proc/self/exe";  // a binary whose main() dispatches __jail-init
  std::string net_pool = "10.201.0.0/16";      // carved into /30s, one per sandbox
  uint32_t uid_base = 0x40000000;              // sandbox k maps 0..65535 -> uid_base + k*65536
  std::string slot_lock_dir = "/run/warren/jail-slots";  // host-wide slot claims (slot_lock.hpp)
  int pids_max = 1024;
  int create_timeout_ms = 15000;
  // Scratch disks kept formatted ahead of time, per recently used disk_mib (0: mkfs inline on
  // every create), and the sizes to fill from the start (API.md's default disk_mib).
  size_t scratch_pool_depth = 2;
  std::vector<uint64_t> scratch_prewarm_mib = {10240};
  // The node's egress services (net/egress/) that redirected traffic goes to: the transparent
  // proxy's TCP port and the DNS forwarder's UDP/TCP port on every veth gateway (0: none).
  uint16_t egress_proxy_port = 0, egress_dns_port = 0;
};

// The driver. Throws nothing; an unusable host is reported through capabilities()/create().
std::unique_ptr<driver> make_jail_driver(const jail_config& cfg);

// The hidden subcommand: the daemon's main() calls this when argv[1] == "__jail-init" and
// returns its result from main. It is the single-threaded helper that builds one sandbox.
int jail_init_main(int argc, char** argv);
inline constexpr const char* jail_init_subcommand = "__jail-init";

}  // namespace warren::vmm
