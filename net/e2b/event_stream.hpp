// net/e2b/event_stream.hpp — one Connect server stream (application/connect+json) on an HTTP
// exchange: enveloped JSON messages, the end-stream message, keepalive messages every
// Keepalive-Ping-Interval seconds of silence, and the Connect-Timeout-Ms deadline. A shared
// ticker thread drives keepalives and deadlines of every open stream.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "net/http_types.hpp"

namespace warren::net::e2b {

class event_stream : public std::enable_shared_from_this<event_stream> {
 public:
  // Starts the response. `keepalive_json` is sent after Keepalive-Ping-Interval seconds without
  // a message (header absent: never); Connect-Timeout-Ms (absent: none) is the deadline.
  static std::shared_ptr<event_stream> open(exchange_ptr ex, std::string keepalive_json);

  // Sends one message; false once the stream has ended or the client left.
  bool send(const nlohmann::json& msg);
  // Ends the stream: the end-stream message ({} or the error), then the end of the body.
  void finish(const error* e = nullptr);
  void finish(std::string_view code, std::string_view message);
  bool ended() const { return ended_.load(); }
  size_t queued_bytes() const { return queued_.load(); }

  // Called once when the client goes away before finish() (not after it).
  void on_gone(std::function<void()> fn);
  // Called once when the deadline passes (then the stream ends with deadline_exceeded).
  void on_deadline(std::function<void()> fn);
  // Called (on the writer's completion) each time the bytes queued for the client fall to
  // `low` or below: a producer paused for backpressure resumes then.
  void on_low_water(size_t low, std::function<void()> fn);

  // The ticker's work for this stream at `now_ns` (monotonic).
  void tick(int64_t now_ns);

  explicit event_stream(exchange_ptr ex, std::string keepalive_json);

 private:
  void write_raw(std::string bytes);
  exchange_ptr ex_;
  std::string keepalive_;
  int64_t keepalive_ns_ = 0, deadline_ns_ = 0;
  std::atomic<int64_t> last_ns_{0};
  std::atomic<bool> ended_{false};
  std::atomic<size_t> queued_{0};
  std::mutex mu_;
  std::function<void()> gone_, deadline_, low_fn_;
  size_t low_ = 0;
};

}  // namespace warren::net::e2b
