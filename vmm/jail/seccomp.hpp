// vmm/jail/seccomp.hpp — the last hardening step before the agent is exec'd: capability
// a deny-list seccomp filter, then the capability bounding set. Each returns 0 or -errno.
#pragma once

namespace warren::vmm::jail {

int install_seccomp();     // first: loading it needs CAP_SYS_ADMIN (no no_new_privs: sudo works)
int drop_capabilities();   // keeps Docker's default set (see seccomp.cpp for the list)
const char* const* denied_syscalls();  // nullptr-terminated; for tests and docs

}  // namespace warren::vmm::jail
