// net/send_window.hpp — backpressure between a producer we can pause (an agent stream) and a
// consumer that drains at its own pace (an HTTP client, a WebSocket). Counts bytes handed to
// the consumer but not yet sent; pauses the producer above `high`, resumes it below `low`.
// Thread-safe: `sent` is called on the producer's strand, completions on the consumer's.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

namespace warren::net {

class send_window : public std::enable_shared_from_this<send_window> {
 public:
  send_window(size_t high, size_t low, std::function<void()> pause, std::function<void()> resume)
      : high_(high), low_(low), pause_(std::move(pause)), resume_(std::move(resume)) {}

  // Call when handing `n` bytes to the consumer; call the returned function when they left.
  std::function<void(bool)> sent(size_t n) {
    if (unsent_.fetch_add(n) + n > high_ && !paused_.exchange(true) && pause_) pause_();
    return [self = shared_from_this(), n](bool) {
      if (self->unsent_.fetch_sub(n) - n < self->low_ && self->paused_.exchange(false) && self->resume_)
        self->resume_();
    };
  }

 private:
  size_t high_, low_;
  std::function<void()> pause_, resume_;
  std::atomic<size_t> unsent_{0};
  std::atomic<bool> paused_{false};
};

}  // namespace warren::net
