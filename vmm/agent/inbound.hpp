// vmm/agent/inbound.hpp — host→agent bytes (exec stdin, port bytes) waiting for an fd to take
// them, with the credit accounting that bounds them: the host may only send what was granted,
// and credit is granted back only as bytes leave this buffer. Never grows past its window.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

namespace warren::agent {

class inbound {
 public:
  explicit inbound(uint32_t window) : window_(window), outstanding_(window) {}
  uint32_t window() const { return window_; }
  bool empty() const { return pos_ == buf_.size(); }

  // False when the host sent more than its credit: a protocol violation.
  bool push(std::string_view data) {
    if (data.size() > outstanding_) return false;
    outstanding_ -= static_cast<uint32_t>(data.size());
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    buf_.append(data);
    return true;
  }

  // Writes what the fd takes. Returns false on a hard error (errno set), true otherwise.
  bool write_to(int fd) {
    while (pos_ < buf_.size()) {
      ssize_t n = ::write(fd, buf_.data() + pos_, buf_.size() - pos_);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN;
      }
      pos_ += static_cast<std::size_t>(n);
      drained_ += static_cast<uint32_t>(n);
    }
    return true;
  }

  // The consumer is gone: count everything as drained so the host never stalls on credit.
  void discard() {
    drained_ += static_cast<uint32_t>(buf_.size() - pos_);
    buf_.clear();
    pos_ = 0;
  }

  // Credit to send back now (0 = not worth a frame yet); the caller sends it.
  uint32_t take_grant() {
    if (drained_ == 0 || (drained_ < window_ / 4 && !empty())) return 0;
    uint32_t g = drained_;
    drained_ = 0;
    outstanding_ += g;
    return g;
  }

 private:
  std::string buf_;
  std::size_t pos_ = 0;
  uint32_t window_;
  uint32_t outstanding_;
  uint32_t drained_ = 0;
};

}  // namespace warren::agent
