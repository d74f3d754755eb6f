// net/http_types.hpp — plain request/response values passed between the Beast session
// (net/server.cpp, the only place that knows Beast) and the API handlers.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

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

// One request/response exchange. The handler completes it exactly once, from any thread.
class exchange {
 public:
  virtual ~exchange() = default;
  virtual const http_request& request() const = 0;
  virtual void respond(http_response r) = 0;
  // The route's name for metrics and logs ("/v1/sandboxes/{id}").
  virtual void set_route(std::string route) = 0;

  // A streamed response (SSE, chunked) instead of respond(): start once, write chunks, end.
  // Each write's `done(ok)` fires when its bytes left for the client (send the next one then:
  // that is the backpressure). `on_gone` fires once if the client disconnects before end().
  // The connection closes after a streamed response.
  virtual void start_stream(int status, std::string content_type,
                            std::vector<std::pair<std::string, std::string>> headers,
                            std::function<void()> on_gone) = 0;
  virtual void write(std::string chunk, std::function<void(bool ok)> done) = 0;
  virtual void end() = 0;
};
using exchange_ptr = std::shared_ptr<exchange>;

// Percent-decoding of a path or query component; nullopt-like empty + false on bad escapes.
bool percent_decode(std::string_view in, std::string& out, bool plus_is_space);
// Splits a request-target into decoded path and query map; false if it is malformed.
bool split_target(std::string_view target, std::string& path,
                  std::map<std::string, std::string>& query);

}  // namespace warren::net
