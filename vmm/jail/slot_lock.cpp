// vmm/jail/slot_lock.cpp — flock(2)-based host-wide slot claims (slot_lock.hpp).
#include "vmm/jail/slot_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace warren::vmm::jail {

slot_locks::~slot_locks() {
  for (auto& [slot, fd] : fds_) ::close(fd);
}

bool slot_locks::claim(uint32_t slot) {
  std::lock_guard lk(mu_);
  if (fds_.count(slot)) return true;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  auto path = dir_ + "/" + std::to_string(slot) + ".lock";
  // O_CLOEXEC: sandbox processes started by this daemon must not inherit (and so hold) it.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  // Every open() is its own open file description, so this also excludes other drivers in the
  // same process.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  fds_[slot] = fd;
  return true;
}

void slot_locks::release(uint32_t slot) {
  std::lock_guard lk(mu_);
  auto it = fds_.find(slot);
  if (it == fds_.end()) return;
  ::close(it->second);  // drops the flock
  fds_.erase(it);
}

}  // namespace warren::vmm::jail
