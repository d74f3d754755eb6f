// tests/unit/vmm/microvm/accel_probe_test.cpp — KVM vs TCG on fake hosts (a directory as root).
#include <catch2/catch_test_macros.hpp>

#include "fake_root.hpp"
#include "vmm/microvm/accel_probe.hpp"

using namespace warren::vmm::microvm;

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Probes `root` and checks the accelerator chosen and a phrase of the reason.
void expect_choice(const std::string& root, accel_mode mode, const std::string& accel, const std::string& why) {
  auto c = probe_accel(mode, root);
  REQUIRE(c);
  CHECK(c->accel == accel);
  CHECK(contains(c->reason, why));
}
}  // namespace

TEST_CASE("accel config values parse; anything else is refused") {
  CHECK(parse_accel_mode("auto") == accel_mode::automatic);
  CHECK(parse_accel_mode("kvm") == accel_mode::kvm);
  CHECK(parse_accel_mode("tcg") == accel_mode::tcg);
  CHECK_FALSE(parse_accel_mode("KVM"));
  CHECK_FALSE(parse_accel_mode(""));
  CHECK_FALSE(parse_accel_mode("hvf"));
}

TEST_CASE("auto: a real, openable /dev/kvm without kvm_pvm gives KVM") {
  fake_root host;
  host.file("dev/kvm");
  host.file("proc/modules", "kvm_intel 380928 0 - Live 0x0\nkvm 1142784 1 kvm_intel, Live 0x0\n");
  host.dir("sys/module/kvm");
  expect_choice(host.path, accel_mode::automatic, "kvm", "not kvm_pvm");
}

TEST_CASE("auto: kvm_pvm means TCG, whether /sys or /proc/modules shows it") {
  SECTION("/sys/module/kvm_pvm") {
    fake_root host;
    host.file("dev/kvm");
    host.dir("sys/module/kvm_pvm");
    expect_choice(host.path, accel_mode::automatic, "tcg", "kvm_pvm");
  }
  SECTION("/proc/modules only (no /sys)") {
    fake_root host;
    host.file("dev/kvm");
    host.file("proc/modules", "kvm 1142784 1 kvm_pvm, Live 0x0\nkvm_pvm 86016 0 - Live 0x0\n");
    expect_choice(host.path, accel_mode::automatic, "tcg", "kvm_pvm");
  }
  SECTION("a module that only depends on kvm_pvm's name is not it") {
    fake_root host;
    host.file("dev/kvm");
    host.file("proc/modules", "kvm_pvm_helper 1 0 - Live 0x0\nkvm 1 1 kvm_pvm, Live 0x0\n");
    expect_choice(host.path, accel_mode::automatic, "kvm", "not kvm_pvm");
  }
}

TEST_CASE("auto: no /dev/kvm, or one that does not open, gives TCG and says which") {
  SECTION("absent") {
    fake_root host;
    expect_choice(host.path + "/", accel_mode::automatic, "tcg", "no /dev/kvm");  // a trailing slash is fine
  }
  SECTION("not openable read-write (a directory: EISDIR even for root)") {
    fake_root host;
    host.dir("dev/kvm");
    expect_choice(host.path, accel_mode::automatic, "tcg", "cannot be opened");
  }
}

TEST_CASE("config forces either accelerator") {
  fake_root host;
  SECTION("tcg, even with a real KVM") {
    host.file("dev/kvm");
    expect_choice(host.path, accel_mode::tcg, "tcg", "forced");
  }
  SECTION("kvm over kvm_pvm is honoured, with the warning") {
    host.file("dev/kvm");
    host.dir("sys/module/kvm_pvm");
    expect_choice(host.path, accel_mode::kvm, "kvm", "forced by config (microvm.accel = kvm), although the host's KVM is kvm_pvm");
  }
  SECTION("kvm without /dev/kvm is unavailable, naming why") {
    auto c = probe_accel(accel_mode::kvm, host.path);
    REQUIRE_FALSE(c);
    CHECK(c.err().code == warren::errc::unavailable);
    CHECK(contains(c.err().message, "no /dev/kvm"));
  }
}
