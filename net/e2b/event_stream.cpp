// net/e2b/event_stream.cpp — see event_stream.hpp.
#include "net/e2b/event_stream.hpp"

#include <time.h>

#include <condition_variable>
#include <cstdlib>
#include <thread>
#include <vector>

#include "net/e2b/connect.hpp"

namespace warren::net::e2b {

namespace {

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t header_int(const http_request& r, std::string_view name) {
  auto v = r.header(name);
  if (v.empty() || v.size() > 12) return 0;
  std::string s(v);
  char* end = nullptr;
  long long n = std::strtoll(s.c_str(), &end, 10);
  return end && *end == '\0' && n > 0 ? n : 0;
}

// One thread for every stream of the process: a keepalive is due at most every second.
class ticker {
 public:
  static ticker& get() {
    static ticker* t = new ticker();  // never destroyed: streams may tick during exit
    return *t;
  }
  void add(std::weak_ptr<event_stream> s) {
    std::lock_guard lk(mu_);
    streams_.push_back(std::move(s));
  }

 private:
  ticker() {
    std::thread([this] { run(); }).detach();
  }
  void run() {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      std::vector<std::shared_ptr<event_stream>> live;
      {
        std::lock_guard lk(mu_);
        std::vector<std::weak_ptr<event_stream>> keep;
        for (auto& w : streams_)
          if (auto s = w.lock(); s && !s->ended()) {
            live.push_back(s);
            keep.push_back(w);
          }
        streams_.swap(keep);
      }
      auto now = mono_ns();
      for (auto& s : live) s->tick(now);
    }
  }
  std::mutex mu_;
  std::vector<std::weak_ptr<event_stream>> streams_;
};

}  // namespace

event_stream::event_stream(exchange_ptr ex, std::string keepalive_json)
    : ex_(std::move(ex)), keepalive_(std::move(keepalive_json)) {
  const auto& r = ex_->request();
  keepalive_ns_ = header_int(r, "keepalive-ping-interval") * 1'000'000'000;
  if (auto ms = header_int(r, "connect-timeout-ms")) deadline_ns_ = mono_ns() + ms * 1'000'000;
  last_ns_ = mono_ns();
}

std::shared_ptr<event_stream> event_stream::open(exchange_ptr ex, std::string keepalive_json) {
  auto s = std::make_shared<event_stream>(std::move(ex), std::move(keepalive_json));
  std::weak_ptr<event_stream> w = s;
  s->ex_->start_stream(200, "application/connect+json", {}, [w] {
    auto s = w.lock();
    if (!s || s->ended_.exchange(true)) return;
    std::function<void()> fn;
    {
      std::lock_guard lk(s->mu_);
      fn = std::move(s->gone_);
    }
    if (fn) fn();
  });
  if (s->keepalive_ns_ || s->deadline_ns_) ticker::get().add(s);
  return s;
}

void event_stream::write_raw(std::string bytes) {
  queued_ += bytes.size();
  auto self = shared_from_this();
  size_t n = bytes.size();
  ex_->write(std::move(bytes), [self, n](bool) {
    if ((self->queued_ -= n) > self->low_) return;
    std::function<void()> fn;
    {
      std::lock_guard lk(self->mu_);
      fn = self->low_fn_;
    }
    if (fn) fn();
  });
}

bool event_stream::send(const nlohmann::json& msg) {
  if (ended_) return false;
  last_ns_ = mono_ns();
  write_raw(envelope(msg.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  return true;
}

void event_stream::finish(const error* e) {
  if (ended_.exchange(true)) return;
  write_raw(envelope(end_stream(e), end_stream_flag));
  ex_->end();
}

void event_stream::finish(std::string_view code, std::string_view message) {
  if (ended_.exchange(true)) return;
  write_raw(envelope(end_stream(code, message), end_stream_flag));
  ex_->end();
}

void event_stream::on_gone(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  gone_ = std::move(fn);
}

void event_stream::on_low_water(size_t low, std::function<void()> fn) {
  std::lock_guard lk(mu_);
  low_ = low;
  low_fn_ = std::move(fn);
}

void event_stream::on_deadline(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  deadline_ = std::move(fn);
}

void event_stream::tick(int64_t now) {
  if (ended_) return;
  if (deadline_ns_ && now >= deadline_ns_) {
    std::function<void()> fn;
    {
      std::lock_guard lk(mu_);
      fn = std::move(deadline_);
    }
    if (fn) fn();
    finish("deadline_exceeded", "the request's deadline (Connect-Timeout-Ms) passed");
    return;
  }
  if (keepalive_ns_ && now - last_ns_.load() >= keepalive_ns_) send(nlohmann::json::parse(keepalive_));
}

}  // namespace warren::net::e2b
