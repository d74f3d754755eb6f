// vmm/jail/host_file.cpp — small-file I/O for kernel interfaces. Not for data files.
#include "vmm/jail/host_file.hpp"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>

namespace warren::vmm::jail {

std::optional<std::string> read_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  int e = errno;
  close(fd);
  if (n < 0) {
    errno = e;
    return std::nullopt;
  }
  return out;
}

std::optional<uint64_t> read_u64(const std::string& path) {
  auto s = read_file(path);
  if (!s || s->empty()) return std::nullopt;
  char* end = nullptr;
  unsigned long long v = strtoull(s->c_str(), &end, 10);
  if (end == s->c_str()) return std::nullopt;
  return v;
}

bool write_file(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = write(fd, value.data(), value.size());
  int e = errno;
  close(fd);
  errno = e;
  return n == static_cast<ssize_t>(value.size());
}

std::string errno_name(int e) {
  const char* n = strerrorname_np(e);
  return n ? n : "errno " + std::to_string(e);
}

}  // namespace warren::vmm::jail
