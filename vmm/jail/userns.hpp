// vmm/jail/userns.hpp — the sandbox's user namespace: its 65536 ids mapped onto the sandbox's
// own unprivileged host range (root inside is an unmapped nobody outside).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace warren::vmm::jail {

// Written by the privileged parent (user_namespaces(7), "Defining user and group ID
// mappings"): a parent with CAP_SETUID/CAP_SETGID in the parent namespace may map any range.
int write_id_maps(pid_t pid, uint32_t host_base, uint32_t count);

// In the child, once mapped: become uid/gid 0 of the namespace with no supplementary groups.
int become_ns_root();

}  // namespace warren::vmm::jail
