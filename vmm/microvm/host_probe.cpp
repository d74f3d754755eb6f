// vmm/microvm/host_probe.cpp — the microvm capability report. `available` stays false until the
// driver exists (docs/design/microvm.md); the rest tells an operator what the host already has.
#include "vmm/microvm/host_probe.hpp"

#include <unistd.h>

namespace warren::vmm::microvm {

nlohmann::json probe_host(accel_mode mode, const std::string& root) {
  std::string r = root;
  while (!r.empty() && r.back() == '/') r.pop_back();
  const bool qemu = ::access((r + "/usr/bin/qemu-system-x86_64").c_str(), X_OK) == 0;
  const bool firmware = ::access((r + "/usr/share/qemu/qboot.rom").c_str(), R_OK) == 0;
  std::string reason = "the microvm driver is not built yet (only its foundations: docs/design/microvm.md)";
  std::string lacks;
  if (!qemu) lacks += "qemu-system-x86_64";
  if (!firmware) lacks += std::string(lacks.empty() ? "" : " and ") + "/usr/share/qemu/qboot.rom";
  if (!lacks.empty()) reason += "; this host also lacks " + lacks + " (scripts/install-deps.sh installs them)";
  nlohmann::json out = {{"available", false}, {"reason", reason}, {"qemu", qemu}, {"firmware", firmware}};
  auto accel = probe_accel(mode, root);
  if (accel) {
    out["accel"] = accel->accel;
    out["accel_reason"] = accel->reason;
  } else {
    out["accel"] = nullptr;
    out["accel_reason"] = accel.err().message;
  }
  return out;
}

}  // namespace warren::vmm::microvm
