// vmm/microvm/host_probe.hpp — what this host offers the (not yet built) microvm driver, detected
// from files: the JSON of /v1/info "drivers.microvm". Never starts QEMU.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "vmm/microvm/accel_probe.hpp"

namespace warren::vmm::microvm {

// {available: false, reason, accel, accel_reason, qemu, firmware}: `reason` says the driver is not
// built and names what the host also lacks; `accel` is null when a forced "kvm" cannot be had.
nlohmann::json probe_host(accel_mode mode = accel_mode::automatic, const std::string& root = "/");

}  // namespace warren::vmm::microvm
