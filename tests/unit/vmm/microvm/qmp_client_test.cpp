// tests/unit/vmm/microvm/qmp_client_test.cpp — the QMP client against a scripted peer on a
// socketpair (well-formed, late, hostile), and against a real QEMU (skips without one).
#include <catch2/catch_test_macros.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "fake_root.hpp"
#include "vmm/microvm/qmp_client.hpp"

using namespace warren::vmm::microvm;
using nlohmann::json;
using namespace std::chrono_literals;

extern char** environ;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The QEMU end of a socketpair, run on its own thread by a script. It asserts nothing itself
// (Catch2 3.7's assertions are not thread-safe): what it received is checked after it ends.
struct fake_qemu {
  int fd = -1;
  std::string buf;
  std::vector<json> seen;  // every command received
  void send(const std::string& s) const {
    std::size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }
  void greet() const { send(R"({"QMP": {"version": {"qemu": {"major": 10, "minor": 0, "micro": 2}}, "capabilities": []}})" "\n"); }
  // The next command the client sent; null when it closed.
  json command() {
    for (;;) {
      auto nl = buf.find('\n');
      if (nl != std::string::npos) {
        json j = json::parse(buf.substr(0, nl), nullptr, false);
        buf.erase(0, nl + 1);
        seen.push_back(j);
        return j;
      }
      char c[4096];
      ssize_t n = ::read(fd, c, sizeof c);
      if (n <= 0) return nullptr;
      buf.append(c, static_cast<std::size_t>(n));
    }
  }
  void reply(const json& cmd, const json& ret) const { send(json{{"return", ret}, {"id", cmd["id"]}}.dump() + "\n"); }
  // Greets and accepts qmp_capabilities, as QEMU does.
  void negotiate() {
    greet();
    json c = command();
    if (c.is_object() && c["execute"] == "qmp_capabilities") reply(c, json::object());
  }
};

// Runs `script` as the peer of a client handshaking over a socketpair; `test` gets the result.
// Returns the commands the peer received.
std::vector<json> with_peer(std::function<void(fake_qemu&)> script,
               std::function<void(warren::expected<qmp_client>&)> test, qmp_options opt = {}) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  fake_qemu peer{sv[1], {}, {}};
  std::thread t([&] { script(peer); });
  std::exception_ptr failed;  // a failed REQUIRE must still join the peer first
  try {
    auto c = qmp_client::handshake(sv[0], opt);
    test(c);
  } catch (...) {  // the client closed its end on the way out, which ends a peer still reading
    failed = std::current_exception();
  }
  t.join();
  if (failed) std::rethrow_exception(failed);
  ::close(sv[1]);
  return std::move(peer.seen);
}

qmp_options quick() {
  qmp_options o;
  o.timeout = 300ms;
  return o;
}

// The error of execute("query-status") when the peer answers it by `answer`. A connection that
// broke then refuses every later command at once, without sending it.
warren::error failed_query(std::function<void(fake_qemu&, const json&)> answer, qmp_options opt = quick()) {
  warren::error failed;
  with_peer(
      [&answer](fake_qemu& q) {
        q.negotiate();
        answer(q, q.command());
        q.command();
      },
      [&failed](warren::expected<qmp_client>& c) {
        REQUIRE(c);
        auto r = c->execute("query-status");
        REQUIRE_FALSE(r);
        failed = r.err();
        if (failed.code == warren::errc::bad_gateway) {
          CHECK_FALSE(c->connected());
          auto again = c->execute("query-status");
          REQUIRE_FALSE(again);
          CHECK(contains(again.err().message, "not connected"));
        }
      },
      opt);
  return failed;
}

}  // namespace

TEST_CASE("qmp: greeting, capabilities, commands with arguments, events kept in order") {
  auto seen = with_peer(
      [](fake_qemu& q) {
        q.negotiate();
        json c = q.command();
        // Events arrive before the reply and must not be taken for it.
        q.send(R"({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}})" "\n");
        q.send("\r\n");  // blank lines are tolerated
        q.send(R"({"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 3}})" "\n");
        q.reply(c, "VM status: paused\r\n");
        c = q.command();
        q.send(json{{"error", {{"class", "CommandNotFound"}, {"desc", "The command nope has not been found"}}},
                    {"id", c["id"]}}.dump() + "\n");
        q.command();
      },
      [](warren::expected<qmp_client>& c) {
        REQUIRE(c);
        CHECK(c->greeting()["version"]["qemu"]["major"] == 10);
        auto r = c->execute("human-monitor-command", {{"command-line", "info status"}});
        REQUIRE(r);
        CHECK(*r == "VM status: paused\r\n");
        REQUIRE(c->events().size() == 2);
        CHECK(c->events()[0]["event"] == "STOP");
        CHECK(c->events()[1]["event"] == "RESUME");
        auto e = c->execute("nope");
        REQUIRE_FALSE(e);
        CHECK(e.err().code == warren::errc::bad_request);
        CHECK(contains(e.err().message, "CommandNotFound"));
        CHECK(contains(e.err().message, "The command nope has not been found"));
        CHECK(c->connected());  // a QMP error is an answer, not a broken connection
      });
  REQUIRE(seen.size() == 3);
  CHECK(seen[0]["execute"] == "qmp_capabilities");
  CHECK(seen[1]["execute"] == "human-monitor-command");
  CHECK(seen[1]["arguments"]["command-line"] == "info status");
  CHECK(seen[2]["execute"] == "nope");
  CHECK_FALSE(seen[2].contains("arguments"));
  CHECK(seen[1]["id"] != seen[2]["id"]);
}

TEST_CASE("qmp: a reply that comes after its command timed out is not taken for the next one's") {
  with_peer(
      [](fake_qemu& q) {
        q.negotiate();
        json slow = q.command();
        json next = q.command();  // sent by the client after `slow` timed out
        q.reply(slow, "late");
        q.reply(next, "mine");
        q.command();
      },
      [](warren::expected<qmp_client>& c) {
        REQUIRE(c);
        auto t0 = std::chrono::steady_clock::now();
        auto slow = c->execute("query-status");
        REQUIRE_FALSE(slow);
        CHECK(slow.err().code == warren::errc::timeout);
        CHECK(contains(slow.err().message, "query-status"));
        CHECK(std::chrono::steady_clock::now() - t0 < 3s);
        auto next = c->execute("query-version");
        REQUIRE(next);
        CHECK(*next == "mine");
      },
      quick());
}

TEST_CASE("qmp: next_event waits for an event, returning queued ones first") {
  with_peer(
      [](fake_qemu& q) {
        q.negotiate();
        std::this_thread::sleep_for(50ms);
        q.send(R"({"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}})" "\n");
        q.command();
      },
      [](warren::expected<qmp_client>& c) {
        REQUIRE(c);
        auto ev = c->next_event(2s);
        REQUIRE(ev);
        CHECK((*ev)["event"] == "SHUTDOWN");
        CHECK(c->events().empty());
        auto none = c->next_event(50ms);
        REQUIRE_FALSE(none);
        CHECK(none.err().code == warren::errc::timeout);
      });
}

TEST_CASE("qmp: hostile or broken peers fail cleanly, naming what was wrong") {
  SECTION("garbage instead of a greeting") {
    with_peer([](fake_qemu& q) { q.send("SSH-2.0-OpenSSH_9.2\r\n"); },
              [](warren::expected<qmp_client>& c) {
                REQUIRE_FALSE(c);
                CHECK(c.err().code == warren::errc::bad_gateway);
                CHECK(contains(c.err().message, "not a JSON object"));
              });
  }
  SECTION("JSON that is not QMP's greeting") {
    with_peer([](fake_qemu& q) { q.send("{\"hello\": 1}\n[1, 2]\n"); },
              [](warren::expected<qmp_client>& c) {
                REQUIRE_FALSE(c);
                CHECK(contains(c.err().message, "greeting"));
              });
  }
  SECTION("a JSON array where an object belongs") {
    auto e = failed_query([](fake_qemu& q, const json&) { q.send("[1, 2, 3]\n"); });
    CHECK(e.code == warren::errc::bad_gateway);
    CHECK(contains(e.message, "not a JSON object"));
  }
  SECTION("a reply cut off by the peer closing") {
    auto e = failed_query([](fake_qemu& q, const json&) {
      q.send(R"({"return": {"status": "runn)");
      ::shutdown(q.fd, SHUT_RDWR);
    });
    CHECK(e.code == warren::errc::bad_gateway);
    CHECK(contains(e.message, "mid-message"));
  }
  SECTION("a line past the limit, with or without its newline, is refused without growing") {
    for (bool newline : {false, true}) {
      qmp_options opt = quick();
      opt.max_line = 4096;
      auto e = failed_query(
          [newline](fake_qemu& q, const json&) {
            q.send("{\"return\": \"" + std::string(1u << 20, 'A') + (newline ? "\"}\n" : ""));
          },
          opt);
      CHECK(e.code == warren::errc::bad_gateway);
      CHECK(contains(e.message, "longer than 4096"));
    }
  }
  SECTION("an error object without class or desc is still an error, shown whole") {
    auto e = failed_query([](fake_qemu& q, const json& cmd) { q.send(json{{"error", 42}, {"id", cmd["id"]}}.dump() + "\n"); });
    CHECK(e.code == warren::errc::bad_request);
    CHECK(contains(e.message, "query-status: ?: 42"));
  }
  SECTION("silence: the greeting never comes") {
    auto t0 = std::chrono::steady_clock::now();
    with_peer([](fake_qemu& q) { q.command(); },
              [](warren::expected<qmp_client>& c) {
                REQUIRE_FALSE(c);
                CHECK(c.err().code == warren::errc::timeout);
              },
              quick());
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  }
}

TEST_CASE("qmp: connecting to a socket that never appears times out") {
  fake_root dir;
  qmp_options opt;
  opt.timeout = 200ms;
  auto c = qmp_client::connect(dir.at("qmp.sock"), opt);
  REQUIRE_FALSE(c);
  CHECK(c.err().code == warren::errc::timeout);
  CHECK(contains(c.err().message, "qmp.sock"));
}

TEST_CASE("qmp: a real QEMU microvm, stopped before boot, answers and quits", "[qemu]") {
  const std::string qemu = "/usr/bin/qemu-system-x86_64";
  if (::access(qemu.c_str(), X_OK) != 0) SKIP("qemu-system-x86_64 is not installed (scripts/install-deps.sh)");
  fake_root dir;
  const std::string sock = dir.at("qmp.sock");
  const std::string qmp_arg = "unix:" + sock + ",server=on,wait=off";
  std::vector<std::string> args = {qemu, "-M", "microvm", "-nodefaults", "-no-user-config", "-display", "none",
                                   "-S", "-m", "64", "-accel", "tcg", "-qmp", qmp_arg};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  REQUIRE(::posix_spawn(&pid, qemu.c_str(), nullptr, nullptr, argv.data(), environ) == 0);
  struct reaper {  // never leaves QEMU behind, whatever fails below
    pid_t pid;
    bool reaped = false;
    ~reaper() {
      if (!reaped) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } r{pid};

  qmp_options opt;
  opt.timeout = 10s;
  auto c = qmp_client::connect(sock, opt);
  REQUIRE(c);
  CHECK(c->greeting()["version"]["qemu"]["major"].get<int>() >= 7);

  auto status = c->execute("query-status");
  REQUIRE(status);
  CHECK((*status)["running"] == false);
  CHECK(((*status)["status"] == "prelaunch" || (*status)["status"] == "paused"));

  auto version = c->execute("query-version");
  REQUIRE(version);
  CHECK((*version)["qemu"]["major"] == c->greeting()["version"]["qemu"]["major"]);

  auto bad = c->execute("query-status", {{"no-such-argument", 1}});
  REQUIRE_FALSE(bad);
  CHECK(contains(bad.err().message, "GenericError"));

  auto quit = c->execute("quit");
  REQUIRE(quit);
  int wstatus = 0;
  pid_t got = 0;
  for (int i = 0; i < 200 && got == 0; ++i) {
    got = ::waitpid(pid, &wstatus, WNOHANG);
    if (got == 0) std::this_thread::sleep_for(50ms);
  }
  REQUIRE(got == pid);
  r.reaped = true;
  CHECK(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
}
