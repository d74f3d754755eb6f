// cmd/warren/api_client.hpp — the CLI's client for a Warren node's HTTP/WebSocket API.
// Beast-free on purpose: only api_client.cpp includes Boost.Beast; every other CLI file talks
// through this header. Transport failures come back as errors; API answers (any status) as
// api_response, for the caller to read.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.hpp"

namespace warren::cmd {

// Where the API is and which key to send (see api_config.cpp for how they are resolved).
struct api_config {
  std::string url;  // http://host:port[/prefix], no trailing slash
  std::string key;  // empty: send no Authorization header
};

struct api_response {
  int status = 0;
  std::string content_type;
  std::string body;  // empty for streamed bodies that went to a sink
  bool ok() const { return status >= 200 && status < 300; }
};

// Progress of a transfer: bytes done so far and the total (0 when unknown).
using progress_fn = std::function<void(uint64_t done, uint64_t total)>;

// The keys of an interactive terminal (`warren sandbox shell`). The client pumps in_fd to the
// pty and the pty to out_fd, and sends a resize whenever resize_fd becomes readable (a self-pipe
// the caller's SIGWINCH handler writes to; the client drains it).
struct terminal_io {
  int in_fd = 0, out_fd = 1, resize_fd = -1;
  std::function<std::pair<unsigned, unsigned>()> size;  // cols, rows
};

class api_client {
 public:
  explicit api_client(api_config cfg);
  ~api_client();
  api_client(const api_client&) = delete;
  api_client& operator=(const api_client&) = delete;

  const api_config& config() const { return cfg_; }

  // One request with a small body (JSON unless said otherwise); the whole answer is read.
  // timeout_s bounds each wait on the server, not the whole exchange.
  expected<api_response> request(std::string_view method, std::string_view target,
                                 std::string_view body = {}, double timeout_s = 60);

  // PUT of `size` bytes pulled from `read` (returns bytes read, 0 at the end) as they are sent.
  expected<api_response> upload(std::string_view target, uint64_t size,
                                const std::function<size_t(char*, size_t)>& read,
                                const progress_fn& progress);

  // GET whose 2xx body is pushed to `sink` chunk by chunk (an error answer is read whole).
  expected<api_response> download(std::string_view target,
                                  const std::function<bool(const char*, size_t)>& sink,
                                  const progress_fn& progress);

  // POST that answers text/event-stream: on_event(event, data) per event as it arrives; stops
  // early when on_event returns false.
  expected<api_response> events(std::string_view target, std::string_view body,
                                const std::function<bool(const std::string&, const std::string&)>& on_event,
                                double timeout_s);

  // Opens the pty WebSocket at `target` and runs the terminal until the program exits or
  // in_fd ends. Returns the close reason the server sent ("exit 0"), or an error.
  expected<std::string> terminal(std::string_view target, const terminal_io& io);

 private:
  struct impl;
  api_config cfg_;
  std::unique_ptr<impl> impl_;
};

// The API's error object of a non-2xx answer as one line: "not_found: no sandbox with id …".
std::string describe_error(const api_response& r);

// A request whose 2xx answer is JSON (or empty: null). A non-2xx answer becomes an error whose
// code follows the status and whose message is describe_error's line.
expected<std::string> call_json(api_client& c, std::string_view method, std::string_view target,
                                std::string_view body = {}, double timeout_s = 60);

// Percent-encodes a query parameter value (RFC 3986 §2.3 unreserved characters pass through).
std::string url_encode(std::string_view s);

}  // namespace warren::cmd
