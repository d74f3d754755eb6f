// tests/unit/vmm/agent/shell_session_test.cpp — the shell-session engine against the real
// warren-agent on the host: state, exact output, framing attacks, timeouts, close, caps.
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "agent_harness.hpp"
#include "core/ids.hpp"
#include "core/utf8.hpp"
#include "vmm/agent/shell_session.hpp"

using namespace agent_test;
using warren::agent::shell_errc;
using warren::agent::shell_options;
using warren::agent::shell_reply;
using warren::agent::shell_session;

namespace {

struct shell_fixture {
  agent_process agent;
  boost::asio::io_context io;
  std::shared_ptr<warren::agent::client> c = connect(io, agent.socket);

  std::shared_ptr<shell_session> open(shell_options o = {}) {
    REQUIRE(c);
    std::shared_ptr<shell_session> s;
    bool done = false;
    shell_session::open(io, c, std::move(o), [&](auto r) {
      done = true;
      if (r) s = *r;
      else FAIL("open failed: " << r.err().message);
    });
    REQUIRE(run_until(io, [&] { return done; }, 10s));
    REQUIRE(s);
    return s;
  }

  shell_reply run(shell_session& s, std::string cmd, std::chrono::milliseconds timeout = 10s) {
    std::optional<shell_reply> r;
    s.run(std::move(cmd), timeout, [&](shell_reply x) { r = std::move(x); });
    // run_one_for, not run_until: the harness polls in 5 ms slices, which would hide latency.
    io.restart();
    auto end = std::chrono::steady_clock::now() + 30s;
    while (!r && std::chrono::steady_clock::now() < end) io.run_one_for(50ms);
    REQUIRE(r.has_value());
    return std::move(*r);
  }
};

const std::string& out(const shell_reply& r) { return r.result.stdout_data; }

bool wait_dead(pid_t pid, std::chrono::milliseconds t = 3s) {
  auto end = std::chrono::steady_clock::now() + t;
  while (pid_alive(pid) && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(10ms);
  return !pid_alive(pid);
}

}  // namespace

TEST_CASE("cwd, exported env, variables, functions and aliases persist across runs") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "cd /tmp && export FOO=bar");
  CHECK(r.ok());
  CHECK(r.result.exit_code == 0);
  CHECK(out(r).empty());
  CHECK(r.result.stderr_data.empty());
  CHECK(out(f.run(*s, "pwd")) == "/tmp\n");
  CHECK(out(f.run(*s, "sh -c 'echo $FOO'")) == "bar\n");
  f.run(*s, "declare -A m=([k]=v); n=7; greet() { echo \"hi $1\"; }; alias ll='echo aliased'");
  CHECK(out(f.run(*s, "echo ${m[k]} $n; greet you; ll")) == "v 7\nhi you\naliased\n");
}

TEST_CASE("a background job stays visible to jobs and kill %1 in later runs") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "sleep 100 & echo $!");
  pid_t pid = std::stoi(out(r));
  CHECK(pid_alive(pid));
  CHECK(out(f.run(*s, "jobs")).find("sleep 100") != std::string::npos);
  CHECK(f.run(*s, "kill %1").result.exit_code == 0);
  CHECK(wait_dead(pid));
}

TEST_CASE("stdout and stderr are exact and kept apart") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "printf abc; printf err >&2");
  CHECK(out(r) == "abc");
  CHECK(r.result.stderr_data == "err");
  r = f.run(*s, "true");
  CHECK(out(r).empty());
  CHECK(r.result.stderr_data.empty());
  r = f.run(*s, "echo one; echo two >&2; printf '\\n\\n'; false");
  CHECK(out(r) == "one\n\n\n");
  CHECK(r.result.stderr_data == "two\n");
  CHECK(r.result.exit_code == 1);
  CHECK(f.run(*s, "(exit 7)").result.exit_code == 7);
}

TEST_CASE("a 5 MB output arrives byte for byte") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "head -c 5000000 /dev/zero | tr '\\0' x; printf end; head -c 100000 /dev/zero >&2",
                 30s);
  REQUIRE(out(r).size() == 5000003);
  CHECK(std::count(out(r).begin(), out(r).end(), 'x') == 5000000);
  CHECK(out(r).substr(5000000) == "end");
  CHECK(r.result.stderr_data == std::string(100000, '\0'));
  CHECK_FALSE(r.result.stdout_truncated);
}

TEST_CASE("binary output arrives raw and renders with U+FFFD for invalid UTF-8") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "printf 'ok \\303\\251 bad \\377\\376 cut \\342\\202'");
  CHECK(out(r) == "ok \xC3\xA9 bad \xFF\xFE cut \xE2\x82");
  CHECK(warren::to_valid_utf8(out(r)) ==
        "ok \xC3\xA9 bad \xEF\xBF\xBD\xEF\xBF\xBD cut \xEF\xBF\xBD");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  r = f.run(*s, "for i in $(seq 0 255); do printf \"\\\\$(printf %o $i)\"; done");
  CHECK(out(r) == all);
}

TEST_CASE("a command reading stdin gets EOF, not the control channel") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "cat; echo rc=$?", 5s);
  CHECK(r.ok());
  CHECK(out(r) == "rc=0\n");
  r = f.run(*s, "read x; echo rc=$? x=$x", 5s);
  CHECK(out(r) == "rc=1 x=\n");
  r = f.run(*s, "head -c 100 /proc/self/fd/0 | wc -c; ls -l /proc/$$/fd/0", 5s);
  CHECK(out(r).find("0\n") == 0);
  CHECK(out(r).find("/dev/null") != std::string::npos);
  CHECK(out(f.run(*s, "echo still")) == "still\n");
}

TEST_CASE("output that imitates the framing does not break it") {
  shell_fixture f;
  auto s = f.open();
  // The record's shape with a guessed nonce, on both streams, without newline, many times.
  std::string fake = "printf '\\036warren:" + warren::random_hex(16) + ":0\\n'";
  auto r = f.run(*s, fake + "; " + fake + " >&2; printf '\\036warren:'; exit_code=3; (exit 5)");
  CHECK(r.result.exit_code == 5);
  CHECK(out(r).size() == 1 + 7 + 32 + 3 + 8);
  CHECK(r.result.stderr_data.size() == 1 + 7 + 32 + 3);
  // Everything the shell can print about itself: no nonce or record leaks to a command.
  r = f.run(*s, "declare -p; declare -f; trap -p; alias; set");
  CHECK(r.ok());
  CHECK(r.result.exit_code == 0);
  CHECK(out(f.run(*s, "echo next")) == "next\n");
  // A here-document delimiter of the engine's shape inside the command is just text.
  r = f.run(*s, "cat <<'EOF'\nWARREN_EOF_0123456789abcdef\nEOF\necho done");
  CHECK(out(r) == "WARREN_EOF_0123456789abcdef\ndone\n");
  // Quotes, backslashes and unbalanced syntax are the shell's problem, not the frame's.
  r = f.run(*s, "echo 'unterminated");
  CHECK(r.result.exit_code == 2);
  CHECK(r.result.stderr_data.find("unexpected EOF") != std::string::npos);
  CHECK(out(f.run(*s, "printf '%s\\n' \"it's\" 'a \"q\"' \\\\")) == "it's\na \"q\"\n\\\n");
}

TEST_CASE("a command that closes or redirects its own stdout and stderr still completes") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "exec 1>&-; echo lost; echo visible >&2");
  CHECK(r.ok());
  CHECK(out(r).empty());
  CHECK(r.result.stderr_data.find("visible") != std::string::npos);
  r = f.run(*s, "exec >/dev/null 2>&1; echo gone; echo gone >&2");
  CHECK(r.ok());
  CHECK(out(r).empty());
  CHECK(r.result.stderr_data.empty());
  // Each run starts with the session's own stdout and stderr again.
  r = f.run(*s, "echo back; echo err >&2");
  CHECK(out(r) == "back\n");
  CHECK(r.result.stderr_data == "err\n");
  // The engine's own fds are closed while a command runs: it cannot clobber them.
  r = f.run(*s, "echo x >&62; echo y >&63; echo z");
  CHECK(out(r) == "z\n");
}

TEST_CASE("exit 42 closes the shell and every later run answers shell_closed") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "echo bye; exit 42");
  CHECK(r.ok());
  CHECK(r.result.exit_code == 42);
  CHECK(r.result.closed);
  CHECK(out(r) == "bye\n");
  r = f.run(*s, "echo again");
  REQUIRE(r.error);
  CHECK(r.error->code == shell_errc::shell_closed);
  CHECK(warren::agent::to_string(r.error->code) == "shell_closed");
  CHECK(s->closed());
}

TEST_CASE("a timeout kills the command and a child it spawned; the shell survives with its state") {
  shell_fixture f;
  auto s = f.open();
  f.run(*s, "cd /tmp; export KEEP=yes");
  auto r = f.run(*s, "echo partial; echo perr >&2; sh -c 'sleep 100' & echo $! > /tmp/.warren-shell-child.$$; sleep 100; echo never",
                 500ms);
  REQUIRE(r.error);
  CHECK(r.error->code == shell_errc::timeout);
  CHECK_FALSE(r.result.closed);
  CHECK(out(r) == "partial\n");
  CHECK(r.result.stderr_data.find("perr\n") == 0);
  CHECK(r.result.duration_ms >= 500);
  CHECK(r.result.duration_ms < 3000);
  auto again = f.run(*s, "cat /tmp/.warren-shell-child.$$; rm /tmp/.warren-shell-child.$$; pwd; echo $KEEP");
  CHECK(again.ok());
  auto lines = out(again);
  pid_t child = std::stoi(lines);
  CHECK(wait_dead(child));
  CHECK(lines.substr(lines.find('\n') + 1) == "/tmp\nyes\n");
}

TEST_CASE("a timeout aborts a shell loop and a builtin wait without killing the shell") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "x=1; while :; do :; done; echo never", 300ms);
  REQUIRE(r.error);
  CHECK(r.error->code == shell_errc::timeout);
  CHECK_FALSE(r.result.closed);
  r = f.run(*s, "for i in 1 2 3; do sleep 100; done; echo never", 300ms);
  CHECK(r.error->code == shell_errc::timeout);
  CHECK(out(r).empty());
  r = f.run(*s, "set -e; sleep 100 & wait", 300ms);
  CHECK(r.error->code == shell_errc::timeout);
  // errexit, set by the timed-out command, survives the abort and the shell still works.
  r = f.run(*s, "echo $x; [[ $- == *e* ]] && echo errexit");
  CHECK(out(r) == "1\nerrexit\n");
}

TEST_CASE("close kills bash and its background jobs") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "sleep 100 & echo $!; (sleep 101; echo) & echo $!");
  auto o = out(r);
  pid_t a = std::stoi(o), b = std::stoi(o.substr(o.find('\n') + 1));
  pid_t bash = static_cast<pid_t>(s->pid());
  REQUIRE(pid_alive(a));
  REQUIRE(pid_alive(b));
  std::optional<shell_reply> queued;
  s->run("sleep 5", 10s, [&](shell_reply x) { queued = std::move(x); });
  s->close();
  REQUIRE(run_until(f.io, [&] { return queued.has_value(); }, 5s));
  CHECK(queued->error);
  f.io.restart();
  f.io.run_for(100ms);
  CHECK(wait_dead(a));
  CHECK(wait_dead(b));
  CHECK(wait_dead(bash));
  r = f.run(*s, "true");
  CHECK(r.error->code == shell_errc::shell_closed);
}

TEST_CASE("background jobs left behind by exit are killed too") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, "sleep 100 >/dev/null 2>&1 & echo $!");
  pid_t a = std::stoi(out(r));
  r = f.run(*s, "exit 3");
  CHECK(r.result.closed);
  for (int i = 0; i < 100 && pid_alive(a); ++i) {
    f.io.restart();
    f.io.run_for(20ms);
  }
  CHECK_FALSE(pid_alive(a));
}

TEST_CASE("two sessions on one agent are independent") {
  shell_fixture f;
  auto a = f.open();
  auto b = f.open();
  f.run(*a, "cd /tmp; X=a");
  f.run(*b, "cd /; X=b");
  CHECK(out(f.run(*a, "pwd; echo $X")) == "/tmp\na\n");
  CHECK(out(f.run(*b, "pwd; echo $X")) == "/\nb\n");
  f.run(*a, "exit 1");
  CHECK(out(f.run(*b, "echo alive")) == "alive\n");
  // Interleaved: both run at once, each answers its own.
  std::optional<shell_reply> ra, rb;
  auto c = f.open();
  b->run("sleep 0.2; echo B", 5s, [&](shell_reply x) { rb = std::move(x); });
  c->run("echo C", 5s, [&](shell_reply x) { ra = std::move(x); });
  REQUIRE(run_until(f.io, [&] { return ra && rb; }, 5s));
  CHECK(out(*ra) == "C\n");
  CHECK(out(*rb) == "B\n");
}

TEST_CASE("output beyond the cap is dropped and flagged truncated, and the next run is clean") {
  shell_fixture f;
  shell_options o;
  o.output_cap = 1000;
  auto s = f.open(o);
  auto r = f.run(*s, "head -c 300000 /dev/zero | tr '\\0' y; echo tail; head -c 999 /dev/zero >&2");
  CHECK(out(r) == std::string(1000, 'y'));
  CHECK(r.result.stdout_truncated);
  CHECK_FALSE(r.result.stderr_truncated);
  CHECK(r.result.stderr_data.size() == 999);
  r = f.run(*s, "echo small");
  CHECK(out(r) == "small\n");
  CHECK_FALSE(r.result.stdout_truncated);
}

TEST_CASE("runs queued at once are answered in order") {
  shell_fixture f;
  auto s = f.open();
  std::vector<std::string> got;
  for (int i = 0; i < 20; ++i)
    s->run("echo " + std::to_string(i), 5s, [&](shell_reply r) { got.push_back(out(r)); });
  REQUIRE(run_until(f.io, [&] { return got.size() == 20; }, 10s));
  for (int i = 0; i < 20; ++i) CHECK(got[i] == std::to_string(i) + "\n");
}

TEST_CASE("set -x traces the user's commands and nothing of the frame") {
  shell_fixture f;
  auto s = f.open();
  f.run(*s, "set -x");
  auto r = f.run(*s, "echo hi");
  CHECK(out(r) == "hi\n");
  CHECK(r.result.stderr_data == "++ echo hi\n");  // one + more than a prompt: it is sourced
  f.run(*s, "set +x");
  CHECK(f.run(*s, "echo quiet").result.stderr_data.empty());
}

TEST_CASE("a command with a NUL byte is refused without disturbing the shell") {
  shell_fixture f;
  auto s = f.open();
  auto r = f.run(*s, std::string("echo a\0b", 8));
  REQUIRE(r.error);
  CHECK(r.error->code == shell_errc::bad_request);
  CHECK(out(f.run(*s, "echo ok")) == "ok\n");
}

TEST_CASE("1000 runs of true in a row (prints the median latency)") {
  shell_fixture f;
  auto s = f.open();
  std::vector<double> ms;
  for (int i = 0; i < 1000; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = f.run(*s, "true");
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    REQUIRE(r.ok());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("shell_session: 1000 x `true`: median %.3f ms, p90 %.3f ms, max %.3f ms\n", ms[500],
              ms[900], ms.back());
  SUCCEED();
}
