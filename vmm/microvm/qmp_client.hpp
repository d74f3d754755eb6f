// vmm/microvm/qmp_client.hpp — a small blocking client of QEMU's Machine Protocol (QMP): JSON
// lines over a unix socket. One owner, one thread; every read has a deadline; never throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace warren::vmm::microvm {

struct qmp_options {
  std::chrono::milliseconds timeout{5000};  // each connect, greeting and command
  std::size_t max_line = 8u << 20;          // one message; query-qmp-schema is ~300 KiB
  std::size_t max_events = 1024;            // the oldest are dropped past this
};

class qmp_client {
 public:
  // Connects to QEMU's `-qmp unix:PATH,server=on,wait=off` socket (retrying until the deadline
  // while the socket does not exist yet or refuses), reads the greeting and negotiates
  // capabilities (qmp_capabilities), after which commands may run.
  static expected<qmp_client> connect(const std::string& socket_path, qmp_options opt = {});
  // The same over a socket already connected (tests use a socketpair). Takes ownership of `fd`.
  static expected<qmp_client> handshake(int fd, qmp_options opt = {});

  qmp_client(qmp_client&& o) noexcept;
  qmp_client& operator=(qmp_client&& o) noexcept;
  qmp_client(const qmp_client&) = delete;
  qmp_client& operator=(const qmp_client&) = delete;
  ~qmp_client();

  // Runs `command` with `args` (an object, or null for none) and returns its "return" value.
  // A QMP error answers errc::bad_request naming its class and desc; a reply not in time
  // errc::timeout; a peer that closes or speaks anything but QMP errc::bad_gateway, after which
  // the connection is closed and every later call fails at once.
  expected<nlohmann::json> execute(const std::string& command, const nlohmann::json& args = nullptr);

  // Asynchronous events (e.g. SHUTDOWN, STOP) read while waiting for replies, oldest first.
  std::deque<nlohmann::json>& events() { return events_; }
  // Waits up to `timeout` for one more event to arrive (events already queued count).
  expected<nlohmann::json> next_event(std::chrono::milliseconds timeout);

  // The greeting's "QMP" object ({"version": {...}, "capabilities": [...]}).
  const nlohmann::json& greeting() const { return greeting_; }
  bool connected() const { return fd_ >= 0; }

 private:
  qmp_client(int fd, qmp_options opt) : fd_(fd), opt_(opt) {}
  using clock = std::chrono::steady_clock;
  expected<nlohmann::json> read_message(clock::time_point deadline);
  expected<bool> write_all(const std::string& data, clock::time_point deadline);
  error fail(std::string why);  // closes the connection, returns a bad_gateway naming why
  void queue_event(nlohmann::json ev);

  int fd_ = -1;
  qmp_options opt_;
  std::string buf_;  // bytes read past the last complete line
  nlohmann::json greeting_;
  std::deque<nlohmann::json> events_;
  std::uint64_t next_id_ = 1;
};

}  // namespace warren::vmm::microvm
