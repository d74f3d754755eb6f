// net/tcp_upstream.hpp — one outbound TCP connection of the port proxy, straight to a sandbox's
// network address (the jail's veth): the fast path that skips the agent. Same shape as an agent
// port stream (credit-style pause/resume, queued writes with completion) so the proxy can use
// either. It only connects where it is told; it never resolves names or picks addresses.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace boost::asio { class io_context; }

namespace warren::net {

class tcp_upstream {
 public:
  struct callbacks {
    std::function<void()> on_connected;
    // The connection was never made (refused, unreachable, timed out); nothing reached the
    // server. Queued writes fail (their `done` gets the error); no other callback follows.
    std::function<void(const error&)> on_connect_failed;
    std::function<void(std::string_view)> on_data;
    std::function<void()> on_eof;            // the server shut down its writing half
    std::function<void(status)> on_close;    // once, after on_connected: both halves done or failed
  };
  struct pending_write {
    std::string data;
    std::function<void(status)> done;
  };

  // Connects to ip:port on `io`, which must be run by exactly one thread (the front door's
  // loops are): that thread serializes the connection, and calls made on it run inline.
  // `timeout` bounds the connect only. Null if `ip` is not an IPv4 or IPv6 address.
  // With `netns` (a network namespace's descriptor, -1 for none), the socket is made in that
  // namespace (then `ip` is an address there, such as a sandbox's 127.0.0.1 or ::1), before this
  // returns: `netns` need stay open only for the call. The calling thread is back in its own
  // namespace by then.
  static std::shared_ptr<tcp_upstream> open(boost::asio::io_context& io, const std::string& ip, uint16_t port,
                                            callbacks cb, std::chrono::milliseconds timeout, int netns = -1);
  virtual ~tcp_upstream() = default;

  // Queued until connected; `done` fires once the bytes were handed to the kernel (or failed).
  virtual void write(std::string data, std::function<void(status)> done = {}) = 0;
  virtual void shutdown_write() = 0;  // after queued writes
  virtual void pause_output() = 0;    // stop reading from the server (its sends then block)
  virtual void resume_output() = 0;
  virtual void cancel() = 0;          // close now; no more callbacks
  // Close now and report it: on_close(why), or on_connect_failed(why) if still connecting.
  virtual void abort(error why) = 0;
};

}  // namespace warren::net
