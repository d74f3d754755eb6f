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
