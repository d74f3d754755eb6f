// vmm/jail/rootfs.cpp — assembling the sandbox's filesystem view. Never writes the image: the
// lower layer is mounted read-only, and every write lands in the quota'd upper dir.
#include "vmm/jail/rootfs.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

namespace warren::vmm::jail {
namespace {

#define STEP(name, expr)      \
  do {                        \
    if ((expr) < 0) {         \
      *step = name;           \
      return -errno;          \
    }                         \
  } while (0)

int sys_open_tree(int dfd, const char* path, unsigned flags) {
  return static_cast<int>(syscall(SYS_open_tree, dfd, path, flags));
}
int sys_mount_setattr(int dfd, const char* path, unsigned flags, mount_attr* a) {
  return static_cast<int>(syscall(SYS_mount_setattr, dfd, path, flags, a, sizeof *a));
}
int sys_move_mount(int from_dfd, const char* from, int to_dfd, const char* to, unsigned flags) {
  return static_cast<int>(syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags));
}

int mkdir_p(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return 0;
  return -1;
}

// An empty file to bind a host device node onto: mknod is refused in a user namespace, bind
// mounts of the host's nodes are not (what runc does for rootless containers).
int bind_dev(const char* name) {
  std::string target = std::string("dev/") + name;
  int fd = open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) return -1;
  close(fd);
  std::string src = std::string("/dev/") + name;
  return mount(src.c_str(), target.c_str(), nullptr, MS_BIND, nullptr);
}

int write_text(const char* path, const std::string& text) {
  unlink(path);  // the image may ship a symlink here; after pivot_root it cannot escape anyway
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text.data(), text.size());
  close(fd);
  return n == static_cast<ssize_t>(text.size()) ? 0 : -1;
}

}  // namespace

int mount_overlay_root(const launch_plan& p, int userns_fd, const char** step) {
  std::string lower = p.run_dir + "/lower", root = p.run_dir + "/root";
  STEP("mkdir lower", mkdir_p(lower, 0700));
  STEP("mkdir root", mkdir_p(root, 0755));
  int tree = sys_open_tree(AT_FDCWD, p.image_rootfs.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  STEP("open_tree image", tree);
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (sys_mount_setattr(tree, "", AT_EMPTY_PATH, &attr) < 0) {
    int e = errno;
    close(tree);
    *step = "mount_setattr MOUNT_ATTR_IDMAP";
    return -e;
  }
  int rc = sys_move_mount(tree, "", AT_FDCWD, lower.c_str(), MOVE_MOUNT_F_EMPTY_PATH);
  int e = errno;
  close(tree);
  if (rc < 0) {
    *step = "move_mount lower";
    return -e;
  }
  // Overlay over an idmapped lower layer: Linux ≥ 5.19. Mounted by real root, so copy-up and
  // whiteouts use trusted.* xattrs and the upper dir stays out of the sandbox's reach.
  std::string opts = "lowerdir=" + lower + ",upperdir=" + p.upper_dir + ",workdir=" + p.work_dir;
  // Not nosuid: setuid programs of the image (sudo) work inside, where they can only become the
  // sandbox's own root (a uid of its range). The host's mounts of the image and the scratch disk
  // stay nosuid.
  STEP("mount overlay", mount("overlay", root.c_str(), "overlay", MS_NODEV, opts.c_str()));
  return 0;
}

int enter_root(const launch_plan& p, int root_fd, const char** step) {
  // Everything below is relative to the new root, reached through the helper's fd.
  STEP("fchdir root", fchdir(root_fd));
  const std::string root = ".";
  const char* dirs[] = {"/proc", "/dev", "/tmp", "/sys", "/etc", "/root"};
  for (const char* d : dirs) STEP("mkdir rootfs dir", mkdir_p(root + d, 0755));
  STEP("mount proc", mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
  STEP("mount /dev", mount("tmpfs", (root + "/dev").c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC,
                           "mode=755,size=1m,nr_inodes=1024"));
  for (const char* n : {"null", "zero", "full", "random", "urandom", "tty"})
    STEP("bind /dev node", bind_dev(n));
  STEP("mkdir /dev/pts", mkdir_p(root + "/dev/pts", 0755));
  // newinstance: the sandbox's ptys are its own, not the host's (devpts.rst).
  STEP("mount devpts", mount("devpts", (root + "/dev/pts").c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
                             "newinstance,ptmxmode=0666,mode=0620,gid=5"));
  STEP("symlink /dev/ptmx", symlink("pts/ptmx", (root + "/dev/ptmx").c_str()));
  STEP("mkdir /dev/shm", mkdir_p(root + "/dev/shm", 01777));
  STEP("mount /dev/shm", mount("shm", (root + "/dev/shm").c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                               "mode=1777,size=64m"));
  symlink("/proc/self/fd", (root + "/dev/fd").c_str());
  symlink("/proc/self/fd/0", (root + "/dev/stdin").c_str());
  symlink("/proc/self/fd/1", (root + "/dev/stdout").c_str());
  symlink("/proc/self/fd/2", (root + "/dev/stderr").c_str());
  std::string tmp_opts = "mode=1777,size=" + std::to_string(p.tmp_size_bytes);
  STEP("mount /tmp", mount("tmpfs", (root + "/tmp").c_str(), "tmpfs", MS_NOSUID | MS_NODEV, tmp_opts.c_str()));
  // sysfs for tools that read /sys/class/net etc.; read-only, allowed because we own the netns.
  mount("sysfs", (root + "/sys").c_str(), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);

  // pivot_root(".", "."): the old root ends up stacked on "/" and is detached right away
  // (pivot_root(2), NOTES), so no host path stays reachable from the sandbox.
  STEP("pivot_root", static_cast<int>(syscall(SYS_pivot_root, ".", ".")));
  STEP("umount old root", umount2(".", MNT_DETACH));
  STEP("chdir /", chdir("/"));

  std::string hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + p.guest_addr +
                      "\t" + p.id + "\n";
  std::string resolv;
  for (auto& ns : p.nameservers) resolv += "nameserver " + ns + "\n";
  STEP("write /etc/hosts", write_text("/etc/hosts", hosts));
  STEP("write /etc/resolv.conf", write_text("/etc/resolv.conf", resolv));
  STEP("write /etc/hostname", write_text("/etc/hostname", p.id + "\n"));
  return 0;
}

}  // namespace warren::vmm::jail
