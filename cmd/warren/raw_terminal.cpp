// cmd/warren/raw_terminal.cpp — see raw_terminal.hpp. Raw mode as cfmakeraw(3) sets it; the
// SIGWINCH handler only write(2)s to a pipe (async-signal-safe, man 7 signal-safety).
#include "cmd/warren/raw_terminal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace warren::cmd {
namespace {

int winch_pipe_write = -1;

void on_winch(int) {
  if (winch_pipe_write >= 0) {
    char c = 'w';
    [[maybe_unused]] auto n = ::write(winch_pipe_write, &c, 1);
  }
}

}  // namespace

raw_terminal::raw_terminal(int fd) : fd_(fd) {
  if (::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) == 0) {
    winch_pipe_write = pipe_[1];
    struct sigaction sa {};
    sa.sa_handler = on_winch;
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGWINCH, &sa, nullptr);
  }
  if (::tcgetattr(fd_, &saved_) == 0) {
    termios raw = saved_;
    ::cfmakeraw(&raw);
    ::tcsetattr(fd_, TCSANOW, &raw);
  } else {
    restored_ = true;  // not a terminal: nothing to restore
  }
}

raw_terminal::~raw_terminal() {
  if (!restored_) ::tcsetattr(fd_, TCSANOW, &saved_);
  ::signal(SIGWINCH, SIG_DFL);
  winch_pipe_write = -1;
  for (int p : pipe_)
    if (p >= 0) ::close(p);
}

std::pair<unsigned, unsigned> raw_terminal::size() const {
  winsize ws{};
  if (::ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) return {ws.ws_col, ws.ws_row};
  return {80, 24};
}

}  // namespace warren::cmd
