// vmm/microvm/accel_probe.hpp — chooses how QEMU runs guest code (KVM or TCG) on this host and
// says why. Reads files only; never starts QEMU or loads a module.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace warren::vmm::microvm {

// The config key `microvm.accel`: "auto" picks, "kvm"/"tcg" force one.
enum class accel_mode { automatic, kvm, tcg };
std::optional<accel_mode> parse_accel_mode(std::string_view text);

struct accel_choice {
  std::string accel;   // "kvm" or "tcg": QEMU's `-accel` value
  std::string reason;  // one sentence for /v1/info and the logs
};

// Decides for the host whose /dev, /proc and /sys lie under `root` ("/" in production; tests pass
// a directory they built). Forcing "kvm" where /dev/kvm cannot be opened is an `unavailable`
// error naming why; "auto" never fails.
expected<accel_choice> probe_accel(accel_mode mode, const std::string& root = "/");

}  // namespace warren::vmm::microvm
