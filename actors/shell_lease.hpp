// actors/shell_lease.hpp — what the front door holds while a shell WebSocket is open: the
// session to run commands on, and the release that ends the shell actor. No CAF in here.
#pragma once

#include <functional>
#include <memory>

#include "actors/stream_sessions.hpp"

namespace warren::agent { class shell_session; }

namespace warren::actors {

// What the front door holds while a shell WebSocket is open. Dropping it ends the shell.
struct shell_lease {
  std::shared_ptr<agent::shell_session> session;
  int default_timeout_s = 30;
  stream_session_ptr info;  // the admin console's view of this session (counters, kill)
  std::function<void()> release;  // tells the shell actor to close; idempotent
  ~shell_lease() {
    if (release) release();
  }
};
using shell_lease_ptr = std::shared_ptr<shell_lease>;

}  // namespace warren::actors
