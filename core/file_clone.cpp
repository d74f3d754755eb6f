// core/file_clone.cpp — reflink, else extent-by-extent sparse copy. See file_clone.hpp.
#include "core/file_clone.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace warren {
namespace {

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0) ::close(fd);
  }
};

// Copies [off, off+len) with copy_file_range (in-kernel, no user-space buffer).
bool copy_range(int in, int out, off_t off, off_t len, uint64_t& copied) {
  off_t in_off = off, out_off = off;
  while (len > 0) {
    ssize_t n = copy_file_range(in, &in_off, out, &out_off, static_cast<size_t>(len), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    len -= n;
    copied += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

expected<clone_result> clone_file(const std::string& from, const std::string& to) {
  auto fail = [&](const std::string& step) {
    return make_error(errc::internal, "clone " + from + " → " + to + ": " + step + ": " + std::strerror(errno));
  };
  fd_closer in{::open(from.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) return fail("open source");
  struct stat st{};
  if (fstat(in.fd, &st) != 0) return fail("stat source");
  std::string tmp = to + ".part";
  fd_closer out{::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, st.st_mode & 0777)};
  if (out.fd < 0) return fail("create destination");
  clone_result r;
  if (ioctl(out.fd, FICLONE, in.fd) == 0) {
    r.kind = clone_kind::reflink;
  } else {
    if (ftruncate(out.fd, st.st_size) != 0) {
      auto e = fail("size destination");
      unlink(tmp.c_str());
      return e;
    }
    off_t pos = 0;
    while (pos < st.st_size) {
      off_t data = lseek(in.fd, pos, SEEK_DATA);
      if (data < 0) break;  // ENXIO: only a hole is left
      off_t hole = lseek(in.fd, data, SEEK_HOLE);
      if (hole < 0) hole = st.st_size;
      if (!copy_range(in.fd, out.fd, data, hole - data, r.bytes_copied)) {
        auto e = fail("copy");
        unlink(tmp.c_str());
        return e;
      }
      pos = hole;
    }
  }
  if (fsync(out.fd) != 0 || rename(tmp.c_str(), to.c_str()) != 0) {
    auto e = fail("commit destination");
    unlink(tmp.c_str());
    return e;
  }
  return r;
}

bool dir_supports_reflink(const std::string& dir) {
  std::string a = dir + "/.reflink-probe-a", b = dir + "/.reflink-probe-b";
  bool ok = false;
  {
    fd_closer fa{::open(a.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600)};
    fd_closer fb{::open(b.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600)};
    if (fa.fd >= 0 && fb.fd >= 0 && ::write(fa.fd, "x", 1) == 1) ok = ioctl(fb.fd, FICLONE, fa.fd) == 0;
  }
  unlink(a.c_str());
  unlink(b.c_str());
  return ok;
}

uint64_t disk_bytes(const std::string& path) {
  struct stat st{};
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace warren
