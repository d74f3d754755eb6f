// tests/unit/vmm/jail/nftables_test.cpp — the rendered `inet warren` table.
#include <catch2/catch_test_macros.hpp>

#include "vmm/jail/nftables.hpp"

using namespace warren::vmm::jail;

static bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

TEST_CASE("the ruleset replaces itself atomically and isolates node, peers and private ranges") {
  auto r = render_ruleset({"10.201.0.0/16", {"10.255.255.53"}, false});
  CHECK(r.rfind("table inet warren\ndelete table inet warren\n", 0) == 0);
  CHECK(has(r, "iifname \"wj*\" drop"));                   // the node's own addresses
  CHECK(has(r, "iifname \"wj*\" oifname \"wj*\" drop"));   // sandbox to sandbox
  CHECK(has(r, "iifname \"wjl*\" drop"));                  // locked-down: no egress
  CHECK(has(r, "10.0.0.0/8"));
  CHECK(has(r, "fc00::/7"));
  CHECK(has(r, "elements = { 10.255.255.53 }"));
  CHECK(has(r, "ip saddr 10.201.0.0/16 oifname != \"wj*\" masquerade"));
  CHECK_FALSE(has(r, "    drop\n  }"));
}

TEST_CASE("link-local stays unreachable under every profile, before the internet profile's accept") {
  auto r = render_ruleset({"10.201.0.0/16", {}, false});
  auto v4 = r.find("iifname \"wj*\" ip daddr 169.254.0.0/16 drop");
  auto v6 = r.find("iifname \"wj*\" ip6 daddr fe80::/10 drop");
  auto accept = r.find("iifname \"wj*\" accept");
  REQUIRE(v4 != std::string::npos);
  REQUIRE(v6 != std::string::npos);
  REQUIRE(accept != std::string::npos);
  CHECK(v4 < accept);
  CHECK(v6 < accept);
}

TEST_CASE("forwarding we switched on stays limited to sandboxes") {
  auto r = render_ruleset({"10.201.0.0/16", {}, true});
  CHECK(has(r, "    drop\n  }"));
  CHECK(has(r, "set dns4 { type ipv4_addr; }"));
}

TEST_CASE("loopback and malformed resolvers are not offered to sandboxes") {
  auto ns = parse_nameservers("# c\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver fe80::1\n"
                              "nameserver\nnameserver 1.2.3\nsearch x\nnameserver 8.8.8.8 # trailing\n");
  CHECK(ns == std::vector<std::string>{"10.255.255.53", "8.8.8.8"});
  CHECK(parse_nameservers("").empty());
}
