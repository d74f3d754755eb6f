// net/tcp_upstream.cpp — the port proxy's direct TCP connection to a sandbox (tcp_upstream.hpp).
// Everything runs on the loop's one thread; public calls from elsewhere are queued onto it.
// Never blocks, never buffers more than one read.
#include "net/tcp_upstream.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

namespace warren::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t read_size = 32 * 1024;

// A TCP socket made in the network namespace `netns`: the calling thread enters it for the
// socket() call only (a socket stays in the namespace it was made in). Leaving it again cannot
// fail for a root daemon; if it ever did, the thread would make its later sockets in the
// sandbox's network, so the daemon stops instead.
expected<int> socket_in_netns(int netns, int family) {
  thread_local int own = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);  // never left for long
  if (own < 0) return make_error(errc::internal, std::string("cannot open this thread's network namespace: ") + std::strerror(errno));
  if (::setns(netns, CLONE_NEWNET) != 0)
    return make_error(errc::bad_gateway, std::string("cannot enter the sandbox's network namespace: ") + std::strerror(errno));
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = errno;
  if (::setns(own, CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "warren: cannot return to the host's network namespace (%s); stopping\n", std::strerror(errno));
    std::abort();
  }
  if (fd < 0) return make_error(errc::bad_gateway, std::string("socket in the sandbox's network namespace: ") + std::strerror(err));
  return fd;
}

class tcp_conn final : public tcp_upstream, public std::enable_shared_from_this<tcp_conn> {
 public:
  tcp_conn(asio::io_context& io, callbacks cb)
      : ex_(io.get_executor()), sock_(io), timer_(io), cb_(std::make_shared<callbacks>(std::move(cb))) {}

  // Makes the socket in the network namespace `netns`, now, on the calling thread: the caller
  // holds the namespace open only for the duration of the call. "" or why it failed.
  std::string make_socket_in(int netns, bool v6) {
    auto fd = socket_in_netns(netns, v6 ? AF_INET6 : AF_INET);
    if (!fd) return fd.err().message;
    boost::system::error_code ec;
    sock_.assign(v6 ? tcp::v6() : tcp::v4(), *fd, ec);  // not in use by the loop yet
    if (!ec) return "";
    ::close(*fd);
    return ec.message();
  }

  // `failed`: the socket could not be made (make_socket_in); reported as a failed connect.
  void start(tcp::endpoint ep, std::chrono::milliseconds timeout, std::string failed) {
    on_loop([ep, timeout, failed = std::move(failed)](tcp_conn& c) {
      if (!failed.empty()) {
        c.abort_why_ = failed;
        return c.on_connect(asio::error::operation_aborted);
      }
      c.timer_.expires_after(timeout);
      c.timer_.async_wait([self = c.shared_from_this()](boost::system::error_code ec) {
        if (!ec && self->phase_ == phase::connecting) {
          self->timed_out_ = true;
          boost::system::error_code ig;
          self->sock_.close(ig);  // the connect completes with operation_aborted
        }
      });
      c.sock_.async_connect(ep, [self = c.shared_from_this()](boost::system::error_code ec) { self->on_connect(ec); });
    });
  }

  void write(std::string data, std::function<void(status)> done) override {
    on_loop([d = std::move(data), done = std::move(done)](tcp_conn& c) mutable {
      if (c.phase_ == phase::closed) {
        if (done) done(make_error(errc::bad_gateway, "the connection is closed"));
        return;
      }
      c.queue_.push_back({std::move(d), std::move(done)});
      c.pump_writes();
    });
  }

  void shutdown_write() override {
    on_loop([](tcp_conn& c) {
      c.shutdown_queued_ = true;
      c.pump_writes();
    });
  }

  void pause_output() override {
    on_loop([](tcp_conn& c) { c.paused_ = true; });
  }

  void resume_output() override {
    on_loop([](tcp_conn& c) {
      c.paused_ = false;
      c.pump_reads();
    });
  }

  void cancel() override {
    on_loop([](tcp_conn& c) { c.close_now(); });
  }

  void abort(error why) override {
    on_loop([why = std::move(why)](tcp_conn& c) {
      if (c.phase_ == phase::connecting) {
        c.abort_why_ = why.message;
        boost::system::error_code ig;
        c.sock_.close(ig);  // the connect completes with operation_aborted
        return;
      }
      if (c.phase_ != phase::open) return;
      auto cb = c.cb_;
      c.close_now();
      if (cb && cb->on_close) cb->on_close(why);
    });
  }

 private:
  enum class phase { connecting, open, closed };

  // Runs `f(*this)` on the loop: inline when called there, queued from any other thread. The
  // connection stays alive until it has run.
  template <class F>
  void on_loop(F f) {
    auto self = shared_from_this();
    if (ex_.running_in_this_thread()) return f(*self);  // what dispatch would do, minus its fence
    asio::dispatch(ex_, [self = std::move(self), f = std::move(f)]() mutable { f(*self); });
  }

  std::vector<pending_write> take_unsent() {
    // A write in flight keeps its buffer until its handler runs (it then fails it).
    std::vector<pending_write> out;
    size_t keep = writing_ ? 1 : 0;
    while (queue_.size() > keep) {
      out.push_back(std::move(queue_.back()));
      queue_.pop_back();
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

  void on_connect(boost::system::error_code ec) {
    timer_.cancel();
    if (phase_ != phase::connecting) return;  // cancelled meanwhile
    if (ec) {
      phase_ = phase::closed;
      auto why = !abort_why_.empty() ? abort_why_
                 : timed_out_        ? std::string("did not accept the connection in time")
                                     : ec.message();
      auto cb = std::move(cb_);
      if (cb && cb->on_connect_failed) cb->on_connect_failed(make_error(errc::bad_gateway, why));
      for (auto& w : take_unsent())
        if (w.done) w.done(make_error(errc::bad_gateway, why));
      return;
    }
    phase_ = phase::open;
    boost::system::error_code ig;
    sock_.set_option(tcp::no_delay(true), ig);
    sock_.non_blocking(true, ig);  // synchronous writes try the kernel and never block the loop
    if (auto cb = cb_; cb && cb->on_connected) cb->on_connected();
    pump_writes();
    pump_reads();
  }

  // Writes go to the kernel at once when it takes them (the usual case for a request head):
  // no completion round trip through the loop. Only what it does not take waits for an async
  // write. `done` callbacks may queue more writes (re-entering here): the loop picks them up.
  void pump_writes() {
    if (phase_ != phase::open || writing_ || pumping_) return;
    pumping_ = true;
    while (!queue_.empty() && phase_ == phase::open) {
      auto& w = queue_.front();
      boost::system::error_code ec;
      size_t n = sock_.write_some(asio::buffer(w.data.data() + front_sent_, w.data.size() - front_sent_), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) {
        pumping_ = false;
        auto done = std::move(w.done);
        queue_.pop_front();
        front_sent_ = 0;
        if (done) done(make_error(errc::bad_gateway, "write: " + ec.message()));
        return fail(ec);
      }
      front_sent_ += n;
      if (front_sent_ < w.data.size()) break;  // the kernel took part: the rest goes async
      auto done = std::move(w.done);
      queue_.pop_front();
      front_sent_ = 0;
      if (done) done(ok());
    }
    pumping_ = false;
    if (phase_ != phase::open) return;
    if (queue_.empty()) {
      if (shutdown_queued_ && !shut_) {
        shut_ = true;
        boost::system::error_code ig;
        sock_.shutdown(tcp::socket::shutdown_send, ig);
        maybe_closed();
      }
      return;
    }
    writing_ = true;
    auto self = shared_from_this();
    auto& w = queue_.front();
    asio::async_write(sock_, asio::buffer(w.data.data() + front_sent_, w.data.size() - front_sent_),
                      [self](boost::system::error_code ec, size_t) {
                        self->writing_ = false;
                        if (self->queue_.empty()) return;  // closed meanwhile (the queue was failed there)
                        auto w = std::move(self->queue_.front());
                        self->queue_.pop_front();
                        self->front_sent_ = 0;
                        if (ec) {
                          if (w.done) w.done(make_error(errc::bad_gateway, "write: " + ec.message()));
                          return self->fail(ec);
                        }
                        if (w.done) w.done(ok());
                        self->pump_writes();
                      });
  }

  void pump_reads() {
    if (phase_ != phase::open || reading_ || paused_ || eof_) return;
    reading_ = true;
    auto self = shared_from_this();
    sock_.async_read_some(asio::buffer(buf_), [self](boost::system::error_code ec, size_t n) {
      self->reading_ = false;
      if (self->phase_ != phase::open) return;
      if (ec && ec == asio::error::eof) {  // `ec &&` first: success skips the comparison
        self->eof_ = true;
        if (auto cb = self->cb_; cb && cb->on_eof) cb->on_eof();
        return self->maybe_closed();
      }
      if (ec) return self->fail(ec);
      // A copy of the pointer: the callee may cancel (and so drop the callbacks) meanwhile.
      if (auto cb = self->cb_; cb && cb->on_data) cb->on_data(std::string_view(self->buf_.data(), n));
      self->pump_reads();
    });
  }

  // Both halves are done: the server sent EOF and we shut our side down.
  void maybe_closed() {
    if (!(eof_ && shut_) || phase_ != phase::open) return;
    auto cb = cb_;
    close_now();
    if (cb && cb->on_close) cb->on_close(ok());
  }

  void fail(boost::system::error_code ec) {
    if (phase_ != phase::open) return;
    auto cb = cb_;
    close_now();
    if (cb && cb->on_close) cb->on_close(make_error(errc::bad_gateway, ec.message()));
  }

  void close_now() {
    phase_ = phase::closed;
    cb_.reset();
    timer_.cancel();
    boost::system::error_code ig;
    sock_.close(ig);
    for (auto& w : take_unsent())
      if (w.done) w.done(make_error(errc::bad_gateway, "the connection is closed"));
  }

  // The loop is run by one thread (the front door's design), so its executor serializes this
  // connection; calls from that thread run inline, from others they are queued.
  asio::io_context::executor_type ex_;
  tcp::socket sock_;
  asio::steady_timer timer_;
  std::shared_ptr<const callbacks> cb_;  // null once closed or cancelled: no more callbacks
  phase phase_ = phase::connecting;
  std::string abort_why_;
  bool timed_out_ = false, writing_ = false, reading_ = false, paused_ = false, eof_ = false;
  bool shutdown_queued_ = false, shut_ = false, pumping_ = false;
  size_t front_sent_ = 0;  // bytes of queue_.front() the kernel already took
  std::deque<pending_write> queue_;
  std::array<char, read_size> buf_;
};

}  // namespace

std::shared_ptr<tcp_upstream> tcp_upstream::open(asio::io_context& io, const std::string& ip, uint16_t port,
                                                 callbacks cb, std::chrono::milliseconds timeout, int netns) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(ip, ec);
  if (ec) return nullptr;
  auto c = std::make_shared<tcp_conn>(io, std::move(cb));
  c->start(tcp::endpoint(addr, port), timeout, netns >= 0 ? c->make_socket_in(netns, addr.is_v6()) : "");
  return c;
}

}  // namespace warren::net
