// vmm/agent/pty.cpp — posix_openpt + TIOCGPTPEER (no path lookup of /dev/pts, so it works the
// same whatever the sandbox mounted there) with a ptsname fallback for older kernels.
#include "vmm/agent/pty.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace warren::agent {

bool set_winsize(int master, uint16_t cols, uint16_t rows) {
  winsize ws{};
  ws.ws_col = cols;
  ws.ws_row = rows;
  return ioctl(master, TIOCSWINSZ, &ws) == 0;
}

bool open_pty(uint16_t cols, uint16_t rows, pty_pair& out, std::string& why) {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) {
    why = std::string("posix_openpt: ") + std::strerror(errno);
    return false;
  }
  if (grantpt(m) != 0 || unlockpt(m) != 0) {
    why = std::string("unlockpt: ") + std::strerror(errno);
    ::close(m);
    return false;
  }
  int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) {
    char name[128];
    if (ptsname_r(m, name, sizeof name) == 0) s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  }
  if (s < 0) {
    why = std::string("opening the pty slave: ") + std::strerror(errno);
    ::close(m);
    return false;
  }
  set_winsize(m, cols, rows);
  out.master = m;
  out.slave = s;
  return true;
}

}  // namespace warren::agent
