// vmm/agent/event_loop.hpp — the agent's single-threaded epoll loop: fd watches, timers and
// deferred work. Nothing here blocks except epoll_wait; handlers must not block either.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <unordered_map>

namespace warren::agent {

class event_loop {
 public:
  using clock = std::chrono::steady_clock;
  using fd_handler = std::function<void(uint32_t events)>;
  using watch_id = uint64_t;
  using timer_id = uint64_t;

  event_loop();
  ~event_loop();
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  // Level-triggered. `events` may be 0 (registered but quiet, e.g. while out of credit).
  watch_id add(int fd, uint32_t events, fd_handler h);
  void modify(watch_id id, uint32_t events);
  void remove(watch_id id);  // safe from inside a handler, also for the running one

  timer_id after(std::chrono::milliseconds d, std::function<void()> f);
  void cancel(timer_id id);

  // Runs `f` on the next turn of the loop (before waiting again).
  void defer(std::function<void()> f);

  void run();  // forever

 private:
  struct watch {
    int fd;
    uint32_t events;
    fd_handler handler;
  };
  int epfd_ = -1;
  uint64_t next_id_ = 1;
  std::unordered_map<watch_id, watch> watches_;
  std::multimap<clock::time_point, timer_id> timers_;
  std::unordered_map<timer_id, std::pair<clock::time_point, std::function<void()>>> timer_fns_;
  std::deque<std::function<void()>> deferred_;
};

}  // namespace warren::agent
