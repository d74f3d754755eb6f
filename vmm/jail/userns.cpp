// vmm/jail/userns.cpp — uid_map/gid_map and the switch to namespace root. Stack-only: runs in
// the helper between fork()s.
#include "vmm/jail/userns.hpp"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <unistd.h>

namespace warren::vmm::jail {
namespace {

int write_map(pid_t pid, const char* which, uint32_t base, uint32_t count) {
  char path[64], line[64];
  snprintf(path, sizeof path, "/proc/%d/%s", static_cast<int>(pid), which);
  int n = snprintf(line, sizeof line, "0 %u %u\n", base, count);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = write(fd, line, static_cast<size_t>(n)) == n ? 0 : -errno;
  close(fd);
  return rc;
}

}  // namespace

int write_id_maps(pid_t pid, uint32_t base, uint32_t count) {
  if (int rc = write_map(pid, "uid_map", base, count)) return rc;
  return write_map(pid, "gid_map", base, count);
}

int become_ns_root() {
  if (setresgid(0, 0, 0) != 0) return -errno;
  if (setgroups(0, nullptr) != 0) return -errno;
  if (setresuid(0, 0, 0) != 0) return -errno;
  return 0;
}

}  // namespace warren::vmm::jail
