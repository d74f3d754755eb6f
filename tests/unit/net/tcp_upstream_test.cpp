// Tests net/tcp_upstream.cpp (the port proxy's direct connection) and direct_routes
// (net/port_upstream.cpp) against real loopback sockets, on one event-loop thread.
#include <catch2/catch_test_macros.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "net/port_upstream.hpp"
#include "net/tcp_upstream.hpp"

using namespace warren;
using namespace warren::net;
using namespace std::chrono_literals;

namespace {

// One event loop on its own thread, like a front-door I/O thread.
struct loop {
  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread t{[this] { io.run(); }};
  ~loop() {
    work.reset();
    io.stop();
    t.join();
  }
};

// A TCP socket bound to 127.0.0.1 on an ephemeral port; listening or not.
struct loopback_socket {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  uint16_t port = 0;
  explicit loopback_socket(bool listening) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    if (listening) REQUIRE(::listen(fd, 8) == 0);
    socklen_t n = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
    port = ntohs(a.sin_port);
  }
  ~loopback_socket() { ::close(fd); }
  int accept_one() { return ::accept(fd, nullptr, nullptr); }
};
// A server, and a port nobody listens on (bound, never listened: nothing else takes it meanwhile).
struct listener : loopback_socket {
  listener() : loopback_socket(true) {}
};
struct closed_port : loopback_socket {
  closed_port() : loopback_socket(false) {}
};

struct recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::string data;
  bool connected = false, eof = false, closed = false, failed = false;
  status close_status = ok();
  std::string why;

  tcp_upstream::callbacks callbacks() {
    tcp_upstream::callbacks cb;
    cb.on_connected = [this] { set([&] { connected = true; }); };
    cb.on_connect_failed = [this](const error& e) { set([&] { failed = true, why = e.message; }); };
    cb.on_data = [this](std::string_view d) { set([&] { data.append(d); }); };
    cb.on_eof = [this] { set([&] { eof = true; }); };
    cb.on_close = [this](status st) { set([&] { closed = true, close_status = st; }); };
    return cb;
  }
  template <class F>
  void set(F f) {
    std::lock_guard lk(mu);
    f();
    cv.notify_all();
  }
  template <class P>
  bool wait(P pred) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, 5s, pred);
  }
};

std::string read_n(int fd, size_t n) {
  std::string out;
  char buf[4096];
  while (out.size() < n) {
    auto r = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

}  // namespace

TEST_CASE("a direct connection carries bytes both ways, writes made before it connected first") {
  loop l;
  listener srv;
  recorder rec;
  auto c = tcp_upstream::open(l.io, "127.0.0.1", srv.port, rec.callbacks(), 2000ms);
  REQUIRE(c);
  std::promise<status> sent;
  c->write("GET / HTTP/1.1\r\n\r\n", [&](status st) { sent.set_value(st); });
  int s = srv.accept_one();
  REQUIRE(s >= 0);
  CHECK(read_n(s, 18) == "GET / HTTP/1.1\r\n\r\n");
  CHECK(sent.get_future().get());
  REQUIRE(rec.wait([&] { return rec.connected; }));
  ::write(s, "hello", 5);
  REQUIRE(rec.wait([&] { return rec.data == "hello"; }));

  // Half-close both ways: on_eof, then on_close(ok) once our side is shut too.
  ::shutdown(s, SHUT_WR);
  REQUIRE(rec.wait([&] { return rec.eof; }));
  CHECK_FALSE(rec.closed);
  c->shutdown_write();
  REQUIRE(rec.wait([&] { return rec.closed; }));
  CHECK(rec.close_status);
  char b;
  CHECK(::read(s, &b, 1) == 0);  // the server sees our EOF
  ::close(s);
}

TEST_CASE("a refused direct connect reports on_connect_failed and nothing else; its writes stay unsent") {
  loop l;
  closed_port nobody;
  recorder rec;
  std::promise<status> sent;
  auto c = tcp_upstream::open(l.io, "127.0.0.1", nobody.port, rec.callbacks(), 2000ms);
  REQUIRE(c);
  c->write("never", [&](status st) { sent.set_value(st); });
  REQUIRE(rec.wait([&] { return rec.failed; }));
  CHECK(rec.why.find("refused") != std::string::npos);
  auto st = sent.get_future().get();
  CHECK_FALSE(st);  // failed, not sent
  CHECK_FALSE(rec.connected);
  CHECK_FALSE(rec.closed);
}

TEST_CASE("abort cuts an open connection and reports why; cancel reports nothing") {
  loop l;
  listener srv;
  SECTION("abort") {
    recorder rec;
    auto c = tcp_upstream::open(l.io, "127.0.0.1", srv.port, rec.callbacks(), 2000ms);
    int s = srv.accept_one();
    REQUIRE(rec.wait([&] { return rec.connected; }));
    c->abort(make_error(errc::bad_gateway, "the sandbox went away"));
    REQUIRE(rec.wait([&] { return rec.closed; }));
    CHECK_FALSE(rec.close_status);
    CHECK(rec.close_status.err().message == "the sandbox went away");
    char b;
    CHECK(::read(s, &b, 1) == 0);
    ::close(s);
  }
  SECTION("cancel") {
    recorder rec;
    auto c = tcp_upstream::open(l.io, "127.0.0.1", srv.port, rec.callbacks(), 2000ms);
    int s = srv.accept_one();
    REQUIRE(rec.wait([&] { return rec.connected; }));
    c->cancel();
    char b;
    CHECK(::read(s, &b, 1) == 0);
    ::write(s, "late", 4);
    std::this_thread::sleep_for(100ms);
    std::lock_guard lk(rec.mu);
    CHECK(rec.data.empty());
    CHECK_FALSE(rec.closed);
    ::close(s);
  }
}

TEST_CASE("pause_output stops reading from the server until resume_output") {
  loop l;
  listener srv;
  recorder rec;
  auto c = tcp_upstream::open(l.io, "127.0.0.1", srv.port, rec.callbacks(), 2000ms);
  int s = srv.accept_one();
  REQUIRE(rec.wait([&] { return rec.connected; }));
  c->pause_output();
  std::this_thread::sleep_for(50ms);  // let a read already in flight finish
  ::write(s, "a", 1);
  std::this_thread::sleep_for(50ms);
  {
    std::lock_guard lk(rec.mu);
    rec.data.clear();
  }
  ::write(s, "xyz", 3);
  std::this_thread::sleep_for(150ms);
  {
    std::lock_guard lk(rec.mu);
    CHECK(rec.data.find("xyz") == std::string::npos);
  }
  c->resume_output();
  REQUIRE(rec.wait([&] { return rec.data.find("xyz") != std::string::npos; }));
  c->cancel();
  ::close(s);
}

TEST_CASE("not an IP address: no connection object at all") {
  loop l;
  recorder rec;
  CHECK_FALSE(tcp_upstream::open(l.io, "sandbox.example", 80, rec.callbacks(), 100ms));
  CHECK_FALSE(tcp_upstream::open(l.io, "", 80, rec.callbacks(), 100ms));
}

TEST_CASE("direct_routes remembers a port whose first path refused, for a while, per port") {
  direct_routes r(100ms);
  CHECK(r.worth_trying("a:8000"));
  r.refused("a:8000");
  CHECK_FALSE(r.worth_trying("a:8000"));
  CHECK(r.worth_trying("a:8001"));
  CHECK(r.worth_trying("b:8000"));
  std::this_thread::sleep_for(150ms);
  CHECK(r.worth_trying("a:8000"));
}
