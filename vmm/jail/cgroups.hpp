// vmm/jail/cgroups.hpp — per-sandbox cgroups on a hybrid (v1 controllers + cgroup2 for
// freeze/kill) or pure v2 host: create with limits, measure, kill everything, remove.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace warren::vmm::jail {

struct cgroup_layout {
  enum class mode { none, hybrid, v2 } kind = mode::none;
  // v1 mount points of each controller we use ("" when absent) and the cgroup2 mount.
  std::string cpu, cpuacct, memory, pids, freezer, unified;
  std::string reason;  // why kind == none

  static cgroup_layout detect();  // from /proc/self/mountinfo
  std::string mode_name() const { return kind == mode::v2 ? "v2" : kind == mode::hybrid ? "hybrid" : "none"; }
};

struct cgroup_limits {
  int vcpus = 1;
  uint64_t mem_bytes = 0;
  int pids_max = 1024;
};

struct cgroup_usage {
  uint64_t cpu_ns = 0, mem_peak = 0, mem_current = 0;
};

class sandbox_cgroups {
 public:
  explicit sandbox_cgroups(const cgroup_layout& l) : l_(l) {}

  // The sandbox's directories, one per hierarchy (a process joins by writing each cgroup.procs).
  std::vector<std::string> dirs(const std::string& id) const;
  status create(const std::string& id, const cgroup_limits& lim) const;
  expected<cgroup_usage> usage(const std::vector<std::string>& dirs) const;
  // SIGKILLs every process (cgroup.kill, else freezer + kill) and waits until all are gone.
  status kill_all(const std::vector<std::string>& dirs, int timeout_ms) const;
  void remove(const std::vector<std::string>& dirs) const;  // idempotent; kills first if needed
  // Freezes (true) or thaws (false) every process and waits until the kernel says it is done:
  // cgroup2's cgroup.freeze where the sandbox has a cgroup2 directory (a SIGKILL still ends a
  // frozen task there), else the v1 freezer.
  status set_frozen(const std::vector<std::string>& dirs, bool frozen, int timeout_ms) const;
  bool frozen(const std::vector<std::string>& dirs) const;

 private:
  cgroup_layout l_;
};

}  // namespace warren::vmm::jail
