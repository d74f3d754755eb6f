// tests/unit/vmm/microvm/host_probe_test.cpp — the /v1/info "drivers.microvm" report on fake hosts.
#include <catch2/catch_test_macros.hpp>

#include <sys/stat.h>

#include "fake_root.hpp"
#include "vmm/microvm/host_probe.hpp"

using namespace warren::vmm::microvm;

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("microvm report: never available yet; names what the host lacks and the accelerator") {
  fake_root host;
  SECTION("a bare host") {
    auto j = probe_host(accel_mode::automatic, host.path);
    CHECK(j["available"] == false);
    const std::string reason = j["reason"];
    CHECK(contains(reason, "not built yet"));
    CHECK(contains(reason, "lacks qemu-system-x86_64 and /usr/share/qemu/qboot.rom"));
    CHECK(j["qemu"] == false);
    CHECK(j["firmware"] == false);
    CHECK(j["accel"] == "tcg");
    CHECK(contains(j["accel_reason"].get<std::string>(), "no /dev/kvm"));
  }
  SECTION("QEMU and qboot installed, KVM from kvm_pvm") {
    host.file("usr/bin/qemu-system-x86_64", "#!/bin/sh\n");
    ::chmod(host.at("usr/bin/qemu-system-x86_64").c_str(), 0755);
    host.file("usr/share/qemu/qboot.rom", std::string(65536, '\0'));
    host.file("dev/kvm");
    host.dir("sys/module/kvm_pvm");
    auto j = probe_host(accel_mode::automatic, host.path);
    CHECK(j["available"] == false);
    CHECK_FALSE(contains(j["reason"].get<std::string>(), "lacks"));
    CHECK(j["qemu"] == true);
    CHECK(j["firmware"] == true);
    CHECK(j["accel"] == "tcg");
    CHECK(contains(j["accel_reason"].get<std::string>(), "kvm_pvm"));
  }
  SECTION("a forced kvm that cannot be had leaves accel null, saying why") {
    auto j = probe_host(accel_mode::kvm, host.path);
    CHECK(j["accel"].is_null());
    CHECK(contains(j["accel_reason"].get<std::string>(), "microvm.accel = kvm"));
  }
}

TEST_CASE("microvm report on this host answers every field") {
  auto j = probe_host();
  CHECK(j["available"] == false);
  CHECK(j["qemu"].is_boolean());
  CHECK((j["accel"] == "kvm" || j["accel"] == "tcg"));
  CHECK_FALSE(j["accel_reason"].get<std::string>().empty());
}
