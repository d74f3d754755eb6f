// actors/sandbox_link.hpp — what the front door needs to move bytes to and from a local
// sandbox without an actor message per chunk: the agent connection, the exec defaults, and an
// activity clock the sandbox actor reads for its idle timeout. No CAF, no Beast in here.
#pragma once

#include <atomic>
#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "actors/port_table.hpp"
#include "core/owned_fd.hpp"
#include "core/thread_slot.hpp"

namespace warren::agent { class client; }

namespace warren::actors {

// Activity as API.md defines it: API calls, proxied requests, open shells/streams. (CPU use is
// read from the driver's stats by the sandbox actor.)
struct activity {
  std::atomic<int64_t> last_ns{now_ns()};
  // Hibernated: links handed out before are stale (the port proxy asks again, which resumes
  // the sandbox when it has auto_resume).
  std::atomic<bool> paused{false};
  slot_count open_streams;  // counted by the guards below
  // For the admin console: commands run through exec, bytes the front door moved into the
  // sandbox (stdin, shell commands, terminal input) and out of it (output) outside port proxying.
  std::atomic<uint64_t> execs{0}, bytes_in{0}, bytes_out{0};

  // Is any stream open (which counts as activity)?
  bool busy() const { return open_streams.sum() > 0; }

  // Called several times per proxied request, from every I/O thread: the clock is the coarse
  // one (a few ms of resolution is plenty for idle timeouts in seconds) and the shared value is
  // written only when it changed, so the threads do not fight over its cache line.
  void touch() {
    auto n = now_ns();
    if (last_ns.load(std::memory_order_relaxed) != n) last_ns.store(n, std::memory_order_relaxed);
  }
  static int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }
};

// Counts an open stream (shell, SSE exec, proxied request) for as long as it lives, on the
// calling thread's slot: the port proxy's I/O threads each count on their own cache line. It
// holds no reference: whoever holds the guard keeps the activity alive (the proxy, through the
// link; stream_guard, itself).
class local_stream_guard {
 public:
  explicit local_stream_guard(activity& a) : a_(a), slot_(a_.open_streams.add(1)) { a_.touch(); }
  ~local_stream_guard() {
    a_.touch();
    a_.open_streams.add_at(slot_, -1);  // the slot it counted on
  }
  local_stream_guard(const local_stream_guard&) = delete;
  local_stream_guard& operator=(const local_stream_guard&) = delete;

 private:
  activity& a_;
  size_t slot_;
};

// A local_stream_guard that also keeps the activity alive (the API's shells, execs, uploads).
class stream_guard {
 public:
  explicit stream_guard(std::shared_ptr<activity> a) : a_(std::move(a)), g_(*a_) {}

 private:
  std::shared_ptr<activity> a_;  // declared first: outlives g_
  local_stream_guard g_;
};

struct sandbox_link {
  std::string id;
  std::shared_ptr<agent::client> agent;
  int default_timeout_s = 30;
  std::shared_ptr<activity> act;
  std::shared_ptr<port_table> ports;  // exposures, for the port proxy
  std::string mask_request_host;      // "" = none; "${PORT}" is replaced by the port
  std::string net_addr;               // where the host reaches the sandbox over TCP ("" = agent only)
  // The sandbox's network namespace: the port proxy connects to servers bound to its loopback
  // from a socket made in there (null: only the agent reaches its loopback).
  std::shared_ptr<const owned_fd> netns;
};
using sandbox_link_ptr = std::shared_ptr<sandbox_link>;

}  // namespace warren::actors
