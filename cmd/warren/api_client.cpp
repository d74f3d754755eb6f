// cmd/warren/api_client.cpp — the CLI's HTTP/WebSocket client on Boost.Beast (synchronous
// requests over one kept-alive connection; the terminal runs a small asio loop). The only CLI
// file that includes Beast; never prints anything itself — callers decide what the user sees.
#include "cmd/warren/api_client.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <deque>
#include <optional>

namespace warren::cmd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr size_t chunk_bytes = 1 << 20;
constexpr const char* user_agent = "warren-cli/" WARREN_VERSION;

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

struct endpoint {
  std::string host, port, prefix;
};

expected<endpoint> parse_url(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (url.rfind("https://", 0) == 0)
    return make_error(errc::bad_request, "the CLI speaks plain http only; " + url +
                                             " is https (use a local http listener or the SDK)");
  if (url.rfind(scheme, 0) != 0) return make_error(errc::bad_request, "API URL must start with http://: " + url);
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  endpoint e;
  e.prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
  auto hostport = rest.substr(0, slash);
  auto colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']', colon) == std::string::npos) {
    e.host = hostport.substr(0, colon);
    e.port = hostport.substr(colon + 1);
  } else {
    e.host = hostport;
    e.port = "80";
  }
  if (e.host.size() > 1 && e.host.front() == '[') e.host = e.host.substr(1, e.host.size() - 2);
  if (e.host.empty()) return make_error(errc::bad_request, "API URL has no host: " + url);
  return e;
}

error transport_error(const beast::error_code& ec, const std::string& url, const char* what) {
  if (ec == beast::error::timeout) return make_error(errc::timeout, std::string("no answer from ") + url + " (" + what + ")");
  return make_error(errc::unavailable, std::string("cannot ") + what + " " + url + ": " + ec.message());
}

bool stale_connection(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof;
}

// Splits a text/event-stream into events as bytes arrive (WHATWG HTML §9.2).
struct sse_parser {
  std::string buf, event, data;
  bool has_data = false;
  template <class F>
  bool feed(const char* p, size_t n, F&& on_event) {
    buf.append(p, n);
    size_t start = 0, nl;
    while ((nl = buf.find('\n', start)) != std::string::npos) {
      std::string line = buf.substr(start, nl - start);
      start = nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) {
        if (has_data || !event.empty())
          if (!on_event(event.empty() ? std::string("message") : event, data)) return false;
        event.clear(), data.clear(), has_data = false;
        continue;
      }
      if (line[0] == ':') continue;
      auto colon = line.find(':');
      auto name = line.substr(0, colon);
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
      if (name == "event") event = value;
      else if (name == "data") data += (has_data ? "\n" : "") + value, has_data = true;
    }
    buf.erase(0, start);
    return true;
  }
};

}  // namespace

struct api_client::impl {
  asio::io_context ioc;
  endpoint ep;
  std::string url, auth;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buf;

  status connect(double timeout_s) {
    if (stream) return ok();
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto results = resolver.resolve(ep.host, ep.port, ec);
    if (ec) return transport_error(ec, url, "resolve");
    stream.emplace(ioc);
    stream->expires_after(ms(timeout_s));
    stream->connect(results, ec);
    if (ec) {
      stream.reset();
      return transport_error(ec, url, "connect to");
    }
    buf.clear();
    return ok();
  }

  void drop() {
    if (!stream) return;
    beast::error_code ignored;
    stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.reset();
  }

  template <class Req>
  void decorate(Req& req, std::string_view content_type) {
    req.set(http::field::host, ep.host + ":" + ep.port);
    req.set(http::field::user_agent, user_agent);
    if (!auth.empty()) req.set(http::field::authorization, auth);
    if (!content_type.empty()) req.set(http::field::content_type, content_type);
  }

  // Reads a response's body after its header, chunk by chunk, into `sink`.
  template <class Parser>
  status read_body(Parser& p, double timeout_s, const std::function<bool(const char*, size_t)>& sink) {
    std::vector<char> chunk(chunk_bytes);
    while (!p.is_done()) {
      p.get().body().data = chunk.data();
      p.get().body().size = chunk.size();
      stream->expires_after(ms(timeout_s));
      beast::error_code ec;
      http::read(*stream, buf, p, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return drop(), transport_error(ec, url, "read from");
      size_t n = chunk.size() - p.get().body().size;
      if (n && !sink(chunk.data(), n)) return drop(), ok();  // the caller stopped early
    }
    return ok();
  }

  // Sends `req` (fully serialized by `send`) and reads the header of the answer into `p`,
  // retrying once on a kept-alive connection the server had closed meanwhile.
  template <class Parser, class Send>
  status exchange(std::optional<Parser>& p, double timeout_s, bool retryable, Send&& send) {
    for (int attempt = 0;; ++attempt) {
      p.emplace();
      p->body_limit(boost::none);
      bool reused = stream.has_value();
      if (auto st = connect(timeout_s); !st) return st;
      stream->expires_after(ms(timeout_s));
      beast::error_code ec = send();
      if (!ec || ec == asio::error::broken_pipe) {  // a refused upload may still carry an answer
        stream->expires_after(ms(timeout_s));
        http::read_header(*stream, buf, *p, ec);
        if (!ec) return ok();
      }
      drop();
      if (reused && retryable && attempt == 0 && stale_connection(ec)) continue;
      return transport_error(ec, url, "talk to");
    }
  }

  // exchange() for a request Beast serializes whole (no upload body streaming).
  template <class Parser, class Req>
  status send_whole(std::optional<Parser>& p, double timeout_s, Req& req) {
    return exchange(p, timeout_s, true, [&] {
      beast::error_code ec;
      http::write(*stream, req, ec);
      return ec;
    });
  }

  template <class Parser>
  expected<api_response> finish(Parser& p, double timeout_s, const std::function<bool(const char*, size_t)>* ok_sink) {
    api_response r;
    r.status = static_cast<int>(p.get().result_int());
    r.content_type = std::string(p.get()[http::field::content_type]);
    bool keep = p.get().keep_alive();
    auto collect = [&](const char* d, size_t n) { return r.body.append(d, n), true; };
    status st = (r.ok() && ok_sink) ? read_body(p, timeout_s, *ok_sink) : read_body(p, timeout_s, collect);
    if (!st) return st.err();
    if (!keep) drop();
    return r;
  }
};

api_client::api_client(api_config cfg) : cfg_(std::move(cfg)), impl_(std::make_unique<impl>()) {
  impl_->url = cfg_.url;
  if (!cfg_.key.empty()) impl_->auth = "Bearer " + cfg_.key;
}

api_client::~api_client() = default;

expected<api_response> api_client::request(std::string_view method, std::string_view target,
                                           std::string_view body, double timeout_s) {
  auto ep = parse_url(cfg_.url);
  if (!ep) return ep.err();
  impl_->ep = *ep;
  http::request<http::string_body> req{http::string_to_verb(method), ep->prefix + std::string(target), 11};
  impl_->decorate(req, body.empty() ? "" : "application/json");
  req.body() = std::string(body);
  req.prepare_payload();
  std::optional<http::response_parser<http::buffer_body>> p;
  auto st = impl_->send_whole(p, timeout_s, req);
  if (!st) return st.err();
  return impl_->finish(*p, timeout_s, nullptr);
}

expected<api_response> api_client::upload(std::string_view target, uint64_t size,
                                          const std::function<size_t(char*, size_t)>& read,
                                          const progress_fn& progress) {
  auto ep = parse_url(cfg_.url);
  if (!ep) return ep.err();
  impl_->ep = *ep;
  constexpr double timeout_s = 300;
  http::request<http::buffer_body> req{http::verb::put, ep->prefix + std::string(target), 11};
  impl_->decorate(req, "application/octet-stream");
  req.content_length(size);
  std::optional<http::response_parser<http::buffer_body>> p;
  auto st = impl_->exchange(p, timeout_s, false, [&] {
    req.body().data = nullptr;
    req.body().more = true;
    http::request_serializer<http::buffer_body> sr{req};
    beast::error_code ec;
    http::write_header(*impl_->stream, sr, ec);
    std::vector<char> chunk(chunk_bytes);
    uint64_t done = 0;
    while (!ec && !sr.is_done()) {
      size_t n = done < size ? read(chunk.data(), static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - done))) : 0;
      if (n == 0 && done < size) return beast::error_code(asio::error::eof);  // the file shrank
      req.body().data = n ? chunk.data() : nullptr;
      req.body().size = n;
      req.body().more = n != 0;
      impl_->stream->expires_after(ms(timeout_s));
      http::write(*impl_->stream, sr, ec);
      if (ec == http::error::need_buffer) ec = {};
      done += n;
      if (progress && n) progress(done, size);
    }
    return ec;
  });
  if (!st) return st.err();
  return impl_->finish(*p, timeout_s, nullptr);
}

expected<api_response> api_client::download(std::string_view target,
                                            const std::function<bool(const char*, size_t)>& sink,
                                            const progress_fn& progress) {
  auto ep = parse_url(cfg_.url);
  if (!ep) return ep.err();
  impl_->ep = *ep;
  constexpr double timeout_s = 300;
  http::request<http::empty_body> req{http::verb::get, ep->prefix + std::string(target), 11};
  impl_->decorate(req, "");
  std::optional<http::response_parser<http::buffer_body>> p;
  auto st = impl_->send_whole(p, timeout_s, req);
  if (!st) return st.err();
  uint64_t total = p->content_length().value_or(0), done = 0;
  std::function<bool(const char*, size_t)> counted = [&](const char* d, size_t n) {
    done += n;
    if (progress) progress(done, total);
    return sink(d, n);
  };
  return impl_->finish(*p, timeout_s, &counted);
}

expected<api_response> api_client::events(
    std::string_view target, std::string_view body,
    const std::function<bool(const std::string&, const std::string&)>& on_event, double timeout_s) {
  auto ep = parse_url(cfg_.url);
  if (!ep) return ep.err();
  impl_->ep = *ep;
  http::request<http::string_body> req{http::verb::post, ep->prefix + std::string(target), 11};
  impl_->decorate(req, "application/json");
  req.set(http::field::accept, "text/event-stream");
  req.body() = std::string(body);
  req.prepare_payload();
  std::optional<http::response_parser<http::buffer_body>> p;
  auto st = impl_->send_whole(p, timeout_s, req);
  if (!st) return st.err();
  sse_parser sse;
  std::function<bool(const char*, size_t)> sink = [&](const char* d, size_t n) { return sse.feed(d, n, on_event); };
  return impl_->finish(*p, timeout_s, &sink);
}

// --- the terminal --------------------------------------------------------------------------

namespace {

// One pty WebSocket pumped to/from local fds on a single-threaded asio loop; Beast allows one
// outstanding read and one outstanding write, so writes go through a queue.
class terminal_session {
 public:
  terminal_session(asio::io_context& ioc, websocket::stream<beast::tcp_stream>& ws, const terminal_io& io)
      : ws_(ws), io_(io), in_(ioc, ::dup(io.in_fd)), resize_(ioc) {
    if (io.resize_fd >= 0) resize_.assign(::dup(io.resize_fd));
  }

  std::string run(asio::io_context& ioc, error& failure) {
    read_ws();
    read_input();
    wait_resize();
    send_size();
    ioc.run();
    failure = failure_;
    return reason_;
  }

 private:
  void stop() {
    beast::error_code ignored;
    in_.cancel(ignored);
    if (resize_.is_open()) resize_.cancel(ignored);
  }

  void read_ws() {
    ws_.async_read(rbuf_, [this](beast::error_code ec, size_t) {
      if (ec) {
        if (ec == websocket::error::closed) reason_ = std::string(ws_.reason().reason.c_str());
        else failure_ = transport_error(ec, "the terminal", "keep reading");
        return stop();
      }
      auto data = rbuf_.data();
      const char* p = static_cast<const char*>(data.data());
      for (size_t n = data.size(); n > 0;) {
        ssize_t w = ::write(io_.out_fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        p += w, n -= static_cast<size_t>(w);
      }
      rbuf_.consume(rbuf_.size());
      read_ws();
    });
  }

  void read_input() {
    in_.async_read_some(asio::buffer(ibuf_), [this](beast::error_code ec, size_t n) {
      if (ec) {
        if (ec != asio::error::operation_aborted) close_ws();  // our input ended: end the terminal
        return;
      }
      send(false, std::string(ibuf_.data(), n));
      read_input();
    });
  }

  void wait_resize() {
    if (!resize_.is_open()) return;
    resize_.async_wait(asio::posix::descriptor_base::wait_read, [this](beast::error_code ec) {
      if (ec) return;
      char drain[64];
      while (::read(resize_.native_handle(), drain, sizeof drain) > 0) {
      }
      send_size();
      wait_resize();
    });
  }

  void send_size() {
    if (!io_.size) return;
    auto [cols, rows] = io_.size();
    send(true, nlohmann::json{{"op", "resize"}, {"cols", cols}, {"rows", rows}}.dump());
  }

  void send(bool text, std::string data) {
    if (closing_) return;
    out_.emplace_back(text, std::move(data));
    if (out_.size() == 1) write_next();
  }

  void write_next() {
    ws_.text(out_.front().first);
    ws_.async_write(asio::buffer(out_.front().second), [this](beast::error_code ec, size_t) {
      if (ec) return stop();
      out_.pop_front();
      if (!out_.empty()) write_next();
    });
  }

  void close_ws() {
    if (closing_) return;
    closing_ = true;
    ws_.async_close(websocket::close_code::normal, [](beast::error_code) {});
  }

  websocket::stream<beast::tcp_stream>& ws_;
  const terminal_io& io_;
  asio::posix::stream_descriptor in_, resize_;
  beast::flat_buffer rbuf_;
  std::array<char, 4096> ibuf_{};
  std::deque<std::pair<bool, std::string>> out_;
  std::string reason_;
  error failure_{errc::internal, ""};
  bool closing_ = false;
};

}  // namespace

expected<std::string> api_client::terminal(std::string_view target, const terminal_io& io) {
  auto ep = parse_url(cfg_.url);
  if (!ep) return ep.err();
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto results = resolver.resolve(ep->host, ep->port, ec);
  if (ec) return transport_error(ec, cfg_.url, "resolve");
  websocket::stream<beast::tcp_stream> ws(ioc);
  beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(30));
  beast::get_lowest_layer(ws).connect(results, ec);
  if (ec) return transport_error(ec, cfg_.url, "connect to");
  std::string auth = impl_->auth;
  ws.set_option(websocket::stream_base::decorator([auth](websocket::request_type& r) {
    r.set(http::field::user_agent, user_agent);
    if (!auth.empty()) r.set(http::field::authorization, auth);
  }));
  websocket::response_type res;
  ws.handshake(res, ep->host + ":" + ep->port, ep->prefix + std::string(target), ec);
  if (ec) {
    if (res.result_int() != 0 && res.result_int() != 101) {
      api_response r{static_cast<int>(res.result_int()), std::string(res[http::field::content_type]), res.body()};
      return make_error(errc::bad_request, describe_error(r));
    }
    return transport_error(ec, cfg_.url, "open a terminal on");
  }
  beast::get_lowest_layer(ws).expires_never();
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  ws.binary(true);
  // asio makes the dup'd fds non-blocking, and a dup shares its open file description with the
  // original: put the caller's fd flags back afterwards so the user's shell is not left broken.
  int saved_flags = ::fcntl(io.in_fd, F_GETFL);
  std::string reason;
  error failure{errc::internal, ""};
  {
    terminal_session session(ioc, ws, io);
    reason = session.run(ioc, failure);
  }
  if (saved_flags >= 0) ::fcntl(io.in_fd, F_SETFL, saved_flags);
  if (!failure.message.empty()) return failure;
  return reason;
}

std::string describe_error(const api_response& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    auto& e = j["error"];
    return e.value("code", std::string("error")) + ": " + e.value("message", std::string());
  }
  std::string body = r.body.substr(0, 200);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return "HTTP " + std::to_string(r.status) + (body.empty() ? "" : ": " + body);
}

expected<std::string> call_json(api_client& c, std::string_view method, std::string_view target,
                                std::string_view body, double timeout_s) {
  auto r = c.request(method, target, body, timeout_s);
  if (!r) return r.err();
  if (!r->ok()) {
    auto code = r->status == 404 ? errc::not_found : r->status == 401 ? errc::unauthorized
              : r->status == 504 ? errc::timeout : r->status < 500 ? errc::bad_request : errc::internal;
    return make_error(code, describe_error(*r));
  }
  return std::move(r->body);
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '/') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

}  // namespace warren::cmd
