// net/server.cpp — Beast listener and HTTP sessions (after Beast's advanced_server_flex: one
// small session class per connection, paired do_read/on_read, shared_from_this for lifetime).
// Instead of a strand per connection, each connection lives on one single-threaded event loop.
// The only translation unit that includes Beast's HTTP headers.
#include "net/server.hpp"
#include "core/ascii.hpp"
#include "core/thread_slot.hpp"

#include <algorithm>
#include <array>
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
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
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
  // One event loop per I/O thread (like nginx's workers): a connection lives on one loop for
  // its whole life, so its reads, writes and the proxy's upstream I/O never hop threads and a
  // post never has to wake another thread. `ioc` (thread 0) also runs the acceptor and drain.
  asio::io_context ioc{1};
  std::vector<std::unique_ptr<asio::io_context>> more_ioc;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> more_work;
  size_t next_loop = 0;
  std::optional<asio::ssl::context> tls;
  tcp::acceptor acceptor{ioc};
  asio::signal_set signals{ioc, SIGTERM, SIGINT};
  // Requests being handled, counted per thread slot: each I/O thread counts on its own cache
  // line. Read by the drain only.
  slot_count in_flight;
  std::atomic<bool> draining{false};
  std::vector<std::thread> threads;

  void do_accept();
  void begin_drain();
  asio::io_context& pick_loop() {
    size_t i = next_loop++ % (more_ioc.size() + 1);
    return i == 0 ? ioc : *more_ioc[i - 1];
  }
  void stop_loops() {
    ioc.stop();
    for (auto& c : more_ioc) c->stop();
  }
};

namespace {

template <class Stream>
tcp::socket::lowest_layer_type& lowest(Stream& s) { return beast::get_lowest_layer(s).socket(); }

template <class Stream>
constexpr bool is_plain = std::is_same_v<Stream, beast::tcp_stream>;

using header_list = std::vector<std::pair<std::string, std::string>>;

// ---------------------------------------------------------------------------------------------
// A WebSocket taken over from an HTTP session.
template <class Stream>
class ws_session : public websocket, public std::enable_shared_from_this<ws_session<Stream>> {
 public:
  ws_session(Stream s, size_t max_message) : ws_(std::move(s)) { ws_.read_message_max(max_message); }

  void accept(http::request<http::empty_body> req,
              std::function<websocket_callbacks(std::shared_ptr<websocket>)> on_open) {
    ws_.set_option(beast::websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(beast::websocket::stream_base::decorator([](beast::websocket::response_type& r) {
      r.set(http::field::server, "warren/" WARREN_VERSION);
    }));
    ws_.async_accept(req, [self = this->shared_from_this(), on_open](beast::error_code ec) {
      if (ec) return;
      self->cb_ = on_open(self);
      self->reading_ = true;
      self->do_read();
    });
  }

  void send_text(std::string msg, std::function<void(bool)> done) override { enqueue(true, std::move(msg), std::move(done)); }
  void send_binary(std::string msg, std::function<void(bool)> done) override { enqueue(false, std::move(msg), std::move(done)); }

  void close(uint16_t code, std::string reason) override {
    asio::post(ws_.get_executor(), [self = this->shared_from_this(), code, reason]() {
      if (self->closing_) return;
      self->closing_ = true;
      self->close_code_ = beast::websocket::close_reason(static_cast<beast::websocket::close_code>(code), reason);
      self->pump();
    });
  }
  void pause_reading() override {
    asio::post(ws_.get_executor(), [self = this->shared_from_this()] { self->paused_ = true; });
  }
  void resume_reading() override {
    asio::post(ws_.get_executor(), [self = this->shared_from_this()] {
      self->paused_ = false;
      if (!self->read_pending_ && !self->dead_) self->do_read();
    });
  }

 private:
  struct out_msg {
    bool text;
    std::string data;
    std::function<void(bool)> done;
  };

  void enqueue(bool text, std::string msg, std::function<void(bool)> done) {
    asio::post(ws_.get_executor(), [self = this->shared_from_this(), text, m = std::move(msg), d = std::move(done)]() mutable {
      if (self->dead_ || self->closing_) {
        if (d) d(false);
        return;
      }
      self->out_.push_back({text, std::move(m), std::move(d)});
      self->pump();
    });
  }

  void pump() {
    if (writing_ || dead_) return;
    if (out_.empty()) {
      if (closing_ && !close_sent_) {
        close_sent_ = true;
        writing_ = true;
        ws_.async_close(close_code_, [self = this->shared_from_this()](beast::error_code) {
          self->writing_ = false;
          self->gone();
        });
      }
      return;
    }
    writing_ = true;
    auto m = std::make_shared<out_msg>(std::move(out_.front()));
    out_.pop_front();
    ws_.text(m->text);
    ws_.async_write(asio::buffer(m->data), [self = this->shared_from_this(), m](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (m->done) m->done(!ec);
      if (ec) return self->gone();
      self->pump();
    });
  }

  void do_read() {
    if (paused_ || dead_) return;
    read_pending_ = true;
    ws_.async_read(in_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->read_pending_ = false;
      if (ec) return self->gone();
      auto data = beast::buffers_to_string(self->in_.data());
      self->in_.consume(self->in_.size());
      bool text = self->ws_.got_text();
      if (text && self->cb_.on_text) self->cb_.on_text(std::move(data));
      else if (!text && self->cb_.on_binary) self->cb_.on_binary(std::move(data));
      self->do_read();
    });
  }

  void gone() {
    if (dead_) return;
    dead_ = true;
    for (auto& m : out_)
      if (m.done) m.done(false);
    out_.clear();
    auto on_close = std::move(cb_.on_close);
    cb_ = {};  // break cycles: the callbacks usually hold this socket
    if (on_close) on_close();
    beast::error_code ec;
    lowest(ws_.next_layer()).close(ec);
  }

  beast::websocket::stream<Stream> ws_;
  beast::flat_buffer in_;
  websocket_callbacks cb_;
  std::deque<out_msg> out_;
  beast::websocket::close_reason close_code_;
  bool writing_ = false, reading_ = false, read_pending_ = false, paused_ = false;
  bool closing_ = false, close_sent_ = false, dead_ = false;
};

// ---------------------------------------------------------------------------------------------
// A raw connection taken over after an HTTP exchange.
template <class Stream>
class raw_session : public raw_conn, public std::enable_shared_from_this<raw_session<Stream>> {
 public:
  raw_session(Stream s, std::string leftover) : s_(std::move(s)), leftover_(std::move(leftover)) {
    beast::get_lowest_layer(s_).expires_never();
  }
  void read(std::function<void(expected<std::string>)> done) override {
    asio::post(s_.get_executor(), [self = this->shared_from_this(), done = std::move(done)]() mutable {
      if (!self->leftover_.empty()) return done(std::exchange(self->leftover_, {}));
      auto buf = std::make_shared<std::array<char, 65536>>();
      self->s_.async_read_some(asio::buffer(*buf), [buf, done](beast::error_code ec, size_t n) {
        if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) return done(std::string());
        if (ec) return done(make_error(errc::unavailable, "client connection: " + ec.message()));
        done(std::string(buf->data(), n));
      });
    });
  }
  void write(std::string bytes, std::function<void(bool)> done) override {
    asio::post(s_.get_executor(), [self = this->shared_from_this(), b = std::make_shared<std::string>(std::move(bytes)),
                                   done = std::move(done)]() mutable {
      asio::async_write(self->s_, asio::buffer(*b), [b, done](beast::error_code ec, size_t) {
        if (done) done(!ec);
      });
    });
  }
  void shutdown_write() override {
    asio::post(s_.get_executor(), [self = this->shared_from_this()] {
      beast::error_code ec;
      if constexpr (is_plain<Stream>) lowest(self->s_).shutdown(tcp::socket::shutdown_send, ec);
      else self->s_.async_shutdown([self](beast::error_code) {});
    });
  }
  void close() override {
    asio::post(s_.get_executor(), [self = this->shared_from_this()] {
      beast::error_code ec;
      lowest(self->s_).close(ec);
    });
  }

 private:
  Stream s_;
  std::string leftover_;
};

// ---------------------------------------------------------------------------------------------
// A request as Beast parses it (Beast does the parsing and the RFC 9112 checks: framing,
// smuggling, limits), written straight into an http_request: no Beast field container in
// between. After the head, the same parser reads the body: whole (collect) or a piece per read.
class request_reader : public http::basic_parser<true> {
 public:
  http_request req;
  bool expects_continue = false;
  std::string body;  // collect: the body so far; pieces: what the last read parsed

  request_reader() { req.headers.reserve(16); }

 private:
  void on_request_impl(http::verb, beast::string_view method, beast::string_view target, int,
                       beast::error_code&) override {
    req.method.assign(method.data(), method.size());
    req.target.assign(target.data(), target.size());
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
  void on_field_impl(http::field f, beast::string_view name, beast::string_view value, beast::error_code&) override {
    req.headers.emplace_back(ascii_lower(std::string_view(name.data(), name.size())),
                             std::string(value.data(), value.size()));
    if (f == http::field::expect && beast::iequals(value, "100-continue")) expects_continue = true;
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view b, beast::error_code&) override {
    body.append(b.data(), b.size());
    return b.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view b, beast::error_code&) override {
    body.append(b.data(), b.size());
    return b.size();
  }
  void on_finish_impl(beast::error_code&) override {}
};

// ---------------------------------------------------------------------------------------------
// One HTTP connection. Stream is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
 public:
  session(server::impl& srv, asio::io_context& loop, Stream stream) : srv_(srv), loop_(loop), stream_(std::move(stream)) {}
  asio::io_context& loop() { return loop_; }

  void start() {
    if constexpr (is_plain<Stream>) {
      do_read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(15));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              beast::bind_front_handler(&session::on_handshake, this->shared_from_this()));
    }
  }

  class exchange_impl;

  // --- the exchange's operations, all on this session's loop ---

  void read_full_body(std::shared_ptr<exchange_impl> ex, size_t limit, std::function<void()> done) {
    if (!body_pending_) return done();
    // The header parser ran without a limit (routes differ); a declared length is checked here,
    // before a byte of the body is read. A chunked body is checked as it arrives.
    if (auto n = reader_->content_length(); n && *n > limit)
      return ex->respond(error_response(make_error(
          errc::payload_too_large, "request body exceeds " + std::to_string(limit) + " bytes")));
    expect_continue([self = this->shared_from_this(), ex, limit, done = std::move(done)] {
      self->reader_->body_limit(limit);
      self->reader_->eager(true);
      http::async_read(self->stream_, self->buffer_, *self->reader_,
                       [self, ex, limit, done](beast::error_code ec, size_t) {
                         if (ec == http::error::body_limit) {
                           self->body_pending_ = true;  // unread: linger so the 413 is seen
                           return ex->respond(error_response(make_error(
                               errc::payload_too_large, "request body exceeds " + std::to_string(limit) + " bytes")));
                         }
                         if (ec) return self->broken(ex);
                         self->body_pending_ = false;
                         ex->req.body = std::move(self->reader_->body);
                         done();
                       });
    });
  }

  void read_chunk(std::shared_ptr<exchange_impl> ex, std::function<void(expected<std::string>)> done) {
    if (!body_pending_) return done(std::string());
    if (!streaming_body_) {
      return expect_continue([self = this->shared_from_this(), ex, done = std::move(done)]() mutable {
        self->streaming_body_ = true;
        self->reader_->body_limit(boost::none);  // uploads are streamed, not held: no cap
        self->reader_->eager(true);
        // Beast reads only as much as the buffer's free capacity (512 bytes at first): give it
        // room, or a streamed upload crawls through the daemon in 512-byte reads.
        self->buffer_.reserve(256 * 1024);
        self->read_chunk(ex, std::move(done));
      });
    }
    reader_->body.clear();
    http::async_read_some(stream_, buffer_, *reader_,
                          [self = this->shared_from_this(), ex, done = std::move(done)](beast::error_code ec, size_t) mutable {
                            if (ec) {
                              done(make_error(errc::bad_request, "request body: " + ec.message()));
                              return self->broken(ex);
                            }
                            if (self->reader_->is_done()) self->body_pending_ = false;
                            if (self->reader_->body.empty() && self->body_pending_)
                              return self->read_chunk(ex, std::move(done));
                            done(std::exchange(self->reader_->body, {}));
                          });
  }

  // Completes the current exchange with a whole response: the head is written here (one
  // string, no Beast fields container or serializer: this is the hot path of every API call
  // and proxied small response), then head and body leave in one gathered write.
  void finish(http_response r, const exchange_impl& ex) {
    bool reusable = ex.keep_alive && !srv_.draining && !body_pending_;
    bool bodyless = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    auto& head = head_buf_;  // reused: its capacity stays with the connection
    head.clear();
    head.reserve(160 + r.content_type.size() + r.headers.size() * 48);
    head += "HTTP/1.1 ";
    head += std::to_string(r.status);
    head += ' ';
    auto code = http::int_to_status(static_cast<unsigned>(r.status));
    auto reason = code == http::status::unknown ? beast::string_view("Unknown") : http::obsolete_reason(code);
    head.append(reason.data(), reason.size());
    head += "\r\nServer: warren/" WARREN_VERSION "\r\n";
    auto field = [&head](std::string_view k, std::string_view v) {
      // A value with CR or LF would split the head (response splitting): never written. (One
      // pass per string: find_first_of("\r\n") would call memchr once per character.)
      auto splits = [](std::string_view s, bool colon) {
        return std::any_of(s.begin(), s.end(), [colon](char c) { return c == '\r' || c == '\n' || (colon && c == ':'); });
      };
      if (splits(k, true) || splits(v, false)) return;
      head.append(k);
      head.append(": ", 2);
      head.append(v);
      head.append("\r\n", 2);
    };
    if (!r.content_type.empty()) field("Content-Type", r.content_type);
    for (auto& [k, v] : r.headers) field(k, v);
    if (!bodyless) field("Content-Length", std::to_string(r.body.size()));
    if (!reusable) head += "Connection: close\r\n";
    head += "\r\n";
    // HEAD: the length of what GET would send, no body (RFC 9110 §9.3.2).
    std::string body;
    if (!bodyless && ex.req.method != "HEAD") body = std::move(r.body);
    log(ex, r.status, "");
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
    size_t sent = 0;
    if constexpr (is_plain<Stream>) {
      // Most responses fit the socket buffer: hand them to the kernel now, and go on without a
      // completion round trip through the loop. What it does not take goes async.
      beast::error_code ec;
      auto& sock = stream_.socket();
      if (!sock.non_blocking()) sock.non_blocking(true, ec);
      if (!ec) sent = sock.write_some(bufs, ec);
      if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return;  // the client is gone
      if (sent == head.size() + body.size()) return after_response(reusable);
    }
    auto out = std::make_shared<std::pair<std::string, std::string>>(std::move(head_buf_), std::move(body));
    bufs = {asio::buffer(out->first), asio::buffer(out->second)};
    beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(bufs);
    rest.consume(sent);
    asio::async_write(stream_, rest,
                      [self = this->shared_from_this(), out, reusable](beast::error_code ec, size_t) {
                        if (ec) return;
                        self->after_response(reusable);
                      });
  }

  void after_response(bool reusable) {
    // The next request is read after the loop's other ready work: a client answered just now
    // has not sent it yet, so reading at once would only cost a recv that finds nothing. Later,
    // it is often there already, and the read then needs no wait for the socket at all.
    if (reusable) return asio::post(loop_, [self = this->shared_from_this()] { self->do_read(); });
    body_pending_ ? lingering_close() : close();
  }

  void stream_start(std::shared_ptr<exchange_impl> ex, int status, std::string ctype, header_list hdrs,
                    std::function<void()> on_gone, stream_options opts) {
    stream_ex_ = ex;
    stream_opts_ = opts;
    on_gone_ = std::move(on_gone);
    stream_status_ = status;
    stream_head_.emplace();
    auto& h = *stream_head_;
    h.version(11);
    h.result(static_cast<http::status>(status));
    h.set(http::field::server, "warren/" WARREN_VERSION);
    if (!ctype.empty()) h.set(http::field::content_type, ctype);
    for (auto& [k, v] : hdrs) h.insert(k, v);
    h.keep_alive(opts.keep_alive && !srv_.draining);
    if (opts.no_body) {
      chunked_ = false;
    } else if (opts.content_length) {
      h.content_length(*opts.content_length);
      chunked_ = false;
    } else {
      h.chunked(true);
      chunked_ = true;
    }
    stream_sr_.emplace(h);
    streaming_ = true;
    writing_ = true;
    http::async_write_header(stream_, *stream_sr_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->stream_failed();
      if (self->stream_opts_.watch_client && !self->body_pending_) self->watch_for_close();
      self->pump();
    });
  }

  void stream_write(std::string chunk, std::function<void(bool)> done) {
    if (!streaming_ || stream_dead_ || ended_) {
      if (done) done(false);
      return;
    }
    if (chunk.empty()) {
      if (done) done(true);
      return;
    }
    if (chunked_) {
      char head[32];
      int n = std::snprintf(head, sizeof head, "%zx\r\n", chunk.size());
      chunk = std::string(head, n) + std::move(chunk) + "\r\n";
    }
    queue_.push_back({std::move(chunk), std::move(done)});
    pump();
  }

  void stream_end() {
    if (!streaming_ || stream_dead_ || ended_) return;
    ended_ = true;
    if (chunked_) queue_.push_back({"0\r\n\r\n", {}});
    pump();
  }

  void upgrade_websocket(std::shared_ptr<exchange_impl> ex,
                         std::function<websocket_callbacks(std::shared_ptr<websocket>)> on_open, size_t max_message) {
    log(*ex, 101, " websocket");  // long-lived: a drain does not wait for it
    beast::get_lowest_layer(stream_).expires_never();
    auto ws = std::make_shared<ws_session<Stream>>(std::move(stream_), max_message);
    http::request<http::empty_body> req;  // what Beast's handshake checks, from the parsed request
    req.version(11);
    req.method_string(ex->req.method);
    req.target(ex->req.target);
    for (auto& [k, v] : ex->req.headers) req.insert(k, v);
    ws->accept(std::move(req), std::move(on_open));
  }

  void take_over(std::shared_ptr<exchange_impl> ex, std::string head,
                 std::function<void(std::shared_ptr<raw_conn>)> on_taken) {
    log(*ex, 101, " raw");
    auto h = std::make_shared<std::string>(std::move(head));
    asio::async_write(stream_, asio::buffer(*h), [self = this->shared_from_this(), h, on_taken](beast::error_code ec, size_t) {
      if (ec) return;
      auto left = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      on_taken(std::make_shared<raw_session<Stream>>(std::move(self->stream_), std::move(left)));
    });
  }

  // A response that cannot be completed: close the connection (the client sees it cut off).
  void abort_exchange(std::shared_ptr<exchange_impl> ex) {
    if (streaming_) return stream_failed();
    log(*ex, 502, " (aborted)");
    beast::error_code ec;
    lowest(stream_).close(ec);
  }

  Stream& stream() { return stream_; }

 private:
  struct pending_write {
    std::string bytes;
    std::function<void(bool)> done;
  };

  void on_handshake(beast::error_code ec) {
    if (ec) return;  // a client that cannot do TLS: nothing to answer
    beast::get_lowest_layer(stream_).expires_never();  // from here on the idle timer watches
    do_read();
  }

  // A connection waiting for its next request head (or receiving it slowly) is closed after
  // idle_timeout. One lazy timer per connection: a request only moves the deadline, and the
  // timer re-arms itself when it fires early — no timer operation (or timerfd syscall) per request.
  void wait_for_request() {
    waiting_ = true;
    idle_deadline_ = clock_type::now() + srv_.opts.idle_timeout;
    if (!idle_armed_) arm_idle();
  }
  void arm_idle() {
    idle_armed_ = true;
    idle_timer_.expires_at(idle_deadline_);
    idle_timer_.async_wait([weak = this->weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (!self) return;
      self->idle_armed_ = false;
      if (ec || !self->waiting_) return;  // busy with a request: re-armed at the next one
      if (clock_type::now() < self->idle_deadline_) return self->arm_idle();
      beast::error_code ig;
      lowest(self->stream_).close(ig);  // the pending read ends (operation_aborted → close)
    });
  }

  void do_read() {
    reader_.emplace();
    streaming_ = writing_ = ended_ = stream_dead_ = streaming_body_ = false;
    body_pending_ = false;
    reader_->header_limit(static_cast<uint32_t>(srv_.opts.max_header_bytes));
    reader_->body_limit(boost::none);  // each route sets its own when it reads the body
    wait_for_request();
    parse_head();
  }

  // The request head: what is buffered is parsed first (the client may have sent it already);
  // then one read at a time until Beast's parser has the whole head. This is
  // http::async_read_header without its layers of composed operations: it runs per request.
  void parse_head() {
    if (buffer_.size() > 0) {
      beast::error_code ec;
      buffer_.consume(reader_->put(buffer_.data(), ec));
      if (ec && ec != http::error::need_more) return on_header(ec);
      if (reader_->is_header_done()) return on_header({});
    }
    auto space = buffer_.prepare(beast::read_size(buffer_, 65536));
    auto on_read = [self = this->shared_from_this()](beast::error_code ec, size_t n) {
      if (ec && ec == asio::error::eof) {  // `ec &&` first: comparing codes costs, success is the rule
        if (!self->reader_->got_some()) return self->on_header(http::error::end_of_stream);
        self->reader_->put_eof(ec);
        return self->on_header(ec ? ec : beast::error_code(http::error::partial_message));
      }
      if (ec) return self->on_header(ec);
      self->buffer_.commit(n);
      self->parse_head();
    };
    if constexpr (is_plain<Stream>) stream_.socket().async_read_some(space, std::move(on_read));
    else stream_.async_read_some(space, std::move(on_read));
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
          ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
        return close();
      return reject(ec);
    }
    auto ex = std::make_shared<exchange_impl>(this->shared_from_this());
    auto& hr = ex->req;
    hr = std::move(reader_->req);
    hr.tls = !is_plain<Stream>;
    if (!peer_known_) {  // once per connection, not per request
      beast::error_code aec;
      auto ep = lowest(stream_).remote_endpoint(aec);
      if (!aec) peer_ = ep.address().to_string();
      peer_known_ = true;
    }
    hr.remote_addr = peer_;
    ex->keep_alive = reader_->keep_alive();
    body_pending_ = !reader_->is_done();
    srv_.in_flight.add(1);
    waiting_ = false;  // the handler may take a while (exec): no idle timeout now
    if (!split_target(hr.target, hr.path, hr.query)) {
      ex->respond(error_response(make_error(errc::bad_request, "malformed request target")));
      return;
    }
    srv_.dispatch(ex);
  }

  // 100-continue (RFC 9110 §10.1.1): a client that asked waits for it before sending the body.
  void expect_continue(std::function<void()> then) {
    if (!reader_->expects_continue) return then();
    auto msg = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
    asio::async_write(stream_, asio::buffer(*msg), [self = this->shared_from_this(), msg, then](beast::error_code ec, size_t) {
      if (ec) return self->close();
      then();
    });
  }

  // A request Beast could not parse: answer once with the documented error, then close.
  void reject(beast::error_code ec) {
    error e = make_error(errc::bad_request, "malformed HTTP request: " + ec.message());
    if (ec == http::error::header_limit)
      e = make_error(errc::payload_too_large, "request header fields exceed " +
                                                  std::to_string(srv_.opts.max_header_bytes) + " bytes");
    srv_.in_flight.add(1);
    exchange_impl ex(this->shared_from_this());
    ex.req.method = "-";
    ex.req.path = "-";
    ex.keep_alive = false;
    body_pending_ = is_plain<Stream>;  // linger: the client may still be sending
    finish(error_response(e), ex);
  }

  void broken(const std::shared_ptr<exchange_impl>& ex) {
    ex->mark_done();
    log(*ex, 400, " (broken body)");
    close();
  }

  // One line per request; also where the request stops counting as in flight.
  void log(const exchange_impl& ex, int status, const char* note) {
    srv_.in_flight.add(-1);
    double ms = std::chrono::duration<double, std::milli>(clock_type::now() - ex.t0).count();
    spdlog::log(ex.quiet ? spdlog::level::debug : spdlog::level::info, "{} {} {} {:.1f}ms{}", ex.req.method,
                ex.req.path, status, ms, note);
    srv_.stats->observe(ex.req.method, ex.route, status, ms);
  }

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

  // While streaming, the client sends nothing more; a read that ends means it left.
  void watch_for_close() {
    auto buf = std::make_shared<std::array<char, 512>>();
    stream_.async_read_some(asio::buffer(*buf), [self = this->shared_from_this(), buf](beast::error_code ec, size_t) {
      if (self->stream_dead_) return;
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
    auto gone = std::move(on_gone_);
    on_gone_ = {};
    if (!ended_ && gone) gone();
    if (stream_ex_) log(*stream_ex_, stream_status_, " stream (client gone)");
    stream_ex_.reset();
    beast::error_code ec;
    lowest(stream_).close(ec);
  }

  void finish_stream() {
    if (stream_dead_) return;
    stream_dead_ = true;
    on_gone_ = {};
    if (stream_ex_) log(*stream_ex_, stream_status_, " stream");
    bool reusable = stream_opts_.keep_alive && !srv_.draining && !body_pending_ && stream_ex_ && stream_ex_->keep_alive;
    stream_ex_.reset();
    if (reusable && !stream_opts_.watch_client) return do_read();
    close();
  }

  // After refusing a request whose body is still arriving, stop sending but keep reading (and
  // dropping) for a while: closing at once would reset the connection and the client, still
  // writing, would never see the error (the "lingering close" of RFC 9112 §9.6).
  void lingering_close() {
    if constexpr (!is_plain<Stream>) return close();
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
    if constexpr (is_plain<Stream>) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    }
  }

  server::impl& srv_;
  asio::io_context& loop_;
  asio::steady_timer idle_timer_{loop_};
  clock_type::time_point idle_deadline_;
  bool waiting_ = false, idle_armed_ = false;
  std::string peer_;  // the client's address
  bool peer_known_ = false;
  std::string head_buf_;  // the head of the response being written (finish)
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<request_reader> reader_;  // the current request: head, then body
  bool streaming_body_ = false;           // read_chunk has started on the body
  bool body_pending_ = false;
  size_t drained_ = 0;
  // streamed response state
  std::shared_ptr<exchange_impl> stream_ex_;
  stream_options stream_opts_;
  int stream_status_ = 0;
  std::optional<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> stream_sr_;
  std::deque<pending_write> queue_;
  std::function<void()> on_gone_;
  bool streaming_ = false, writing_ = false, ended_ = false, stream_dead_ = false, chunked_ = true;
};

// The handler's view of one request. Every operation runs on the session's loop.
template <class Stream>
class session<Stream>::exchange_impl : public exchange, public std::enable_shared_from_this<exchange_impl> {
 public:
  explicit exchange_impl(std::shared_ptr<session> s) : s_(std::move(s)) {}
  const http_request& request() const override { return req; }
  void set_route(std::string r) override { route = std::move(r); }
  void set_quiet() override { quiet = true; }
  asio::io_context* io() const override { return &s_->loop(); }

  void read_body(size_t limit, std::function<void()> done) override {
    on_strand([limit, done = std::move(done)](auto& s, auto self) mutable { s.read_full_body(self, limit, std::move(done)); });
  }
  void read_body_chunk(std::function<void(expected<std::string>)> done) override {
    on_strand([done = std::move(done)](auto& s, auto self) mutable { s.read_chunk(self, std::move(done)); });
  }
  void respond(http_response r) override {
    if (done_.exchange(true)) return;
    on_strand([r = std::move(r)](auto& s, auto self) mutable { s.finish(std::move(r), *self); });
  }
  void start_stream(int status, std::string ctype, header_list hdrs, std::function<void()> on_gone,
                    stream_options opts) override {
    if (done_.exchange(true)) return;
    on_strand([=, ctype = std::move(ctype), hdrs = std::move(hdrs), on_gone = std::move(on_gone)](auto& s, auto self) mutable {
      s.stream_start(self, status, std::move(ctype), std::move(hdrs), std::move(on_gone), opts);
    });
  }
  void write(std::string chunk, std::function<void(bool)> done) override {
    on_strand([c = std::move(chunk), d = std::move(done)](auto& s, auto) mutable { s.stream_write(std::move(c), std::move(d)); });
  }
  void end() override {
    on_strand([](auto& s, auto) { s.stream_end(); });
  }
  void accept_websocket(std::function<websocket_callbacks(std::shared_ptr<websocket>)> on_open, size_t max) override {
    if (done_.exchange(true)) return;
    on_strand([on_open = std::move(on_open), max](auto& s, auto self) mutable { s.upgrade_websocket(self, std::move(on_open), max); });
  }
  void hijack(std::string head, std::function<void(std::shared_ptr<raw_conn>)> on_taken) override {
    if (done_.exchange(true)) return;
    on_strand([h = std::move(head), t = std::move(on_taken)](auto& s, auto self) mutable { s.take_over(self, std::move(h), std::move(t)); });
  }
  void abort() override {
    done_ = true;
    on_strand([](auto& s, auto self) { s.abort_exchange(self); });
  }
  void mark_done() { done_ = true; }

  http_request req;
  bool keep_alive = true;
  std::string route = "(unmatched)";
  bool quiet = false;
  clock_type::time_point t0 = clock_type::now();

 private:
  template <class F>
  void on_strand(F f) {
    // Inline when already on the connection's loop (the proxy's upstream callbacks, most
    // handlers); queued from any other thread. The loop's single thread is what serializes.
    // The inline case is checked here rather than left to asio::dispatch: that would wrap `f`
    // in a type-erased function object first, on every proxied response.
    if (s_->loop().get_executor().running_in_this_thread()) return f(*s_, this->shared_from_this());
    auto s = s_;
    auto self = this->shared_from_this();
    asio::dispatch(s->stream().get_executor(), [s, self, f = std::move(f)]() mutable { f(*s, self); });
  }
  std::shared_ptr<session> s_;
  std::atomic<bool> done_{false};
};

}  // namespace

void server::impl::do_accept() {
  auto& loop = pick_loop();
  // No strand: each loop is run by exactly one thread, which already serializes a connection.
  acceptor.async_accept(loop.get_executor(), [this, &loop](beast::error_code ec, tcp::socket sock) {
    // Streamed responses go out as a head then chunks: no Nagle delay between them.
    if (!ec) sock.set_option(tcp::no_delay(true), ec);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      spdlog::warn("accept failed: {}", ec.message());
    } else if (tls) {
      auto s = std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(
          *this, loop, beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(sock)), *tls));
      asio::dispatch(s->stream().get_executor(), [s] { s->start(); });  // on the connection's own loop
    } else {
      auto s = std::make_shared<session<beast::tcp_stream>>(*this, loop, beast::tcp_stream(std::move(sock)));
      asio::dispatch(s->stream().get_executor(), [s] { s->start(); });
    }
    if (acceptor.is_open()) do_accept();
  });
}

void server::impl::begin_drain() {
  if (draining.exchange(true)) return;
  spdlog::info("shutting down: no new connections, finishing {} in-flight request(s)",
               in_flight.sum());
  beast::error_code ec;
  acceptor.close(ec);
  auto deadline = clock_type::now() + opts.drain_timeout;
  auto timer = std::make_shared<asio::steady_timer>(ioc);
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [this, timer, deadline, poll] {
    if (in_flight.sum() == 0 || clock_type::now() >= deadline) {
      if (in_flight.sum() != 0) spdlog::warn("drain timeout: {} request(s) cut off", in_flight.sum());
      stop_loops();
      return;
    }
    timer->expires_after(std::chrono::milliseconds(20));
    timer->async_wait([poll](beast::error_code) { (*poll)(); });
  };
  (*poll)();
}

server::server(server_options opts, dispatch_fn dispatch, std::shared_ptr<metrics> m)
    : impl_(std::make_unique<impl>(std::move(opts), std::move(dispatch), std::move(m))) {
  for (int i = 1; i < std::max(1, impl_->opts.io_threads); ++i) {
    impl_->more_ioc.push_back(std::make_unique<asio::io_context>(1));
    impl_->more_work.push_back(asio::make_work_guard(*impl_->more_ioc.back()));
  }
}

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
  for (auto& c : impl_->more_ioc) impl_->threads.emplace_back([&c] { c->run(); });
  impl_->ioc.run();
  impl_->stop_loops();
  impl_->more_work.clear();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
}

void server::stop() {
  asio::post(impl_->ioc, [this] { impl_->begin_drain(); });
}


}  // namespace warren::net
