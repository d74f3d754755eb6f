// vmm/agent/pty.hpp — opening a pseudo-terminal pair and sizing it. The slave becomes the
// controlling terminal of the exec'd session (see exec.cpp); the agent only keeps the master.
#pragma once

#include <cstdint>
#include <string>

namespace warren::agent {

struct pty_pair {
  int master = -1;  // O_CLOEXEC, the agent's end
  int slave = -1;   // O_CLOEXEC, dup2'ed onto the child's 0/1/2
};

// Returns false and sets `why` on failure.
bool open_pty(uint16_t cols, uint16_t rows, pty_pair& out, std::string& why);
bool set_winsize(int master, uint16_t cols, uint16_t rows);

}  // namespace warren::agent
