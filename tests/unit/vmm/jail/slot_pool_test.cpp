// tests/unit/vmm/jail/slot_pool_test.cpp — the address/uid pool behind every sandbox.
#include <catch2/catch_test_macros.hpp>

#include "vmm/jail/slot_pool.hpp"

using namespace warren::vmm::jail;

TEST_CASE("a /16 pool is carved into /30s with the gateway first and the guest second") {
  slot_pool pool(*ipv4_net::parse("10.201.0.0/16"), 0x40000000);
  CHECK(pool.capacity() == 16384);
  auto a = pool.allocate();
  auto b = pool.allocate();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(ipv4_to_string(a->host_addr) == "10.201.0.1");
  CHECK(ipv4_to_string(a->guest_addr) == "10.201.0.2");
  CHECK(ipv4_to_string(b->host_addr) == "10.201.0.5");
  CHECK(a->uid_base == 0x40000000);
  CHECK(b->uid_base == 0x40000000 + 65536);
}

TEST_CASE("released slots are reused lowest first and recovered slots stay taken") {
  slot_pool pool(*ipv4_net::parse("10.201.0.0/28"), 100000);
  CHECK(pool.capacity() == 4);
  CHECK(pool.reserve(1));
  CHECK_FALSE(pool.reserve(1));
  CHECK_FALSE(pool.reserve(4));  // out of range
  CHECK(pool.allocate()->slot == 0);
  CHECK(pool.allocate()->slot == 2);
  CHECK(pool.allocate()->slot == 3);
  CHECK_FALSE(pool.allocate());  // exhausted
  pool.release(2);
  CHECK(pool.allocate()->slot == 2);
  CHECK(pool.in_use() == 4);
}

TEST_CASE("uid ranges never reach (uid_t)-1") {
  slot_pool pool(*ipv4_net::parse("10.0.0.0/8"), 0xFFFF0000u - 3 * 65536);
  CHECK(pool.capacity() == 3);
}

TEST_CASE("pool CIDRs that are not networks are rejected") {
  CHECK_FALSE(ipv4_net::parse("10.201.0.1/16"));
  CHECK_FALSE(ipv4_net::parse("10.201.0.0"));
  CHECK_FALSE(ipv4_net::parse("10.201.0.0/31"));
  CHECK_FALSE(ipv4_net::parse("10.201.0.0/1x"));
  CHECK_FALSE(ipv4_net::parse("garbage/16"));
  CHECK_FALSE(ipv4_net::parse("/"));
  CHECK(ipv4_net::parse("192.168.64.0/20"));
}
