// vmm/agent/event_loop.cpp — epoll, a timer map and a deferred-work queue. Registrations are
// looked up by id at dispatch time, so a handler may remove any watch (even one whose event is
// already in the current batch) without a stale callback firing.
#include "vmm/agent/event_loop.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace warren::agent {

event_loop::event_loop() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    std::perror("warren-agent: epoll_create1");
    std::exit(1);
  }
}

event_loop::~event_loop() { ::close(epfd_); }

// A quiet watch (events == 0) is taken out of the epoll set entirely: EPOLLHUP and EPOLLERR are
// reported whatever the mask, and a hung-up pipe we are not reading (no credit) would spin.
static bool ctl(int epfd, int op, int fd, uint32_t events, uint64_t id) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  return epoll_ctl(epfd, op, fd, op == EPOLL_CTL_DEL ? nullptr : &ev) == 0;
}

event_loop::watch_id event_loop::add(int fd, uint32_t events, fd_handler h) {
  watch_id id = next_id_++;
  if (events && !ctl(epfd_, EPOLL_CTL_ADD, fd, events, id)) std::perror("warren-agent: epoll add");
  watches_.emplace(id, watch{fd, events, std::move(h)});
  return id;
}

void event_loop::modify(watch_id id, uint32_t events) {
  auto it = watches_.find(id);
  if (it == watches_.end() || it->second.events == events) return;
  uint32_t before = it->second.events;
  it->second.events = events;
  int fd = it->second.fd;
  if (!events) ctl(epfd_, EPOLL_CTL_DEL, fd, 0, id);
  else ctl(epfd_, before ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, events, id);
}

void event_loop::remove(watch_id id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  if (it->second.events) ctl(epfd_, EPOLL_CTL_DEL, it->second.fd, 0, id);
  // The handler may be the one running right now: destroy it after this turn.
  deferred_.push_back([h = std::move(it->second.handler)] {});
  watches_.erase(it);
}

event_loop::timer_id event_loop::after(std::chrono::milliseconds d, std::function<void()> f) {
  timer_id id = next_id_++;
  auto when = clock::now() + d;
  timers_.emplace(when, id);
  timer_fns_.emplace(id, std::make_pair(when, std::move(f)));
  return id;
}

void event_loop::cancel(timer_id id) {
  auto it = timer_fns_.find(id);
  if (it == timer_fns_.end()) return;
  auto range = timers_.equal_range(it->second.first);
  for (auto t = range.first; t != range.second; ++t) {
    if (t->second == id) {
      timers_.erase(t);
      break;
    }
  }
  timer_fns_.erase(it);
}

void event_loop::defer(std::function<void()> f) { deferred_.push_back(std::move(f)); }

void event_loop::run() {
  epoll_event evs[64];
  for (;;) {
    while (!deferred_.empty()) {
      auto f = std::move(deferred_.front());
      deferred_.pop_front();
      f();
    }
    int timeout = -1;
    if (!timers_.empty()) {
      auto d = timers_.begin()->first - clock::now();
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
      timeout = ms < 0 ? 0 : static_cast<int>(ms);
    }
    if (!deferred_.empty()) timeout = 0;
    int n = epoll_wait(epfd_, evs, 64, timeout);
    if (n < 0 && errno != EINTR) {
      std::perror("warren-agent: epoll_wait");
      continue;
    }
    for (int i = 0; i < n; ++i) {
      auto it = watches_.find(evs[i].data.u64);
      if (it == watches_.end()) continue;
      auto h = it->second.handler;  // copy: the handler may remove its own watch
      h(evs[i].events);
    }
    auto now = clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      timer_id id = timers_.begin()->second;
      timers_.erase(timers_.begin());
      auto f = std::move(timer_fns_[id].second);
      timer_fns_.erase(id);
      f();
    }
  }
}

}  // namespace warren::agent
