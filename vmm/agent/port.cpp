// vmm/agent/port.cpp — a TCP connection to a port inside the sandbox (127.0.0.1, then ::1),
// then raw bytes both ways with half-close, each direction bounded by protocol credit. This is
// what the port proxy rides on; "connection refused" is its own error code so the proxy can say
// "no server is listening on port N".
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vmm/agent/inbound.hpp"
#include "vmm/agent/server.hpp"

namespace warren::agent {

namespace {

using proto::msg;

class port_stream final : public stream {
 public:
  port_stream(connection& c, uint32_t id, uint16_t port, uint32_t window)
      : stream(c, id), port_(port), credit_(std::min(window, proto::max_window)),
        in_(proto::default_window) {}
  ~port_stream() override { release(); }

  void start() { try_connect(false); }

  void on_frame(proto::frame& f) override {
    if (done_) return;
    switch (f.type) {
      case msg::data:
        if (!connected_ || !in_.push(f.payload))
          return conn_.protocol_error("port bytes beyond granted credit");
        flush_in();
        break;
      case msg::eof:
        host_eof_ = true;
        flush_in();
        break;
      case msg::credit: {
        if (!take_credit(f, credit_)) return;
        update_interest();
        break;
      }
      default: break;
    }
  }

  void abort() override {
    done_ = true;
    release();
  }

 private:
  void try_connect(bool v6) {
    v6_ = v6;
    fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail("internal", std::string("socket: ") + std::strerror(errno));
    int r;
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port_);
      a.sin6_addr = in6addr_loopback;
      r = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port_);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      r = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (r != 0 && errno != EINPROGRESS) return connect_failed(errno);
    std::weak_ptr<stream> weak = shared_from_this();
    watch_ = conn_.ctx().loop.add(fd_, EPOLLOUT, [weak](uint32_t ev) {
      if (auto s = weak.lock()) static_cast<port_stream&>(*s).on_events(ev);
    });
  }

  void connect_failed(int err) {
    release();
    if (err == ECONNREFUSED && !v6_) return try_connect(true);  // "localhost" servers on ::1
    if (err == ECONNREFUSED)
      return fail("connection_refused",
                  "connection refused: no server is listening on port " + std::to_string(port_));
    fail("unavailable", "connecting to port " + std::to_string(port_) + ": " + std::strerror(err));
  }

  void on_events(uint32_t ev) {
    if (done_) return;
    if (!connected_) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err) return connect_failed(err);
      connected_ = true;
      // Proxied HTTP writes a head and a body as separate sends: without this, Nagle holds the
      // second until the first is ACKed, and a delayed ACK makes that 40 ms per request.
      int one = 1;
      setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      conn_.send(msg::opened, id_, proto::encode(proto::opened{}));
      conn_.send(msg::credit, id_, proto::encode(proto::credit{in_.window()}));
      return update_interest();
    }
    if (ev & EPOLLOUT) flush_in();
    if (!done_ && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_some();
  }

  void read_some() {
    if (rd_eof_ || credit_ == 0) return update_interest();
    char buf[proto::max_chunk];
    ssize_t n = read(fd_, buf, std::min<std::size_t>(credit_, sizeof buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) return fail("bad_gateway", "port " + std::to_string(port_) + ": " + std::strerror(errno));
    if (n == 0) {
      rd_eof_ = true;
      conn_.send(msg::eof, id_);
      return maybe_done();
    }
    credit_ -= static_cast<uint32_t>(n);
    conn_.send(msg::data, id_, std::string_view(buf, static_cast<std::size_t>(n)));
    update_interest();
  }

  void flush_in() {
    if (done_ || !connected_) return;
    if (!in_.write_to(fd_)) {
      if (errno == EPIPE || errno == ECONNRESET) in_.discard();  // the server stopped reading
      else return fail("bad_gateway", "port " + std::to_string(port_) + ": " + std::strerror(errno));
    }
    if (uint32_t g = in_.take_grant()) conn_.send(msg::credit, id_, proto::encode(proto::credit{g}));
    if (in_.empty() && host_eof_ && !wr_shut_) {
      shutdown(fd_, SHUT_WR);
      wr_shut_ = true;
      return maybe_done();
    }
    update_interest();
  }

  void maybe_done() {
    if (!(rd_eof_ && wr_shut_)) return update_interest();
    done_ = true;
    release();
    conn_.finish(id_, msg::result, proto::encode(proto::file_result{}));
  }

  void update_interest() {
    if (fd_ < 0 || done_) return;
    uint32_t ev = 0;
    if (!rd_eof_ && credit_ > 0) ev |= EPOLLIN;
    if (!in_.empty()) ev |= EPOLLOUT;
    conn_.ctx().loop.modify(watch_, ev);
  }

  void fail(const char* code, std::string message) {
    done_ = true;
    release();
    conn_.fail(id_, code, std::move(message));
  }

  void release() {
    if (fd_ < 0) return;
    if (watch_) conn_.ctx().loop.remove(watch_);
    watch_ = 0;
    ::close(fd_);
    fd_ = -1;
  }

  uint16_t port_;
  uint32_t credit_;
  inbound in_;
  int fd_ = -1;
  event_loop::watch_id watch_ = 0;
  bool v6_ = false, connected_ = false, host_eof_ = false, wr_shut_ = false, rd_eof_ = false;
};

}  // namespace

std::shared_ptr<stream> start_port(connection& c, uint32_t id, std::string_view payload) {
  proto::port_request req;
  std::string why;
  if (!proto::decode(payload, req, why)) {
    c.fail(id, "bad_request", "bad port request: " + why);
    return nullptr;
  }
  auto s = std::make_shared<port_stream>(c, id, req.port, req.window);
  s->start();
  // A synchronous failure (refused on both families at connect()) already answered.
  return s->finished() ? nullptr : s;
}

}  // namespace warren::agent
