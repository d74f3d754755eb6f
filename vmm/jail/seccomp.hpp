// vmm/jail/seccomp.hpp — the last hardening step before the agent is exec'd: capability
// bounding set, no_new_privs, and a deny-list seccomp filter. Each returns 0 or -errno.
#pragma once

namespace warren::vmm::jail {

int drop_capabilities();   // keeps Docker's default set (see seccomp.cpp for the list)
int install_seccomp();     // sets no_new_privs too
const char* const* denied_syscalls();  // nullptr-terminated; for tests and docs

}  // namespace warren::vmm::jail
