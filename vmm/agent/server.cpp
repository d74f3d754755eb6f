// vmm/agent/server.cpp — accepting host connections, framing, routing frames to streams.
// Any malformed input from the host closes that one connection; it never ends the agent.
#include "vmm/agent/server.hpp"

#include <algorithm>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace warren::agent {

namespace {
constexpr std::size_t out_high_water = 8u << 20;
constexpr std::size_t read_chunk = 256 * 1024;

bool is_request(proto::msg t) {
  return static_cast<uint8_t>(t) >= 10 && static_cast<uint8_t>(t) <= 19;
}
bool is_host_in_stream(proto::msg t) {
  using proto::msg;
  return t == msg::data || t == msg::eof || t == msg::credit || t == msg::signal ||
         t == msg::resize || t == msg::cancel;
}
}  // namespace

connection::connection(context& ctx, int fd, std::function<void(connection*)> on_closed)
    : ctx_(ctx), fd_(fd), on_closed_(std::move(on_closed)) {}

connection::~connection() {
  if (fd_ >= 0) ::close(fd_);
}

void connection::start() {
  std::weak_ptr<connection> weak = shared_from_this();
  watch_ = ctx_.loop.add(fd_, EPOLLIN, [weak](uint32_t ev) {
    if (auto self = weak.lock()) self->on_events(ev);
  });
  proto::hello h;
  h.agent = "warren-agent/" WARREN_VERSION;
  h.pid = getpid();
  send(proto::msg::hello, 0, proto::encode(h));
}

void connection::on_events(uint32_t ev) {
  if (ev & EPOLLOUT) flush();
  if (!closed_ && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_some();
}

void connection::read_some() {
  char buf[read_chunk];
  ssize_t n = ::read(fd_, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    close();
    return;
  }
  dec_.feed(buf, static_cast<std::size_t>(n));
  proto::frame f;
  for (;;) {
    auto st = dec_.next(f);
    if (st == proto::decoder::status::need_more) break;
    if (st == proto::decoder::status::bad) {
      protocol_error(dec_.why());
      return;
    }
    dispatch(f);
    if (closed_) return;
  }
  update_interest();
}

void connection::dispatch(proto::frame& f) {
  using proto::msg;
  if (f.type == msg::hello) {
    proto::hello h;
    std::string why;
    if (!proto::decode(f.payload, h, why) || h.version != proto::version)
      protocol_error("bad hello: " + why);
    return;
  }
  if (f.type == msg::ping) {
    send(msg::pong, f.stream, f.payload);
    return;
  }
  if (is_request(f.type)) {
    if (f.stream == 0 || streams_.count(f.stream)) {
      protocol_error(f.stream == 0 ? std::string("request on stream 0")
                                   : "request on stream " + std::to_string(f.stream) + " in use");
      return;
    }
    open_stream(f);
    return;
  }
  if (!is_host_in_stream(f.type) || f.stream == 0) {
    protocol_error(std::string("unexpected ") + std::string(proto::name(f.type)) + " from host");
    return;
  }
  auto it = streams_.find(f.stream);
  if (it == streams_.end()) return;  // the stream just ended; the host had not seen it yet
  auto s = it->second;
  if (f.type == msg::cancel) {
    streams_.erase(it);
    s->abort();
    return;
  }
  s->on_frame(f);
}

void connection::open_stream(proto::frame& f) {
  using proto::msg;
  std::shared_ptr<stream> s;
  switch (f.type) {
    case msg::exec: s = start_exec(*this, f.stream, f.payload); break;
    case msg::watch: s = start_watch(*this, f.stream, f.payload); break;
    case msg::port_connect: s = start_port(*this, f.stream, f.payload); break;
    default: s = start_file_op(*this, f.stream, f.type, f.payload); break;
  }
  // A factory may finish its stream synchronously (stat, errors); only keep live ones.
  if (s && !closed_) streams_.emplace(f.stream, std::move(s));
}

void connection::send(proto::msg type, uint32_t stream, std::string_view payload) {
  if (closed_) return;
  proto::append_frame(out_, type, stream, payload);
  flush();
}

void connection::finish(uint32_t stream, proto::msg type, std::string_view payload) {
  send(type, stream, payload);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  // The caller is usually a method of that stream: keep it alive until this turn ends.
  ctx_.loop.defer([s = std::move(it->second)] {});
  streams_.erase(it);
}

void connection::fail(uint32_t stream, std::string_view code, std::string message) {
  finish(stream, proto::msg::error, proto::encode(proto::error_reply{std::string(code), message}));
}

bool stream::take_credit(const proto::frame& f, uint32_t& credit) {
  proto::credit c;
  std::string why;
  if (!proto::decode(f.payload, c, why)) {
    conn_.protocol_error("bad credit: " + why);
    return false;
  }
  credit = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{credit} + c.bytes, proto::max_window));
  return true;
}

void connection::protocol_error(const std::string& why) {
  std::fprintf(stderr, "warren-agent: closing connection: %s\n", why.c_str());
  close();
}

void connection::flush() {
  while (out_pos_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      close();
      return;
    }
    out_pos_ += static_cast<std::size_t>(n);
  }
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ > (1u << 20)) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  update_interest();
}

void connection::update_interest() {
  if (closed_) return;
  uint32_t ev = out_pending() < out_high_water ? uint32_t{EPOLLIN} : 0u;
  if (out_pending()) ev |= EPOLLOUT;
  ctx_.loop.modify(watch_, ev);
}

void connection::close() {
  if (closed_) return;
  closed_ = true;
  ctx_.loop.remove(watch_);
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : streams) s->abort();
  ::close(fd_);
  fd_ = -1;
  // Release the streams and ourselves after this turn: we may be deep in one of their calls.
  ctx_.loop.defer([streams = std::move(streams)] {});
  if (on_closed_) on_closed_(this);
}

server::server(context& ctx, int listen_fd) : ctx_(ctx), listen_fd_(listen_fd) {}

void server::start() {
  ctx_.loop.add(listen_fd_, EPOLLIN, [this](uint32_t) { on_accept(); });
}

void server::on_accept() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR) std::perror("warren-agent: accept");
      return;
    }
    auto c = std::make_shared<connection>(ctx_, fd, [this](connection* dead) {
      auto it = conns_.find(dead);
      if (it == conns_.end()) return;
      ctx_.loop.defer([keep = std::move(it->second)] {});
      conns_.erase(it);
    });
    conns_.emplace(c.get(), c);
    c->start();
  }
}

void reap_children(context& ctx) {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    auto it = ctx.children.find(pid);
    if (it == ctx.children.end()) continue;  // an orphan we adopted as PID 1
    auto f = std::move(it->second);
    ctx.children.erase(it);
    if (f) f(status);
  }
}

}  // namespace warren::agent
