// vmm/jail/host_probe.hpp — what this host offers the jail driver, detected (never assumed):
// the JSON of /v1/info "drivers.jail".
#pragma once

#include <nlohmann/json.hpp>

#include "vmm/jail/cgroups.hpp"
#include "vmm/jail/jail_driver.hpp"

namespace warren::vmm::jail {

nlohmann::json probe_host(const jail_config& cfg, const cgroup_layout& cg);

// "criu --version" → {major, minor}; nullopt when absent or unparsable.
std::optional<std::pair<int, int>> parse_criu_version(const std::string& text);

}  // namespace warren::vmm::jail
