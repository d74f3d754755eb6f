// vmm/driver.hpp — the isolation driver interface (jail, microvm). Small on purpose: actors and
// net depend on this header, never on a driver's internals. Driver calls block (mounts, clone,
// QEMU start) and are made from a worker thread, never from a CAF scheduler or Beast thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.hpp"

namespace warren::vmm {

// The firewall half of a sandbox's egress policy (net/egress/policy.hpp decides the same way for
// what the egress proxy and DNS forwarder see). Plain data, validated before it gets here.
struct egress_rules {
  std::string profile = "default";               // default | internet | locked-down
  std::vector<std::string> allow_cidrs, deny_cidrs;  // normalized CIDRs, IPv4 and IPv6 mixed
  bool allow_list = false;    // an allow list exists: whatever it does not allow is refused
  bool redirect_web = false;  // TCP 80/443 go to the node's egress proxy (domain rules, credentials)
  bool redirect_dns = false;  // DNS (53) goes to the node's DNS forwarder (any allow/deny rule)
};

// What the node asks a driver to build. Plain data: it is also what re-adoption rebuilds from.
struct sandbox_spec {
  std::string id;               // 16 lowercase hex; also the hostname inside
  std::string image;            // "debian:bookworm"
  std::string image_rootfs;     // absolute host path of the read-only image root
  int vcpus = 1;
  int mem_mib = 1024;
  int disk_mib = 10240;
  std::string network_profile = "default";
  std::map<std::string, std::string> env;  // default env of every process in the sandbox
  egress_rules egress;
};

// A live sandbox as the driver knows it. `driver_state` is opaque JSON text the driver can
// adopt from after a daemon restart; the node stores it in the sandbox record.
struct instance {
  std::string id;
  std::string agent_socket;  // host path of the agent's unix socket
  std::string driver_state;  // opaque to everyone but the driver
  // IPv4 address the host reaches the sandbox's own network on (the port proxy connects there
  // directly); empty when only the agent's socket leads in.
  std::string net_addr;
};

// Measured, not estimated (cgroup accounting, scratch usage).
struct usage {
  uint64_t cpu_ms = 0;
  uint64_t mem_peak_bytes = 0;
  uint64_t disk_used_bytes = 0;
  uint64_t mem_current_bytes = 0;
  uint64_t cpu_usage_ns = 0;  // cumulative, for idle detection (delta between samples)
};

class driver {
 public:
  virtual ~driver() = default;
  virtual std::string name() const = 0;

  // What this driver can do on this host, detected at start (API.md /v1/info "drivers").
  // Must contain at least "available" (bool) and, when false, "reason" (string).
  virtual nlohmann::json capabilities() const = 0;

  // Builds and starts a sandbox; returns once its agent accepts connections.
  virtual expected<instance> create(const sandbox_spec& spec) = 0;

  // Re-attaches to a sandbox that survived a daemon restart. not_found if it is gone (the
  // caller then calls cleanup and marks it lost).
  virtual expected<instance> adopt(const sandbox_spec& spec, const std::string& driver_state) = 0;

  virtual expected<usage> stats(const instance& inst) = 0;

  // A descriptor of the sandbox's own network namespace, for the port proxy to reach servers
  // bound to the sandbox's loopback with no agent in between (the caller closes it). -1 when
  // the driver has none the host can enter (a VM), or the sandbox is gone.
  virtual int open_netns(const instance&) { return -1; }

  // --- Egress (API.md Networking). A driver without a firewall answers unavailable.
  // Replaces the sandbox's egress rules; new connections see them at once.
  virtual status set_egress(const instance& inst, const egress_rules&) { return cannot("set egress rules", inst.id); }
  // Lets the sandbox reach these addresses for ttl_s seconds under an allow list: the answers the
  // node's DNS forwarder gave it for a name an allow domain matches.
  virtual status allow_learned(const instance& inst, const std::vector<std::string>& addrs, uint32_t ttl_s) {
    (void)addrs, (void)ttl_s;
    return cannot("learn egress addresses", inst.id);
  }
  // What the firewall refused, JSON text: {"count": N, "recent": [{"dest": "ip:port", "at": RFC 3339}]}.
  virtual expected<std::string> egress_refusals(const instance& inst) { return cannot("count refusals", inst.id); }

  // The firewall's refusal counters of every sandbox it holds rules for (id → count).
  virtual std::map<std::string, uint64_t> egress_refusal_counts() { return {}; }

  // Kills every process, releases every host resource; returns the final usage figures.
  virtual expected<usage> destroy(const instance& inst) = 0;

  // Releases what a lost sandbox left behind (mounts, cgroups, netns, scratch). Idempotent.
  virtual void cleanup(const std::string& id, const std::string& driver_state) = 0;

  // --- Snapshots (docs/design/snapshots.md). A driver that cannot answers unavailable; what it
  // can is also said in capabilities() ("snapshots", "fork_memory", "hibernate_memory", …).

  // Stops every process of the sandbox where it stands / lets it go on (hibernate, resume).
  virtual status freeze(const instance& inst) { return cannot("hibernate", inst.id); }
  virtual status thaw(const instance& inst) { return cannot("resume", inst.id); }

  // The saved state of a sandbox, in a directory of its own.
  struct saved_state {
    std::string meta;         // opaque to all but this driver; restore() gets it back
    uint64_t size_bytes = 0;  // what the saved state occupies on disk
  };
  // Saves the sandbox's state into `dir` (exists, empty) while the sandbox keeps running.
  virtual expected<saved_state> save(const instance& inst, const std::string& dir) {
    (void)dir;
    return cannot("save", inst.id);
  }
  // Builds and starts a new sandbox `spec` from a state save() wrote into `dir`. The directory
  // is only read: one saved state serves any number of restores.
  virtual expected<instance> restore(const sandbox_spec& spec, const std::string& dir, const std::string& meta) {
    (void)dir, (void)meta;
    return cannot("restore", spec.id);
  }

 protected:
  error cannot(const std::string& what, const std::string& id) const {
    return make_error(errc::unavailable, "the " + name() + " driver cannot " + what + " (sandbox " + id + ")");
  }
};

}  // namespace warren::vmm
