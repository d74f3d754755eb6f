// vmm/jail/scratch_disk.cpp — sparse file → mkfs.ext4 → loop device (LOOP_CONFIGURE,
// autoclear) → mount. Removal detaches the mount; the loop device frees itself with the last
// reference (the dying sandbox's overlay may still hold one for a moment).
#include "vmm/jail/scratch_disk.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/file_clone.hpp"
#include "vmm/jail/host_command.hpp"
#include "vmm/jail/host_file.hpp"

namespace warren::vmm::jail {
namespace fs = std::filesystem;

bool is_mount_point(const std::string& dir) {
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mi, line)) {
    std::stringstream ss(line);
    std::string id, par, dev, root, mnt;
    ss >> id >> par >> dev >> root >> mnt;
    if (mnt == dir) return true;
  }
  return false;
}

namespace {
expected<uint64_t> fs_used(const std::string& path) {
  struct statvfs sv{};
  if (statvfs(path.c_str(), &sv) != 0) return make_error(errc::not_found, "statvfs " + path + ": " + errno_name(errno));
  return uint64_t(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
}
}  // namespace

scratch_disks::scratch_disks(std::string data_dir, size_t pool_depth, const std::vector<uint64_t>& prewarm_bytes)
    : root_(std::move(data_dir) + "/scratch"),
      pool_([this](uint64_t size) { return format(root_ + "/pool-" + std::to_string(next_pool_image_++) + ".img", size); },
            &scratch_disks::discard, pool_depth) {
  // Pooled disks of a daemon that died are only image files now (their mounts were detached
  // ones, gone with its fds; the loop devices cleared themselves).
  std::error_code ec;
  for (auto& e : fs::directory_iterator(root_, ec))
    if (e.path().filename().string().rfind("pool-", 0) == 0) unlink(e.path().c_str());
  for (uint64_t size : prewarm_bytes) pool_.want(size);
}

status scratch_disks::attach_loop(const std::string& image, std::string& dev, int& dev_fd) {
  int file = open(image.c_str(), O_RDWR | O_CLOEXEC);
  if (file < 0) return make_error(errc::internal, "open " + image + ": " + errno_name(errno));
  std::lock_guard lk(loop_mu_);
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) {
    close(file);
    return make_error(errc::internal, "open /dev/loop-control: " + errno_name(errno));
  }
  status st = make_error(errc::internal, "no free loop device");
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      st = make_error(errc::internal, "LOOP_CTL_GET_FREE: " + errno_name(errno));
      break;
    }
    dev = "/dev/loop" + std::to_string(n);
    dev_fd = open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (dev_fd < 0) continue;
    loop_config cfg{};
    cfg.fd = static_cast<uint32_t>(file);
    // Autoclear: the device detaches itself when its last user (the mount) goes away.
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (ioctl(dev_fd, LOOP_CONFIGURE, &cfg) == 0) {
      st = ok();
      break;
    }
    int e = errno;
    close(dev_fd);
    dev_fd = -1;
    if (e != EBUSY) {  // EBUSY: another process took it between GET_FREE and CONFIGURE
      st = make_error(errc::internal, "LOOP_CONFIGURE " + dev + ": " + errno_name(e));
      break;
    }
  }
  close(ctl);
  close(file);
  return st;
}

expected<pooled_disk> scratch_disks::format(const std::string& img, uint64_t size_bytes) {
  auto fail = [&](const std::string& what, const std::string& why) {
    return make_error(errc::internal, "step scratch " + what + ": " + why);
  };
  std::error_code ec;
  fs::create_directories(root_, ec);
  chmod(root_.c_str(), 0711);
  int fd = open(img.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size_bytes)) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return fail("image", errno_name(e));
  }
  close(fd);
  pooled_disk d{img, -1, size_bytes, 0};
  auto bad = [&](const std::string& what, const std::string& why) {
    discard(d);
    return fail(what, why);
  };
  // No journal (the disk never outlives a reboot), no reserved blocks, lazy inode tables, no
  // resize inode (its reserved GDT blocks were most of the ~4 MiB written; nobody grows these).
  auto r = run_command({access("/usr/sbin/mkfs.ext4", X_OK) == 0 ? "/usr/sbin/mkfs.ext4" : "mkfs.ext4", "-q",
                        "-F", "-m", "0", "-O", "^has_journal,^resize_inode", "-E", "lazy_itable_init=1,nodiscard",
                        img});
  if (r.exit_code != 0) return bad("mkfs.ext4", r.output);
  if (auto st = mount_detached(d); !st) return bad("mount", st.err().message);
  unlinkat(d.mount_fd, "lost+found", AT_REMOVEDIR);
  if (mkdirat(d.mount_fd, "upper", 0755) != 0 || mkdirat(d.mount_fd, "work", 0700) != 0)
    return bad("mkdir upper", errno_name(errno));
  struct statvfs sv{};
  if (fstatvfs(d.mount_fd, &sv) != 0) return bad("statvfs", errno_name(errno));
  d.baseline = uint64_t(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
  return d;
}

status scratch_disks::mount_detached(pooled_disk& d) {
  std::string dev;
  int dev_fd = -1;
  if (auto st = attach_loop(d.image, dev, dev_fd); !st) return st;
  // A detached mount (fsmount): nothing shows in any mount table until create() moves it into
  // place, and a daemon that dies drops it with its fds.
  int fs_fd = fsopen("ext4", FSOPEN_CLOEXEC);
  int rc = fs_fd < 0 ? -1 : fsconfig(fs_fd, FSCONFIG_SET_STRING, "source", dev.c_str(), 0);
  if (rc == 0) rc = fsconfig(fs_fd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0);
  if (rc == 0) d.mount_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOATIME);
  int e = errno;
  if (fs_fd >= 0) close(fs_fd);
  close(dev_fd);  // the mount holds the device now (or, on failure, autoclear frees it)
  if (d.mount_fd < 0) return make_error(errc::internal, dev + ": " + errno_name(e));
  return ok();
}

void scratch_disks::discard(pooled_disk& d) {
  if (d.mount_fd >= 0) close(d.mount_fd);
  d.mount_fd = -1;
  if (!d.image.empty()) unlink(d.image.c_str());
}

expected<uint64_t> scratch_disks::create(const std::string& id, uint64_t size_bytes, uint32_t owner_uid) {
  auto fail = [&](const std::string& what, const std::string& why) {
    return make_error(errc::internal, "sandbox " + id + " step scratch " + what + ": " + why);
  };
  std::string img = image_path(id), dir = mount_dir(id);
  auto ready = pool_.take(size_bytes);
  pooled_disk d;
  if (ready) {
    d = std::move(*ready);
    if (rename(d.image.c_str(), img.c_str()) != 0) {
      int e = errno;
      discard(d);
      return fail("rename pooled image", errno_name(e));
    }
    d.image = img;
  } else {
    auto made = format(img, size_bytes);
    if (!made) return make_error(errc::internal, "sandbox " + id + " " + made.err().message);
    d = std::move(*made);
  }
  auto bad = [&](const std::string& what, int e) {
    discard(d);
    return fail(what, errno_name(e));
  };
  if (fchownat(d.mount_fd, "upper", owner_uid, owner_uid, AT_SYMLINK_NOFOLLOW) != 0) return bad("chown upper", errno);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return bad("mkdir", errno);
  if (move_mount(d.mount_fd, "", AT_FDCWD, dir.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) return bad("move_mount", errno);
  close(d.mount_fd);
  return d.baseline;
}

namespace {
// nftw has no user pointer: the one shift running on this thread.
thread_local struct {
  uint32_t from = 0, to = 0;
  int failed = 0;
} shift;

uint32_t shifted(uint32_t id) {
  return id >= shift.from && id - shift.from < 65536 ? shift.to + (id - shift.from) : id;
}

int shift_one(const char* path, const struct stat* sb, int, FTW*) {
  if (lchown(path, shifted(sb->st_uid), shifted(sb->st_gid)) != 0) {
    shift.failed = errno;
    return 1;
  }
  // chown clears set-user/group-ID bits; a restored file keeps its mode.
  if (S_ISREG(sb->st_mode) && (sb->st_mode & (S_ISUID | S_ISGID)) && chmod(path, sb->st_mode & 07777) != 0) {
    shift.failed = errno;
    return 1;
  }
  return 0;
}
}  // namespace

status scratch_disks::create_from(const std::string& id, const std::string& saved_image, uint32_t owner_uid,
                                  uint32_t from_uid) {
  auto fail = [&](const std::string& what, const std::string& why) {
    return make_error(errc::internal, "sandbox " + id + " step scratch " + what + ": " + why);
  };
  std::error_code ec;
  fs::create_directories(root_, ec);
  std::string img = image_path(id), dir = mount_dir(id);
  auto cl = clone_file(saved_image, img);
  if (!cl) return fail("clone", cl.err().message);
  pooled_disk d{img, -1, 0, 0};
  if (auto st = mount_detached(d); !st) {
    discard(d);
    return fail("mount", st.err().message);
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    int e = errno;
    discard(d);
    return fail("mkdir", errno_name(e));
  }
  if (move_mount(d.mount_fd, "", AT_FDCWD, dir.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    int e = errno;
    discard(d);
    return fail("move_mount", errno_name(e));
  }
  close(d.mount_fd);
  if (from_uid != owner_uid) {
    // Nothing runs on this disk yet: the walk sees a still filesystem. FTW_MOUNT: stay on it.
    shift = {from_uid, owner_uid, 0};
    if (nftw(dir.c_str(), shift_one, 32, FTW_PHYS | FTW_MOUNT) != 0)
      return fail("shift owners", errno_name(shift.failed ? shift.failed : errno));
  }
  return ok();
}

expected<uint64_t> scratch_disks::save_image(const std::string& id, const std::string& dest) {
  std::string dir = mount_dir(id);
  if (!is_mount_point(dir)) return make_error(errc::not_found, "sandbox " + id + ": scratch disk gone");
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error(errc::internal, "sandbox " + id + " open scratch: " + errno_name(errno));
  // FIFREEZE flushes and blocks every write (also the kernel's own, like ext4's lazy inode-table
  // init) until FITHAW: the image file is then a consistent filesystem.
  bool frozen = ioctl(fd, FIFREEZE, 0) == 0;
  if (!frozen) syncfs(fd);
  auto cl = clone_file(image_path(id), dest);
  if (frozen) ioctl(fd, FITHAW, 0);
  close(fd);
  if (!cl) return make_error(errc::internal, "sandbox " + id + " save disk: " + cl.err().message);
  return disk_bytes(dest);
}

expected<uint64_t> scratch_disks::used_bytes(const std::string& id, uint64_t baseline) const {
  if (!is_mount_point(mount_dir(id))) return make_error(errc::not_found, "sandbox " + id + ": scratch disk gone");
  auto u = fs_used(mount_dir(id));
  if (!u) return u;
  return *u > baseline ? *u - baseline : 0;
}

void scratch_disks::remove(const std::string& id) {
  std::string dir = mount_dir(id);
  if (is_mount_point(dir)) umount2(dir.c_str(), MNT_DETACH);
  if (!is_mount_point(dir)) rmdir(dir.c_str());  // never delete below a live mount
  unlink(image_path(id).c_str());
}

}  // namespace warren::vmm::jail
