// net/http_types.hpp — plain request/response values passed between the Beast session
// (net/server.cpp, the only place that knows Beast) and the API handlers.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace boost::asio { class io_context; }

namespace warren::net {

struct http_request {
  std::string method;  // as sent, upper case for known methods
  std::string target;  // raw request-target
  std::string path;    // percent-decoded path, no query
  std::map<std::string, std::string> query;  // decoded; last value wins
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote_addr;
  bool tls = false;

  // First value of a header (name lower-case), empty if absent.
  std::string_view header(std::string_view name) const;
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// {"error": {"code": ..., "message": ...}} with the status errc maps to.
http_response error_response(const error& e);
http_response json_response(int status, const std::string& json_text);
int http_status(errc c);

// A WebSocket accepted on an exchange (net/server.cpp implements it). Thread-safe; sends are
// queued in order and `done(ok)` fires when a message left (backpressure: send the next then).
class websocket {
 public:
  virtual ~websocket() = default;
  virtual void send_text(std::string msg, std::function<void(bool ok)> done = {}) = 0;
  virtual void send_binary(std::string msg, std::function<void(bool ok)> done = {}) = 0;
  // Sends a close frame (RFC 6455 §7.4 code) after queued messages; on_close follows.
  virtual void close(uint16_t code = 1000, std::string reason = {}) = 0;
  // Stops/starts reading client messages (their sender then blocks: backpressure).
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
};

struct websocket_callbacks {
  std::function<void(std::string)> on_text;
  std::function<void(std::string)> on_binary;
  std::function<void()> on_close;  // once: the client closed, the connection broke, or close()
};

// The raw byte stream of a connection taken over after the HTTP exchange (e.g. a proxied
// WebSocket after its 101). Thread-safe; one read and one write outstanding at a time.
class raw_conn {
 public:
  virtual ~raw_conn() = default;
  // Next bytes from the client (bytes already buffered come first); empty = EOF.
  virtual void read(std::function<void(expected<std::string>)> done) = 0;
  virtual void write(std::string bytes, std::function<void(bool ok)> done) = 0;
  virtual void shutdown_write() = 0;
  virtual void close() = 0;
};

struct stream_options {
  std::optional<uint64_t> content_length;  // set: raw body of that size, else chunked
  bool keep_alive = false;  // serve further requests afterwards (only if the body was read)
  bool no_body = false;     // HEAD, 204, 304: headers only
  bool watch_client = true;  // detect a client that goes away while nothing is written
};

// One request/response exchange. The request's headers are read when dispatch sees it; its
// body is read only when the handler asks (read_body or read_body_chunk). The handler
// completes the exchange exactly once, from any thread: respond, a stream, a WebSocket, or a
// hijack.
class exchange {
 public:
  virtual ~exchange() = default;
  virtual const http_request& request() const = 0;
  // The route's name for metrics and logs ("/v1/sandboxes/{id}").
  virtual void set_route(std::string route) = 0;
  // Data-plane traffic (proxied port requests): its per-request log line is at debug level, not
  // info — a busy dev server would drown the log. /metrics counts it all the same.
  virtual void set_quiet() {}
  // The event loop (one I/O thread) this connection lives on, for outbound connections made on
  // its behalf (the port proxy's upstreams) so their bytes stay on the same thread. May be null.
  virtual boost::asio::io_context* io() const { return nullptr; }

  // Reads the whole body (at most `limit` bytes) into request().body, then calls `done`; an
  // oversized body is answered 413 by the server and `done` is not called.
  virtual void read_body(size_t limit, std::function<void()> done) = 0;
  // Streams the body: each call delivers the next chunk (empty = the end); no size limit.
  virtual void read_body_chunk(std::function<void(expected<std::string>)> done) = 0;

  virtual void respond(http_response r) = 0;

  // A streamed response instead of respond(): start once, write chunks, end. Each write's
  // `done(ok)` fires when its bytes left for the client (send the next one then: that is the
  // backpressure). `on_gone` fires once if the client disconnects before end().
  virtual void start_stream(int status, std::string content_type,
                            std::vector<std::pair<std::string, std::string>> headers,
                            std::function<void()> on_gone, stream_options opts = {}) = 0;
  virtual void write(std::string chunk, std::function<void(bool ok)> done) = 0;
  virtual void end() = 0;

  // Completes a WebSocket upgrade (RFC 6455). `on_open` returns the callbacks for the new
  // socket; `max_message` bounds one client message (larger → close 1009).
  virtual void accept_websocket(std::function<websocket_callbacks(std::shared_ptr<websocket>)> on_open,
                                size_t max_message = 1 << 20) = 0;
  // Writes `head` (a status line and headers, already serialized) and hands over the raw
  // connection. For proxied upgrades.
  virtual void hijack(std::string head, std::function<void(std::shared_ptr<raw_conn>)> on_taken) = 0;
  // Drops the connection without completing the response: for a proxy whose upstream broke
  // mid-body (ending a chunked stream would make a cut-off response look complete).
  virtual void abort() { end(); }

  bool is_websocket_upgrade() const;
};
using exchange_ptr = std::shared_ptr<exchange>;

// Percent-decoding of a path or query component; nullopt-like empty + false on bad escapes.
bool percent_decode(std::string_view in, std::string& out, bool plus_is_space);
// Splits a request-target into decoded path and query map; false if it is malformed.
bool split_target(std::string_view target, std::string& path,
                  std::map<std::string, std::string>& query);

}  // namespace warren::net
