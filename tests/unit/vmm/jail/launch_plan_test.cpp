// tests/unit/vmm/jail/launch_plan_test.cpp — the helper's argument encoding and driver_state.
#include <catch2/catch_test_macros.hpp>

#include "vmm/jail/launch_plan.hpp"

using namespace warren::vmm::jail;

TEST_CASE("a launch plan survives the trip to the helper unchanged") {
  launch_plan p;
  p.id = "3f9a0c1d2e4b5a69";
  p.image_rootfs = "/data/images/busybox/latest/rootfs";
  p.run_dir = "/data/sandboxes/3f9a0c1d2e4b5a69";
  p.upper_dir = "/u";
  p.work_dir = "/w";
  p.uid_base = 0x40010000;
  p.cgroup_dirs = {"/sys/fs/cgroup/memory/warren/3f9a0c1d2e4b5a69"};
  p.host_if = "wjd3f9a0c1d2e4b";
  p.host_addr = "10.201.0.1";
  p.guest_addr = "10.201.0.2";
  p.nameservers = {"1.1.1.1"};
  p.env = {{"A", "1"}, {"QUOTE", "a\"b\nc"}};
  p.agent_path = "/bin/warren-agent";
  auto q = decode_launch_plan(encode(p));
  REQUIRE(q);
  CHECK(q->id == p.id);
  CHECK(q->uid_base == p.uid_base);
  CHECK(q->cgroup_dirs == p.cgroup_dirs);
  CHECK(q->env == p.env);
  CHECK(q->nameservers == p.nameservers);
}

TEST_CASE("garbage, truncated and hostile plans are refused") {
  CHECK_FALSE(decode_launch_plan(""));
  CHECK_FALSE(decode_launch_plan("{"));
  CHECK_FALSE(decode_launch_plan("[]"));
  CHECK_FALSE(decode_launch_plan(std::string(100000, 'x')));
  launch_plan p;
  p.id = "../../etc/passwd";
  p.run_dir = "/x";
  CHECK_FALSE(decode_launch_plan(encode(p)));
  launch_plan g;
  g.id = "0123456789abcdef";
  g.run_dir = "/r";
  auto good = encode(g);
  CHECK(decode_launch_plan(good));
  CHECK_FALSE(decode_launch_plan(good.substr(0, good.size() / 2)));
}

TEST_CASE("driver_state round-trips and unknown versions are not adopted") {
  jail_state s;
  s.slot = 7;
  s.init_pid = 1234;
  s.init_start_time = 99;
  s.host_if = "wji0123456789ab";
  s.guest_addr = "10.201.0.30";
  s.network_profile = "internet";
  s.cgroup_dirs = {"/a", "/b"};
  s.scratch_baseline = 4096;
  auto t = decode_jail_state(encode(s));
  REQUIRE(t);
  CHECK(t->slot == 7);
  CHECK(t->init_start_time == 99);
  CHECK(t->cgroup_dirs == s.cgroup_dirs);
  CHECK(t->scratch_baseline == 4096);
  CHECK_FALSE(decode_jail_state("{\"v\":2}"));
  CHECK_FALSE(decode_jail_state("null"));
}

TEST_CASE("the helper's answer needs a real pid when it says ok") {
  CHECK_FALSE(decode_launch_result("{\"ok\":true,\"init_pid\":1}"));
  launch_result failed;
  failed.step = "pivot_root";
  failed.err = 22;
  auto r = decode_launch_result(encode(failed));
  REQUIRE(r);
  CHECK(r->step == "pivot_root");
  CHECK(r->err == 22);
}

TEST_CASE("veth names encode the profile and fit IFNAMSIZ") {
  CHECK(host_if_name("3f9a0c1d2e4b5a69", "default") == "wjd3f9a0c1d2e4b");
  CHECK(host_if_name("3f9a0c1d2e4b5a69", "internet") == "wji3f9a0c1d2e4b");
  CHECK(host_if_name("3f9a0c1d2e4b5a69", "locked-down") == "wjl3f9a0c1d2e4b");
  CHECK(host_if_name("3f9a0c1d2e4b5a69", "default")->size() == 15);
  CHECK_FALSE(host_if_name("3f9a0c1d2e4b5a69", "open"));
  CHECK_FALSE(host_if_name("3F9A0C1D2E4B5A69", "default"));
  CHECK_FALSE(host_if_name("short", "default"));
}
