// vmm/jail/host_probe.cpp — feature detection for capabilities(). Reads /proc and runs
// `criu --version` at most once; changes nothing.
#include "vmm/jail/host_probe.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <regex>

#include "vmm/jail/host_command.hpp"
#include "vmm/jail/host_file.hpp"

namespace warren::vmm::jail {
namespace {

bool has_fs(const std::string& filesystems, const std::string& name) {
  return std::regex_search(filesystems, std::regex("\\s" + name + "\\n"));
}

std::string find_tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/", "/usr/local/sbin/", "/usr/local/bin/"}) {
    std::string p = dir + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

bool kernel_at_least(int major, int minor) {
  utsname u{};
  if (uname(&u) != 0) return false;
  int a = 0, b = 0;
  if (sscanf(u.release, "%d.%d", &a, &b) != 2) return false;
  return a > major || (a == major && b >= minor);
}

}  // namespace

std::optional<std::pair<int, int>> parse_criu_version(const std::string& text) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("Version:\\s*(\\d+)\\.(\\d+)"))) return std::nullopt;
  return std::make_pair(std::stoi(m[1]), std::stoi(m[2]));
}

nlohmann::json probe_host(const jail_config& cfg, const cgroup_layout& cg) {
  std::string filesystems = read_file("/proc/filesystems").value_or("");
  bool userns = read_u64("/proc/sys/user/max_user_namespaces").value_or(0) > 0;
  bool overlay = has_fs(filesystems, "overlay");
  // Disk cap = one loop-mounted ext4 per sandbox (XFS/ext4 quotas are compiled out here).
  bool disk = has_fs(filesystems, "ext4") && !find_tool("mkfs.ext4").empty() &&
              access("/dev/loop-control", R_OK | W_OK) == 0;
  bool idmap = kernel_at_least(5, 19);  // overlayfs over idmapped lower layers
  bool nft = !find_tool("nft").empty();
  bool agent = access(cfg.agent_path.c_str(), X_OK) == 0;
  bool root = geteuid() == 0;

  nlohmann::json criu = {{"present", false}};
  if (auto path = find_tool("criu"); !path.empty()) {
    auto v = parse_criu_version(run_command({path, "--version"}).output);
    criu = {{"present", true}, {"path", path}};
    if (v) criu["version"] = std::to_string(v->first) + "." + std::to_string(v->second);
    criu["usable"] = v && (v->first > 4 || (v->first == 4 && v->second >= 1));
  }

  std::string reason;
  if (!root) reason = "the jail driver needs root";
  else if (!userns) reason = "user namespaces are disabled (user.max_user_namespaces = 0)";
  else if (!overlay) reason = "overlayfs is not available";
  else if (!idmap) reason = "kernel < 5.19: no overlayfs over idmapped mounts";
  else if (cg.kind == cgroup_layout::mode::none) reason = cg.reason;
  else if (!disk) reason = "the disk cap needs ext4, mkfs.ext4 and /dev/loop-control";
  else if (!nft) reason = "nft (nftables) is not installed";
  else if (!agent) reason = "agent binary not found at " + cfg.agent_path;

  nlohmann::json j = {{"available", reason.empty()},
                      {"fork_memory", false},
                      {"hibernate_memory", false},
                      {"hibernate_frees_memory", false},
                      {"cgroups", cg.mode_name()},
                      {"disk_quota", disk ? "ext4-loop" : "none"},
                      {"userns", userns},
                      {"id_mapping", "per-sandbox range, idmapped image mount"},
                      {"overlay", overlay},
                      {"nftables", nft},
                      {"network_profiles", {"default", "internet", "locked-down"}},
                      {"criu", criu}};
  // Memory-state fork/hibernate would need CRIU ≥ 4.1 and is not implemented by this driver
  // yet: say so rather than advertise it.
  j["memory_state_reason"] = criu.value("usable", false)
                                 ? "CRIU is usable but the jail driver does not checkpoint memory yet"
                                 : "needs CRIU >= 4.1 on the host";
  if (!reason.empty()) j["reason"] = reason;
  return j;
}

}  // namespace warren::vmm::jail
