// core/owned_fd.hpp — a file descriptor closed with its owner (or earlier, by reset).
#pragma once

#include <unistd.h>

namespace warren {

class owned_fd {
 public:
  explicit owned_fd(int fd = -1) : fd_(fd) {}
  ~owned_fd() { reset(); }
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  int get() const { return fd_; }
  // Closes it now (if open); the owner then holds nothing.
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

}  // namespace warren
