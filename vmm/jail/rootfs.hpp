// vmm/jail/rootfs.hpp — the sandbox's root: idmapped image + overlay (done by the privileged
// helper inside the sandbox's mount namespace), then /proc, /dev, /tmp and pivot_root (done by
// the sandbox's PID 1). Functions return 0 or -errno and name the failing step in *step.
#pragma once

#include "vmm/jail/launch_plan.hpp"

namespace warren::vmm::jail {

// <run_dir>/lower = the image, idmapped through userns_fd (MOUNT_ATTR_IDMAP) so its real-root
// files appear as the sandbox's root; <run_dir>/root = overlay(lower, upper, work).
int mount_overlay_root(const launch_plan& p, int userns_fd, const char** step);

// Fresh proc, minimal /dev, devpts newinstance, /dev/shm, /tmp; pivot_root into the overlay
// (root_fd, an O_PATH fd the helper opened: the sandbox's root may not be allowed to traverse
// the host's data_dir) and detach the old root; then the per-sandbox /etc files.
int enter_root(const launch_plan& p, int root_fd, const char** step);

}  // namespace warren::vmm::jail
