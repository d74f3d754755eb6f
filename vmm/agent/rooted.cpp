// vmm/agent/rooted.cpp — openat2-based confinement (man 2 openat2). glibc 2.36 has no wrapper,
// so this calls the syscall directly. RESOLVE_IN_ROOT may fail with EAGAIN when a concurrent
// rename races a ".." walk; that is retried, never answered by falling back to openat.
#include "vmm/agent/rooted.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace warren::agent {

std::string split_path::parent() const {
  std::string p;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) p += "/" + parts[i];
  return p.empty() ? "/" : p;
}

bool split(std::string_view path, split_path& out, std::string& code, std::string& why) {
  code = "bad_request";
  if (path.empty() || path[0] != '/') {
    why = "path " + std::string(path) + " is not absolute";
    return false;
  }
  if (path.find('\0') != std::string_view::npos || path.size() >= PATH_MAX) {
    why = "path is not valid";
    return false;
  }
  out.parts.clear();
  std::size_t i = 0;
  while (i < path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    auto c = path.substr(i, j - i);
    if (!c.empty() && c != ".") out.parts.emplace_back(c);
    i = j + 1;
  }
  if (!out.parts.empty() && out.parts.back() == "..") {
    why = "path " + std::string(path) + " ends in ..";
    return false;
  }
  return true;
}

int open_in_root(int root, const std::string& path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0; attempt < 16; ++attempt) {
    long fd = syscall(SYS_openat2, root, path.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != EAGAIN && errno != EINTR) return -errno;
  }
  return -EAGAIN;
}

int mkdir_all(int root, const std::vector<std::string>& parts, std::size_t count, mode_t mode,
              std::string& failed_at, uid_t uid, gid_t gid) {
  std::string prefix;
  for (std::size_t i = 0; i < count; ++i) {
    std::string parent = prefix.empty() ? "/" : prefix;
    prefix += "/" + parts[i];
    int fd = open_in_root(root, prefix, O_PATH | O_DIRECTORY);
    if (fd >= 0) {
      ::close(fd);
      continue;
    }
    failed_at = prefix;
    if (fd != -ENOENT) return fd;
    int pfd = open_in_root(root, parent, O_PATH | O_DIRECTORY);
    if (pfd < 0) return pfd;
    int r = mkdirat(pfd, parts[i].c_str(), mode);
    int err = errno;
    if (r == 0 && (uid != uid_t(-1) || gid != gid_t(-1)) && fchownat(pfd, parts[i].c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
      err = errno;
      r = -1;
    }
    ::close(pfd);
    if (r != 0 && err != EEXIST) return -err;
    fd = open_in_root(root, prefix, O_PATH | O_DIRECTORY);  // e.g. a dangling symlink fails here
    if (fd < 0) return fd;
    ::close(fd);
  }
  return 0;
}

void errno_reply(int err, const std::string& path, std::string& code, std::string& message) {
  switch (err) {
    case ENOENT:
      code = "not_found";
      message = path + " does not exist";
      return;
    case ENOTDIR:
      code = "bad_request";
      message = "a component of " + path + " is not a directory";
      return;
    case EISDIR:
      code = "bad_request";
      message = path + " is a directory";
      return;
    case EEXIST:
      code = "conflict";
      message = path + " already exists";
      return;
    case ENOTEMPTY:
      code = "conflict";
      message = path + " is not empty";
      return;
    case EACCES:
    case EPERM:
      code = "forbidden";
      message = "permission denied: " + path;
      return;
    case ELOOP:
      code = "bad_request";
      message = "too many levels of symbolic links in " + path;
      return;
    case EXDEV:
      code = "bad_request";
      message = path + " escapes the sandbox root";
      return;
    case ENOSPC:
    case EDQUOT:
      code = "payload_too_large";
      message = "no space left writing " + path;
      return;
    default:
      code = "internal";
      message = path + ": " + std::strerror(err);
  }
}

}  // namespace warren::agent
