// Tests vmm/jail/slot_lock.cpp: host-wide slot claims between drivers and processes.
#include <catch2/catch_test_macros.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "vmm/jail/slot_lock.hpp"

using warren::vmm::jail::slot_locks;

namespace {
std::string temp_dir() {
  char tmpl[] = "/tmp/warren-slot-lock-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  return tmpl;
}
}  // namespace

TEST_CASE("two drivers never hold the same slot; a released slot can be claimed again") {
  auto dir = temp_dir();
  {
    slot_locks a(dir), b(dir);
    CHECK(a.claim(0));
    CHECK(a.claim(0));  // idempotent for its holder
    CHECK_FALSE(b.claim(0));
    CHECK(b.claim(1));
    CHECK_FALSE(a.claim(1));
    a.release(0);
    CHECK(b.claim(0));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a claim dies with the process that held it") {
  auto dir = temp_dir();
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    slot_locks c(dir);
    char ok = c.claim(7) ? '1' : '0';
    (void)!::write(ready[1], &ok, 1);
    ::pause();  // until killed
    ::_exit(0);
  }
  char got = 0;
  REQUIRE(::read(ready[0], &got, 1) == 1);
  CHECK(got == '1');
  slot_locks me(dir);
  CHECK_FALSE(me.claim(7));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  CHECK(me.claim(7));
  ::close(ready[0]);
  ::close(ready[1]);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a lock dir that cannot be made refuses every claim") {
  slot_locks nowhere("/proc/warren-no-such-dir");
  CHECK_FALSE(nowhere.claim(0));
}
