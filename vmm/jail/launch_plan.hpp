// vmm/jail/launch_plan.hpp — everything the __jail-init helper needs to build one sandbox, and
// the driver_state a sandbox is re-adopted from. Both are JSON; neither holds an fd or pointer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace warren::vmm::jail {

// Sent to the helper on its stdin. The listening agent socket arrives as fd 3.
struct launch_plan {
  std::string id;
  std::string image_rootfs;  // read-only lower layer (owned by real root on disk)
  std::string run_dir;       // <data_dir>/sandboxes/<id>: mount points, agent.sock, agent.log
  std::string upper_dir;     // on the XFS scratch, owned by the sandbox's root
  std::string work_dir;
  uint32_t uid_base = 0;
  uint32_t uid_count = 65536;
  std::vector<std::string> cgroup_dirs;  // the helper joins each before forking the jail
  std::string host_if;                   // host end of the veth; the guest end is eth0
  std::string host_addr, guest_addr;     // dotted quads
  int prefix = 30;
  std::vector<std::string> nameservers;
  std::map<std::string, std::string> env;
  std::string agent_path;
  uint64_t tmp_size_bytes = 64ull << 20;
};

std::string encode(const launch_plan& p);
std::optional<launch_plan> decode_launch_plan(const std::string& json);

// The opaque driver_state of API.md: what adopt/destroy/cleanup need after a restart.
struct jail_state {
  uint32_t slot = 0;
  int init_pid = 0;
  uint64_t init_start_time = 0;  // /proc/<pid>/stat field 22: tells a reused pid from ours
  std::string host_if;
  std::string guest_addr;
  std::string network_profile;
  std::vector<std::string> cgroup_dirs;
  uint64_t scratch_baseline = 0;  // bytes an empty scratch disk already uses
};

std::string encode(const jail_state& s);
std::optional<jail_state> decode_jail_state(const std::string& json);

// The helper's one-line answer on its stdout.
struct launch_result {
  bool ok = false;
  int init_pid = 0;
  std::string step;  // failing step ("pivot_root") when !ok
  int err = 0;       // errno of that step
  std::string detail;
};

std::string encode(const launch_result& r);
std::optional<launch_result> decode_launch_result(const std::string& json);

// Veth host names carry the profile so nftables matches them by prefix ("wjd*" = default)
// and no per-sandbox rule is ever written: wj + d|i|l + the first 12 hex of the id (15 chars).
std::optional<std::string> host_if_name(const std::string& id, const std::string& profile);

bool valid_sandbox_id(const std::string& id);

}  // namespace warren::vmm::jail
