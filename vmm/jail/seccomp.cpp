// vmm/jail/seccomp.cpp — caps + seccomp for the sandbox's PID 1 (inherited by everything the
// agent starts). Runs after pivot_root: the filter denies mount and pivot_root for good.
#include "vmm/jail/seccomp.hpp"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace warren::vmm::jail {
namespace {

// What root inside the sandbox may still do: Docker's default capability set (moby
// oci/caps/defaults.go). Notably absent: SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_TIME.
constexpr int kept_caps[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE,     CAP_FSETID,    CAP_FOWNER,
                             CAP_MKNOD,  CAP_NET_RAW,          CAP_SETGID,    CAP_SETUID,
                             CAP_SETFCAP, CAP_SETPCAP,         CAP_NET_BIND_SERVICE,
                             CAP_SYS_CHROOT, CAP_KILL,         CAP_AUDIT_WRITE};

const char* const denied[] = {
    "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "kexec_load", "kexec_file_load", "bpf", "perf_event_open",
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "ptrace", "process_vm_readv", "process_vm_writev", "open_by_handle_at", "name_to_handle_at",
    "userfaultfd", "swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog", "iopl", "ioperm",
    "setns", "lookup_dcookie", "vhangup", "nfsservctl", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "fanotify_init", "uselib", "_sysctl", "kcmp", "pidfd_getfd", nullptr};

bool kept(int cap) {
  for (int c : kept_caps)
    if (c == cap) return true;
  return false;
}

}  // namespace

const char* const* denied_syscalls() { return denied; }

int drop_capabilities() {
  // Probe with CAPBSET_READ rather than trusting CAP_LAST_CAP: the kernel may know more caps.
  for (int c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; ++c)
    if (!kept(c) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) return -errno;
  // Root's capabilities after execve are the bounding set (capabilities(7), "Capabilities and
  // execution of programs by root"); also trim the current sets and ambient now.
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  for (int c : kept_caps) {
    d[c / 32].effective |= 1u << (c % 32);
    d[c / 32].permitted |= 1u << (c % 32);
  }
  if (syscall(SYS_capset, &h, d) != 0) return -errno;
  return 0;
}

int install_seccomp() {
  // No no_new_privs: setuid programs of the image (sudo, su) work inside, as in Docker. That
  // gives nothing a sandbox's root lacks: the filter and the bounding set bind every process of
  // the sandbox whatever its uid. Loading a filter without no_new_privs needs CAP_SYS_ADMIN in
  // the sandbox's user namespace, so this runs before drop_capabilities().
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return -ENOMEM;
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);  // libseccomp would set it by default
  for (const char* const* n = denied; *n && rc == 0; ++n) {
    int nr = seccomp_syscall_resolve_name(*n);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
  }
  // No nested user namespaces: they would give back every capability dropped above.
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
  // clone3 passes flags in a struct seccomp cannot read: ENOSYS makes libc fall back to clone.
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  return rc;
}

}  // namespace warren::vmm::jail
