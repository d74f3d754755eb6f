// tests/unit/vmm/agent/stream_test.cpp — watch streams, port connections (echo with half-close,
// python's http.server, connection refused), ping, and hostile bytes on the agent socket.
#include <catch2/catch_test_macros.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "agent_harness.hpp"

using namespace agent_test;
namespace fs = std::filesystem;
using warren::agent::watch_event;

namespace {

bool has(const std::vector<watch_event>& evs, const std::string& event, const std::string& path) {
  return std::any_of(evs.begin(), evs.end(),
                     [&](auto& e) { return e.event == event && e.path == path; });
}

// A loopback TCP listener on an ephemeral port; echoes one connection, then half-closes.
struct echo_server {
  int lfd = -1;
  uint16_t port = 0;
  std::thread t;
  echo_server() {
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    listen(lfd, 4);
    t = std::thread([this] {
      int c = accept(lfd, nullptr, nullptr);
      if (c < 0) return;
      char buf[65536];
      ssize_t n;
      while ((n = read(c, buf, sizeof buf)) > 0) (void)!write(c, buf, static_cast<size_t>(n));
      (void)!write(c, "bye", 3);  // after the client's half-close, still able to write
      shutdown(c, SHUT_WR);
      close(c);
    });
  }
  ~echo_server() {
    shutdown(lfd, SHUT_RDWR);
    t.join();
    close(lfd);
  }
};

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

int raw_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Reads until the agent closes (true) or the 5 s timeout (false).
bool closed_by_agent(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

}  // namespace

TEST_CASE("a recursive watch reports create, modify, rename and delete with sandbox paths") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  fs::create_directories(agent.root + "/w/old");
  std::vector<watch_event> evs;
  bool ready = false;
  auto w = c->watch("/w", true, {[&] { ready = true; }, [&](const watch_event& e) { evs.push_back(e); },
                                 [&](const warren::error& e) { FAIL(e.message); }});
  REQUIRE(run_until(io, [&] { return ready; }));
  std::string w_dir = agent.root + "/w";
  spit(w_dir + "/a.txt", "1");
  spit(w_dir + "/old/in_old.txt", "1");
  fs::create_directories(w_dir + "/sub");
  run_until(io, [&] { return has(evs, "create", "/w/sub"); }, 5s);
  spit(w_dir + "/sub/b.txt", "2");
  fs::rename(w_dir + "/a.txt", w_dir + "/c.txt");
  fs::remove(w_dir + "/c.txt");
  REQUIRE(run_until(io, [&] { return has(evs, "delete", "/w/c.txt"); }, 5s));
  CHECK(has(evs, "create", "/w/a.txt"));
  CHECK(has(evs, "modify", "/w/a.txt"));
  CHECK(has(evs, "create", "/w/old/in_old.txt"));
  CHECK(has(evs, "create", "/w/sub"));
  CHECK(has(evs, "create", "/w/sub/b.txt"));
  CHECK(has(evs, "rename", "/w/a.txt"));
  CHECK(has(evs, "rename", "/w/c.txt"));
  w->cancel();
  spit(w_dir + "/after_cancel", "x");
  auto n = evs.size();
  run_until(io, [] { return false; }, 200ms);
  CHECK(evs.size() == n);
}

TEST_CASE("a non-recursive watch ignores subdirectories; a missing path is not_found") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  fs::create_directories(agent.root + "/w/sub");
  std::vector<watch_event> evs;
  bool ready = false;
  auto w = c->watch("/w", false, {[&] { ready = true; }, [&](const watch_event& e) { evs.push_back(e); }, {}});
  REQUIRE(run_until(io, [&] { return ready; }));
  spit(agent.root + "/w/sub/deep.txt", "x");
  spit(agent.root + "/w/top.txt", "x");
  REQUIRE(run_until(io, [&] { return has(evs, "create", "/w/top.txt"); }, 5s));
  CHECK_FALSE(has(evs, "create", "/w/sub/deep.txt"));

  std::optional<warren::error> err;
  c->watch("/missing", true, {{}, {}, [&](const warren::error& e) { err = e; }});
  REQUIRE(run_until(io, [&] { return err.has_value(); }));
  CHECK(err->code == warren::errc::not_found);
  err.reset();
  c->watch("relative", true, {{}, {}, [&](const warren::error& e) { err = e; }});
  REQUIRE(run_until(io, [&] { return err.has_value(); }));
  CHECK(err->code == warren::errc::bad_request);
}

TEST_CASE("connect_port carries bytes both ways with half-close") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  echo_server echo;
  std::string got;
  bool connected = false, eof = false;
  std::optional<warren::status> closed;
  auto p = c->connect_port(echo.port, {[&] { connected = true; },
                                       [&](std::string_view s) { got.append(s); },
                                       [&] { eof = true; },
                                       [&](warren::status s) { closed = std::move(s); }});
  REQUIRE(run_until(io, [&] { return connected; }));
  std::string big(3u << 20, 'z');
  p->write("ping ");
  p->write(big);
  REQUIRE(run_until(io, [&] { return got.size() == 5 + big.size(); }));
  CHECK(got.substr(0, 5) == "ping ");
  p->shutdown_write();
  REQUIRE(run_until(io, [&] { return closed.has_value(); }));
  CHECK(eof);
  CHECK(*closed);
  CHECK(got.substr(got.size() - 3) == "bye");
}

TEST_CASE("connect_port to python's http.server gets an HTTP response") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  uint16_t port = free_port();
  pid_t py = fork();
  if (py == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execlp("python3", "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
           agent.root.c_str(), std::to_string(port).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  spit(agent.root + "/hello.txt", "hi from the sandbox");
  std::string got;
  std::optional<warren::status> closed;
  for (int attempt = 0; attempt < 100; ++attempt) {
    got.clear();
    closed.reset();
    auto p = c->connect_port(port, {{}, [&](std::string_view s) { got.append(s); }, {},
                                    [&](warren::status s) { closed = std::move(s); }});
    p->write("GET /hello.txt HTTP/1.0\r\nHost: x\r\n\r\n");
    p->shutdown_write();
    run_until(io, [&] { return closed.has_value(); }, 10s);
    if (closed && *closed) break;
    std::this_thread::sleep_for(100ms);  // the server is still starting
  }
  kill(py, SIGTERM);
  waitpid(py, nullptr, 0);
  REQUIRE(closed);
  CHECK(*closed);
  CHECK(got.rfind("HTTP/1.0 200", 0) == 0);
  CHECK(got.find("hi from the sandbox") != std::string::npos);
}

TEST_CASE("connect_port to a port nobody listens on fails with a connection refused error") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  std::optional<warren::status> closed;
  bool connected = false;
  c->connect_port(free_port(), {[&] { connected = true; }, {}, {},
                                [&](warren::status s) { closed = std::move(s); }});
  REQUIRE(run_until(io, [&] { return closed.has_value(); }));
  CHECK_FALSE(connected);
  REQUIRE_FALSE(*closed);
  CHECK(closed->err().code == warren::errc::bad_gateway);
  CHECK(closed->err().message.find("connection refused") != std::string::npos);
}

TEST_CASE("ping answers, and streams fail with unavailable when the agent goes away") {
  auto agent = std::make_unique<agent_process>();
  boost::asio::io_context io;
  auto c = connect(io, agent->socket);
  REQUIRE(c);
  CHECK(c->agent_hello().version == warren::agent::proto::version);
  std::optional<warren::status> pong;
  c->ping([&](warren::status s) { pong = std::move(s); });
  REQUIRE(run_until(io, [&] { return pong.has_value(); }));
  CHECK(*pong);

  std::optional<warren::error> err;
  warren::agent::exec_callbacks cb;
  cb.on_error = [&](const warren::error& e) { err = e; };
  bool started = false;
  cb.on_start = [&](int64_t) { started = true; };
  c->exec([] {
    warren::agent::exec_request r;
    r.command = "sleep 30";
    return r;
  }(), cb);
  REQUIRE(run_until(io, [&] { return started; }));
  agent.reset();  // SIGTERM the agent
  REQUIRE(run_until(io, [&] { return err.has_value(); }));
  CHECK(err->code == warren::errc::unavailable);
  CHECK_FALSE(c->connected());
}

TEST_CASE("connecting to a socket with no agent fails with unavailable") {
  boost::asio::io_context io;
  std::optional<warren::error> err;
  warren::agent::client::connect(io, "/tmp/warren-no-such-agent.sock", [&](auto r) {
    if (!r) err = r.err();
  });
  REQUIRE(run_until(io, [&] { return err.has_value(); }));
  CHECK(err->code == warren::errc::unavailable);
}

TEST_CASE("garbage, oversized frames and a wrong version close only that connection") {
  agent_process agent;
  using namespace warren::agent::proto;
  std::vector<std::string> attacks = {
      std::string("GET / HTTP/1.1\r\n\r\n"),
      [] {
        auto f = encode_frame(msg::data, 1);
        f[6] = '\x7f';  // 2 GiB payload length
        return f;
      }(),
      [] {
        auto f = encode_frame(msg::ping, 0);
        f[0] = 9;
        return f;
      }(),
      encode_frame(msg::exec, 0, "x"),        // a request on the connection stream
      encode_frame(msg::exit, 5, "\xa0"),     // an agent-only message from the host
      encode_frame(msg::exec, 3, "garbage"),  // undecodable CBOR: an error reply, not a close
  };
  for (std::size_t i = 0; i + 1 < attacks.size(); ++i) {
    int fd = raw_connect(agent.socket);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, attacks[i].data(), attacks[i].size()) == static_cast<ssize_t>(attacks[i].size()));
    CHECK(closed_by_agent(fd));
    close(fd);
  }
  int fd = raw_connect(agent.socket);
  auto& bad = attacks.back();
  REQUIRE(write(fd, bad.data(), bad.size()) == static_cast<ssize_t>(bad.size()));
  decoder d;
  frame f;
  bool got_error = false;
  char buf[4096];
  while (!got_error) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    d.feed(buf, static_cast<size_t>(n));
    while (d.next(f) == decoder::status::frame)
      if (f.type == msg::error && f.stream == 3) got_error = true;
  }
  CHECK(got_error);
  close(fd);

  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  REQUIRE(c);
  auto r = run(io, *c, [] {
    warren::agent::exec_request q;
    q.command = "echo alive";
    return q;
  }());
  REQUIRE(r.exit);
  CHECK(r.out == "alive\n");
}
