// actors/stream_sessions.hpp — the open shell and terminal sessions of this process, for the
// admin console (/v1/admin/actors): who opened what on which sandbox, bytes each way, and how to
// end it (kill). The front door creates a session when a shell or terminal WebSocket opens and
// holds it while the socket lives; the registry only keeps weak references, so a session is
// listed exactly as long as its owner keeps it. No CAF, no Beast in here.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace warren::actors {

struct stream_session {
  std::string id;          // "sh_<16 hex>" | "pty_<16 hex>"
  std::string kind;        // "shell" | "terminal"
  std::string sandbox_id;
  std::string started_at;  // RFC 3339
  int64_t started_ns = 0;  // CLOCK_MONOTONIC
  std::atomic<uint64_t> bytes_in{0}, bytes_out{0}, commands{0};
  // Set by the owner when its socket closed: no longer listed, even while callbacks linger.
  std::atomic<bool> closed{false};

  // Sets how the session is ended (closing its WebSocket); kill() runs it once.
  void on_kill(std::function<void()> fn);
  // false: it was already killed (or has no way to end yet).
  bool kill();

 private:
  std::mutex mu_;
  std::function<void()> kill_;
  bool killed_ = false;
};
using stream_session_ptr = std::shared_ptr<stream_session>;

// A new session, listed until it is closed or the last shared_ptr to it goes.
stream_session_ptr open_stream_session(std::string kind, std::string sandbox_id);
// The live sessions (of one sandbox; "" = all).
std::vector<stream_session_ptr> stream_sessions(const std::string& sandbox_id = "");
// The live session with this id, or null.
stream_session_ptr find_stream_session(const std::string& id);

}  // namespace warren::actors
