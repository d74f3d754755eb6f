// cmd/warren/raw_terminal.hpp — puts the local terminal in raw mode for `warren sandbox shell`
// and turns SIGWINCH into a readable fd. Restores everything when destroyed, also on errors.
#pragma once

#include <termios.h>

#include <utility>

namespace warren::cmd {

class raw_terminal {
 public:
  explicit raw_terminal(int fd);  // fd must be a tty (check isatty first)
  ~raw_terminal();
  raw_terminal(const raw_terminal&) = delete;
  raw_terminal& operator=(const raw_terminal&) = delete;

  // Readable after each window size change (drain it, then read size()).
  int resize_fd() const { return pipe_[0]; }
  // cols, rows of the terminal (80x24 when unknown).
  std::pair<unsigned, unsigned> size() const;

 private:
  int fd_;
  termios saved_{};
  bool restored_ = false;
  int pipe_[2] = {-1, -1};
};

}  // namespace warren::cmd
