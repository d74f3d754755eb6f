// tests/unit/vmm/agent/exec_test.cpp — exec through the real agent: env, cwd, stdin, exit codes,
// stream separation, errors, timeouts killing the process group, backpressure, pty, and the
// agent's behaviour when a host connection drops.
#include <catch2/catch_test_macros.hpp>

#include <signal.h>

#include <thread>

#include "agent_harness.hpp"

using namespace agent_test;
using warren::agent::exec_request;

namespace {
exec_request sh(std::string command) {
  exec_request r;
  r.command = std::move(command);
  return r;
}
}  // namespace

TEST_CASE("exec runs a shell command with env merged over the agent's, cwd and stdin") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  REQUIRE(c);
  auto req = sh("echo \"$GREETING from $(pwd)\"; test -n \"$PATH\" && echo has-path; cat");
  req.env = {{"GREETING", "hello"}};
  req.cwd = agent.root;
  auto r = run(io, *c, req, "piped input\n");
  REQUIRE(r.exit);
  CHECK(r.exit->exit_code == 0);
  CHECK_FALSE(r.exit->timed_out);
  CHECK(r.out == "hello from " + agent.root + "\nhas-path\npiped input\n");
  CHECK(r.err.empty());
  CHECK(r.pid > 0);
}

TEST_CASE("exec with argv runs the program directly") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  exec_request req;
  req.argv = {"printf", "%s|%s", "a b", "$HOME"};
  auto r = run(io, *c, req);
  REQUIRE(r.exit);
  CHECK(r.out == "a b|$HOME");
}

TEST_CASE("exec reports exit codes and keeps stdout and stderr apart") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  auto r = run(io, *c, sh("echo out; echo err >&2; exit 42"));
  REQUIRE(r.exit);
  CHECK(r.exit->exit_code == 42);
  CHECK(r.exit->signal == 0);
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  CHECK(r.exit->duration_ms >= 0);
}

TEST_CASE("exec of a process killed by a signal reports the signal") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  auto r = run(io, *c, sh("kill -TERM $$"));
  REQUIRE(r.exit);
  CHECK(r.exit->signal == SIGTERM);
  CHECK(r.exit->exit_code == 128 + SIGTERM);
}

TEST_CASE("exec in a missing cwd fails with bad_request naming the directory") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  auto req = sh("true");
  req.cwd = "/nope";
  auto r = run(io, *c, req);
  REQUIRE(r.error);
  CHECK(r.error->code == warren::errc::bad_request);
  CHECK(r.error->message == "cwd /nope does not exist");
  req.cwd = "relative";
  r = run(io, *c, req);
  REQUIRE(r.error);
  CHECK(r.error->code == warren::errc::bad_request);
}

TEST_CASE("exec of a missing program fails with not_found; bad requests with bad_request") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  exec_request req;
  req.argv = {"/no/such/program"};
  auto r = run(io, *c, req);
  REQUIRE(r.error);
  CHECK(r.error->code == warren::errc::not_found);
  r = run(io, *c, exec_request{});
  REQUIRE(r.error);
  CHECK(r.error->code == warren::errc::bad_request);
}

TEST_CASE("exec past its timeout kills the process group, grandchildren included") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  auto req = sh("sleep 30 & echo $!; sleep 30");
  req.timeout_ms = 300;
  auto r = run(io, *c, req);
  REQUIRE(r.exit);
  CHECK(r.exit->timed_out);
  CHECK(r.exit->signal == SIGKILL);
  CHECK(r.exit->duration_ms < 5000);
  pid_t grandchild = std::stoi(r.out);
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !pid_alive(grandchild);
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  CHECK(gone);
}

TEST_CASE("exec output a host stops reading blocks the child; 100 MB then flows bounded") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  std::size_t got = 0;
  std::optional<warren::agent::exit_info> exit;
  warren::agent::exec_callbacks cb;
  cb.on_stdout = [&](std::string_view s) { got += s.size(); };
  cb.on_exit = [&](const warren::agent::exit_info& x) { exit = x; };
  cb.on_error = [&](const warren::error& e) { FAIL(e.message); };
  auto p = c->exec(sh("head -c 100000000 /dev/zero"), cb);
  p->pause_output();
  run_until(io, [] { return false; }, 700ms);
  // Only the initial window may arrive while paused: the child is blocked on its full pipe.
  CHECK(got <= warren::agent::proto::default_window);
  CHECK_FALSE(exit);
  long rss_paused = agent.rss_kib();
  p->resume_output();
  // Consume in bursts, pausing every few MB, like a slow WebSocket client would.
  std::size_t next_pause = 4u << 20;
  long rss_max = rss_paused;
  REQUIRE(run_until(io, [&] {
    if (got >= next_pause) {
      p->pause_output();
      rss_max = std::max(rss_max, agent.rss_kib());
      p->resume_output();
      next_pause += 4u << 20;
    }
    return exit.has_value();
  }, 120s));
  CHECK(got == 100000000);
  CHECK(exit->exit_code == 0);
  CHECK(rss_max < 32 * 1024);  // KiB: the agent never buffers the stream
}

TEST_CASE("exec with a pty gets a /dev/pts terminal and sees resizes") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  auto r = run(io, *c, [] {
    auto q = sh("tty; stty size");
    q.pty = true;
    q.cols = 80;
    q.rows = 24;
    return q;
  }());
  REQUIRE(r.exit);
  CHECK(r.exit->exit_code == 0);
  CHECK(r.out.find("/dev/pts/") == 0);
  CHECK(r.out.find("24 80") != std::string::npos);

  std::string out;
  std::optional<warren::agent::exit_info> exit;
  warren::agent::exec_callbacks cb;
  cb.on_stdout = [&](std::string_view s) { out.append(s); };
  cb.on_exit = [&](const warren::agent::exit_info& x) { exit = x; };
  auto q = sh("stty size; read line; stty size");
  q.pty = true;
  auto p = c->exec(q, cb);
  REQUIRE(run_until(io, [&] { return out.find("24 80") != std::string::npos; }));
  p->resize(100, 30);
  p->write_stdin("go\n");
  REQUIRE(run_until(io, [&] { return exit.has_value(); }));
  CHECK(out.find("30 100") != std::string::npos);
}

TEST_CASE("a pty exec is a session leader with job control; signal reaches its group") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  std::string out;
  std::optional<warren::agent::exit_info> exit;
  warren::agent::exec_callbacks cb;
  cb.on_stdout = [&](std::string_view s) { out.append(s); };
  cb.on_exit = [&](const warren::agent::exit_info& x) { exit = x; };
  auto q = sh("echo ready; sleep 30");
  q.pty = true;
  auto p = c->exec(q, cb);
  REQUIRE(run_until(io, [&] { return out.find("ready") != std::string::npos; }));
  p->signal(SIGINT);
  REQUIRE(run_until(io, [&] { return exit.has_value(); }));
  CHECK(exit->signal == SIGINT);
}

TEST_CASE("many concurrent execs on one connection each get their own output") {
  agent_process agent;
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  constexpr int n = 20;
  std::vector<std::string> outs(n);
  int exits = 0;
  std::vector<std::shared_ptr<warren::agent::process>> procs;
  for (int i = 0; i < n; ++i) {
    warren::agent::exec_callbacks cb;
    cb.on_stdout = [&outs, i](std::string_view s) { outs[i].append(s); };
    cb.on_exit = [&](const warren::agent::exit_info&) { ++exits; };
    procs.push_back(c->exec(sh("for j in 1 2 3; do echo " + std::to_string(i) + "; done"), cb));
  }
  REQUIRE(run_until(io, [&] { return exits == n; }));
  for (int i = 0; i < n; ++i) {
    auto s = std::to_string(i) + "\n";
    CHECK(outs[i] == s + s + s);
  }
}

TEST_CASE("a dropped host connection kills its processes and the agent keeps serving") {
  agent_process agent;
  int64_t pid = 0;
  {
    boost::asio::io_context io;
    auto c = connect(io, agent.socket);
    REQUIRE(c);
    warren::agent::exec_callbacks cb;
    cb.on_start = [&](int64_t p) { pid = p; };
    auto p = c->exec(sh("sleep 30"), cb);
    REQUIRE(run_until(io, [&] { return pid != 0; }));
    c.reset();  // closes the connection mid-stream
    run_until(io, [] { return false; }, 100ms);
  }
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    gone = !pid_alive(static_cast<pid_t>(pid));
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  CHECK(gone);
  boost::asio::io_context io;
  auto c = connect(io, agent.socket);
  REQUIRE(c);
  auto r = run(io, *c, sh("echo still here"));
  REQUIRE(r.exit);
  CHECK(r.out == "still here\n");
}

TEST_CASE("processes of one connection survive another connection dropping") {
  agent_process agent;
  boost::asio::io_context io;
  auto keeper = connect(io, agent.socket);
  auto dropper = connect(io, agent.socket);
  REQUIRE(keeper);
  REQUIRE(dropper);
  std::string out;
  std::optional<warren::agent::exit_info> exit;
  warren::agent::exec_callbacks cb;
  cb.on_stdout = [&](std::string_view s) { out.append(s); };
  cb.on_exit = [&](const warren::agent::exit_info& x) { exit = x; };
  auto p = keeper->exec(sh("read x; echo got $x"), cb);
  dropper.reset();
  run_until(io, [] { return false; }, 200ms);
  p->write_stdin("it\n");
  REQUIRE(run_until(io, [&] { return exit.has_value(); }));
  CHECK(out == "got it\n");
}
