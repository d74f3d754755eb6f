// net/server.cpp — Beast listener and HTTP sessions (after Beast's advanced_server_flex: one
// small session class per connection, paired do_read/on_read, shared_from_this for lifetime,
// one strand per connection). The only translation unit that includes Beast's HTTP headers.
#include "net/server.hpp"

#include <atomic>
#include <deque>
#include <thread>
#include <vector>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

namespace warren::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

struct server::impl {
  impl(server_options o, dispatch_fn d, std::shared_ptr<metrics> m)
      : opts(std::move(o)), dispatch(std::move(d)), stats(std::move(m)) {}
  server_options opts;
  dispatch_fn dispatch;
  std::shared_ptr<metrics> stats;
  asio::io_context ioc;
  std::optional<asio::ssl::context> tls;
  tcp::acceptor acceptor{ioc};
  asio::signal_set signals{ioc, SIGTERM, SIGINT};
  std::atomic<int> in_flight{0};
  std::atomic<bool> draining{false};
  std::vector<std::thread> threads;

  void do_accept();
  void begin_drain();
};

namespace {

template <class Stream>
tcp::socket::lowest_layer_type& lowest(Stream& s) { return beast::get_lowest_layer(s).socket(); }

// One connection. Stream is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
 public:
  session(server::impl& srv, Stream stream) : srv_(srv), stream_(std::move(stream)) {}

  void start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      do_read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(15));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              beast::bind_front_handler(&session::on_handshake, this->shared_from_this()));
    }
  }

  // Completes the current exchange: called (through post) on this session's strand.
  void finish(http_response r, std::string method, std::string path, std::string route,
              clock_type::time_point t0, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<http::status>(r.status));
    res->set(http::field::server, "warren/" WARREN_VERSION);
    if (!r.content_type.empty()) res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->insert(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive && !srv_.draining);
    res->prepare_payload();
    double ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
    spdlog::info("{} {} {} {:.1f}ms", method, path, r.status, ms);
    srv_.stats->observe(method, route, r.status, ms);
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
                        self->on_write(ec, res->keep_alive());
                      });
  }

  // --- streamed responses (all on this session's strand) ---
  void stream_start(int status, std::string ctype, std::vector<std::pair<std::string, std::string>> hdrs,
                    std::function<void()> on_gone, std::string method, std::string path, std::string route,
                    clock_type::time_point t0) {
    stream_log_ = {method, path, route, status, t0};
    on_gone_ = std::move(on_gone);
    stream_head_.emplace();
    stream_head_->version(11);
    stream_head_->result(static_cast<http::status>(status));
    stream_head_->set(http::field::server, "warren/" WARREN_VERSION);
    stream_head_->set(http::field::content_type, ctype);
    stream_head_->set(http::field::cache_control, "no-cache");
    for (auto& [k, v] : hdrs) stream_head_->insert(k, v);
    stream_head_->keep_alive(false);
    stream_head_->chunked(true);
    stream_sr_.emplace(*stream_head_);
    streaming_ = true;
    writing_ = true;
    http::async_write_header(stream_, *stream_sr_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->stream_failed();
      self->watch_for_close();
      self->pump();
    });
  }

  void stream_write(std::string chunk, std::function<void(bool)> done) {
    if (!streaming_ || stream_dead_) {
      if (done) done(false);
      return;
    }
    if (chunk.empty()) {
      if (done) done(true);
      return;
    }
    char head[32];
    int n = std::snprintf(head, sizeof head, "%zx\r\n", chunk.size());
    queue_.push_back({std::string(head, n) + std::move(chunk) + "\r\n", std::move(done)});
    pump();
  }

  void stream_end() {
    if (!streaming_ || stream_dead_ || ended_) return;
    ended_ = true;
    queue_.push_back({"0\r\n\r\n", {}});
    pump();
  }

 private:
  class exchange_impl;

  struct pending_write {
    std::string bytes;
    std::function<void(bool)> done;
  };

  void pump() {
    if (writing_ || stream_dead_) return;
    if (queue_.empty()) {
      if (ended_) finish_stream();
      return;
    }
    writing_ = true;
    auto w = std::make_shared<pending_write>(std::move(queue_.front()));
    queue_.pop_front();
    asio::async_write(stream_, asio::buffer(w->bytes), [self = this->shared_from_this(), w](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (w->done) w->done(!ec);
      if (ec) return self->stream_failed();
      self->pump();
    });
  }

  // The client sends nothing more on a streamed exchange; a read that ends means it left.
  void watch_for_close() {
    auto buf = std::make_shared<std::array<char, 512>>();
    beast::get_lowest_layer(stream_).expires_never();
    stream_.async_read_some(asio::buffer(*buf), [self = this->shared_from_this(), buf](beast::error_code ec, size_t) {
      if (self->ended_ && !self->writing_ && self->queue_.empty()) return;
      if (ec) return self->stream_failed();
      self->watch_for_close();
    });
  }

  void stream_failed() {
    if (stream_dead_) return;
    stream_dead_ = true;
    for (auto& w : queue_)
      if (w.done) w.done(false);
    queue_.clear();
    if (!ended_ && on_gone_) on_gone_();
    on_gone_ = {};
    log_stream(" (client gone)");
    beast::error_code ec;
    lowest(stream_).close(ec);
  }

  void finish_stream() {
    if (stream_dead_) return;
    stream_dead_ = true;
    on_gone_ = {};
    log_stream("");
    close();
  }

  void log_stream(const char* note) {
    --srv_.in_flight;
    double ms = std::chrono::duration<double, std::milli>(clock_type::now() - stream_log_.t0).count();
    spdlog::info("{} {} {} {:.1f}ms stream{}", stream_log_.method, stream_log_.path, stream_log_.status, ms, note);
    srv_.stats->observe(stream_log_.method, stream_log_.route, stream_log_.status, ms);
  }

  void on_handshake(beast::error_code ec) {
    if (ec) return;  // a client that cannot do TLS: nothing to answer
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(srv_.opts.max_header_bytes));
    parser_->body_limit(srv_.opts.max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(srv_.opts.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&session::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
      return close();
    if (ec) return reject(ec);
    auto& req = parser_->get();
    auto ex = std::make_shared<exchange_impl>(this->shared_from_this());
    auto& hr = ex->req;
    hr.method = std::string(req.method_string());
    hr.target = std::string(req.target());
    for (auto& f : req) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      hr.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    hr.body = std::move(req.body());
    hr.tls = !std::is_same_v<Stream, beast::tcp_stream>;
    beast::error_code aec;
    auto ep = lowest(stream_).remote_endpoint(aec);
    if (!aec) hr.remote_addr = ep.address().to_string();
    ex->keep_alive = req.keep_alive();
    ++srv_.in_flight;
    beast::get_lowest_layer(stream_).expires_never();  // the handler may take a while (exec)
    if (!split_target(hr.target, hr.path, hr.query)) {
      ex->respond(error_response(make_error(errc::bad_request, "malformed request target")));
      return;
    }
    srv_.dispatch(ex);
  }

  // A request Beast could not parse: answer once with the documented error, then close.
  void reject(beast::error_code ec) {
    error e = make_error(errc::bad_request, "malformed HTTP request: " + ec.message());
    if (ec == http::error::body_limit)
      e = make_error(errc::payload_too_large,
                     "request body exceeds " + std::to_string(srv_.opts.max_body_bytes) + " bytes");
    else if (ec == http::error::header_limit)
      e = make_error(errc::payload_too_large, "request header fields exceed " +
                                                  std::to_string(srv_.opts.max_header_bytes) + " bytes");
    ++srv_.in_flight;
    linger = std::is_same_v<Stream, beast::tcp_stream>;
    finish(error_response(e), "-", "-", "(unparsed)", clock_type::now(), false);
  }

  void on_write(beast::error_code ec, bool keep_alive) {
    --srv_.in_flight;
    if (ec) return;
    if (!keep_alive) return linger ? lingering_close() : close();
    do_read();
  }

  // After refusing a request whose body is still arriving, stop sending but keep reading (and
  // dropping) for a while: closing at once would reset the connection and the client, still
  // writing, would never see the 413 (the "lingering close" of RFC 9112 §9.6).
  void lingering_close() {
    beast::error_code ec;
    lowest(stream_).shutdown(tcp::socket::shutdown_send, ec);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    drain_some();
  }
  void drain_some() {
    if (drained_ > 256u * 1024 * 1024) return close();
    auto buf = std::make_shared<std::array<char, 65536>>();
    beast::get_lowest_layer(stream_).async_read_some(
        asio::buffer(*buf), [self = this->shared_from_this(), buf](beast::error_code ec, size_t n) {
          if (ec) return;
          self->drained_ += n;
          self->drain_some();
        });
  }

  void close() {
    beast::error_code ec;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    }
  }

  server::impl& srv_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool linger = false;
  size_t drained_ = 0;
  // streamed response state
  struct {
    std::string method, path, route;
    int status = 0;
    clock_type::time_point t0;
  } stream_log_;
  std::optional<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> stream_sr_;
  std::deque<pending_write> queue_;
  std::function<void()> on_gone_;
  bool streaming_ = false, writing_ = false, ended_ = false, stream_dead_ = false;
};

template <class Stream>
class session<Stream>::exchange_impl : public exchange {
 public:
  explicit exchange_impl(std::shared_ptr<session> s) : s_(std::move(s)) {}
  const http_request& request() const override { return req; }
  void set_route(std::string route) override { route_ = std::move(route); }
  void respond(http_response r) override {
    if (done_.exchange(true)) return;  // exactly once
    auto s = s_;
    asio::post(s->stream_.get_executor(),
               [s, r = std::move(r), m = req.method, p = req.path, route = route_, t0 = t0_,
                ka = keep_alive]() mutable { s->finish(std::move(r), m, p, route, t0, ka); });
  }
  void start_stream(int status, std::string ctype, std::vector<std::pair<std::string, std::string>> hdrs,
                    std::function<void()> on_gone) override {
    if (done_.exchange(true)) return;
    auto s = s_;
    asio::post(s->stream_.get_executor(), [s, status, ctype = std::move(ctype), hdrs = std::move(hdrs),
                                           on_gone = std::move(on_gone), m = req.method, p = req.path,
                                           route = route_, t0 = t0_]() mutable {
      s->stream_start(status, std::move(ctype), std::move(hdrs), std::move(on_gone), m, p, route, t0);
    });
  }
  void write(std::string chunk, std::function<void(bool)> done) override {
    auto s = s_;
    asio::post(s->stream_.get_executor(), [s, c = std::move(chunk), d = std::move(done)]() mutable {
      s->stream_write(std::move(c), std::move(d));
    });
  }
  void end() override {
    auto s = s_;
    asio::post(s->stream_.get_executor(), [s] { s->stream_end(); });
  }

  http_request req;
  bool keep_alive = true;

 private:
  std::shared_ptr<session> s_;
  std::string route_ = "(unmatched)";
  clock_type::time_point t0_ = clock_type::now();
  std::atomic<bool> done_{false};
};

}  // namespace

void server::impl::do_accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket sock) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      spdlog::warn("accept failed: {}", ec.message());
    } else if (tls) {
      std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(
          *this, beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(sock)), *tls))
          ->start();
    } else {
      std::make_shared<session<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(sock)))->start();
    }
    if (acceptor.is_open()) do_accept();
  });
}

void server::impl::begin_drain() {
  if (draining.exchange(true)) return;
  spdlog::info("shutting down: no new connections, finishing {} in-flight request(s)",
               in_flight.load());
  beast::error_code ec;
  acceptor.close(ec);
  auto deadline = clock_type::now() + opts.drain_timeout;
  auto timer = std::make_shared<asio::steady_timer>(ioc);
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [this, timer, deadline, poll] {
    if (in_flight.load() == 0 || clock_type::now() >= deadline) {
      if (in_flight.load() != 0) spdlog::warn("drain timeout: {} request(s) cut off", in_flight.load());
      ioc.stop();
      return;
    }
    timer->expires_after(std::chrono::milliseconds(20));
    timer->async_wait([poll](beast::error_code) { (*poll)(); });
  };
  (*poll)();
}

server::server(server_options opts, dispatch_fn dispatch, std::shared_ptr<metrics> m)
    : impl_(std::make_unique<impl>(std::move(opts), std::move(dispatch), std::move(m))) {}

server::~server() {
  stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
}

expected<uint16_t> server::start() {
  auto& o = impl_->opts;
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    if (o.tls_cert.empty() || o.tls_key.empty())
      return make_error(errc::bad_request, "TLS needs both tls_cert and tls_key");
    impl_->tls.emplace(asio::ssl::context::tls_server);
    impl_->tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    impl_->tls->use_certificate_chain_file(o.tls_cert, ec);
    if (!ec) impl_->tls->use_private_key_file(o.tls_key, asio::ssl::context::pem, ec);
    if (ec) return make_error(errc::bad_request, "cannot load TLS certificate/key: " + ec.message());
  }
  beast::error_code ec;
  auto addr = asio::ip::make_address(o.host, ec);
  if (ec) return make_error(errc::bad_request, "bad listen address \"" + o.host + "\"");
  tcp::endpoint ep(addr, o.port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(errc::unavailable, "cannot listen on " + o.host + ":" + std::to_string(o.port) +
                                             ": " + ec.message());
  impl_->signals.async_wait([this](beast::error_code e, int) {
    if (!e) impl_->begin_drain();
  });
  impl_->do_accept();
  return a.local_endpoint().port();
}

void server::run() {
  int n = std::max(1, impl_->opts.io_threads);
  for (int i = 1; i < n; ++i) impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
}

void server::stop() {
  asio::post(impl_->ioc, [this] { impl_->begin_drain(); });
}

}  // namespace warren::net
