// net/server.hpp — the front door's listener: plain HTTP, or TLS when a certificate is
// configured. Parses requests with size limits, hands each to the dispatcher as an exchange,
// writes the reply, logs one line per request. Never blocks an I/O thread on anything.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "net/http_types.hpp"
#include "net/metrics.hpp"

namespace warren::net {

struct server_options {
  std::string host = "127.0.0.1";
  uint16_t port = 7070;  // 0 = ephemeral
  std::string tls_cert, tls_key;  // both set = TLS on every connection
  size_t max_header_bytes = 16 * 1024;
  int io_threads = 2;
  std::chrono::milliseconds drain_timeout{10000};
  std::chrono::seconds idle_timeout{75};
};

class server {
 public:
  using dispatch_fn = std::function<void(exchange_ptr)>;
  server(server_options opts, dispatch_fn dispatch, std::shared_ptr<metrics> m);
  ~server();

  // Binds and listens; returns the bound port (useful with port 0).
  expected<uint16_t> start();
  // Runs the I/O threads until SIGTERM/SIGINT (then drains) or stop(); returns when all
  // in-flight requests finished or the drain timeout passed.
  void run();
  void stop();

  struct impl;  // public so the sessions in server.cpp can name it; defined only there

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace warren::net
