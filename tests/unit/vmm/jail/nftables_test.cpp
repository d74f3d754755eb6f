// tests/unit/vmm/jail/nftables_test.cpp — the rendered `inet warren` table.
#include <catch2/catch_test_macros.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

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

TEST_CASE("a sandbox's own chain decides in the firewall's order: link-local, deny, allow list, refuse") {
  warren::vmm::egress_rules r;
  r.profile = "internet";
  r.allow_cidrs = {"198.51.100.0/24", "2001:db8::/32"};
  r.deny_cidrs = {"198.51.100.7/32"};
  r.allow_list = true;
  r.redirect_dns = r.redirect_web = true;
  nft_params p{"10.201.0.0/16", {}, false, 4321, 5353};
  auto s = render_sandbox_rules("0123456789abcdef", "wji0123456789ab", p, r);
  auto pos = [&](const std::string& what) {
    auto at = s.find(what);
    INFO(what);
    REQUIRE(at != std::string::npos);
    return at;
  };
  CHECK(pos("s_0123456789abcdef ip daddr 169.254.0.0/16 goto r_") < pos("ip daddr @d4_0123456789abcdef goto"));
  CHECK(pos("ip daddr @d4_0123456789abcdef goto") < pos("ip daddr @a4_0123456789abcdef accept"));
  CHECK(pos("ip daddr @l4_0123456789abcdef accept") < pos("s_0123456789abcdef goto r_0123456789abcdef"));
  CHECK(has(s, "add element inet warren a4_0123456789abcdef { 198.51.100.0/24 }"));
  CHECK(has(s, "add element inet warren a6_0123456789abcdef { 2001:db8::/32 }"));
  CHECK(has(s, "th dport 53 redirect to :5353"));
  CHECK(has(s, "tcp dport { 80, 443 } redirect to :4321"));
  CHECK(has(s, "sandbox_fwd { \"wji0123456789ab\" : goto s_0123456789abcdef }"));
  CHECK_FALSE(has(s, "flush set inet warren l4_"));  // learned addresses survive a PATCH

  r.allow_list = false;
  r.profile = "default";
  r.redirect_dns = false;
  auto d = render_sandbox_rules("0123456789abcdef", "wjd0123456789ab", p, r);
  CHECK(has(d, "ip daddr @dns4 meta l4proto { tcp, udp } th dport 53 accept"));
  CHECK(has(d, "10.0.0.0/8"));
  r.profile = "locked-down";
  auto l = render_sandbox_rules("0123456789abcdef", "wjl0123456789ab", p, r);
  CHECK_FALSE(has(l, "accept\n"));
}

// nft itself must accept what we render: in a network namespace of our own (root only).
TEST_CASE("nft loads the table, a sandbox's rules, learned addresses and their removal [root]") {
  if (geteuid() != 0 || system("command -v nft >/dev/null && unshare -n true 2>/dev/null") != 0) SKIP("needs root and nft");
  warren::vmm::egress_rules r;
  r.profile = "default";
  r.allow_cidrs = {"198.51.100.0/24", "2001:db8::/32"};
  r.deny_cidrs = {"198.51.100.7/32"};
  r.allow_list = true;
  r.redirect_dns = r.redirect_web = true;
  nft_params p{"10.201.0.0/16", {"10.255.255.53"}, false, 4321, 5353};
  std::string id = "0123456789abcdef", ifn = "wjd0123456789ab";
  std::string script = render_ruleset(p) + render_sandbox_rules(id, ifn, p, r) +
                       render_sandbox_rules(id, ifn, p, r) +  // twice: a PATCH
                       render_learned(id, {"203.0.113.5", "2001:db8::5"}, 90) +
                       render_learned(id, {"203.0.113.5"}, 120) + render_sandbox_removal(id, ifn);
  char path[] = "/tmp/warren-nft-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size()));
  close(fd);
  // All parts in one transaction: nft must accept each, in the order the driver runs them.
  std::string cmd = "unshare -n sh -c 'nft -f " + std::string(path) + " 2>&1' > " + path + ".out";
  int rc = system(cmd.c_str());
  std::string out;
  if (FILE* f = fopen((std::string(path) + ".out").c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    fclose(f);
  }
  unlink(path);
  unlink((std::string(path) + ".out").c_str());
  INFO(out);
  CHECK(rc == 0);
}

TEST_CASE("refusals are read from nft's JSON listings, newest first") {
  std::string listing =
      R"({"nftables": [{"set": {"name": "f4_x", "timeout": 600, "elem": [{"elem": {"val": {"concat": ["1.2.3.4", 443]}, "expires": 590}}, {"elem": {"val": {"concat": ["5.6.7.8", 22]}, "expires": 599}}]}}]})"
      "\n"
      R"({"nftables": [{"set": {"name": "f6_x", "timeout": 600}}]})"
      "\n"
      R"({"nftables": [{"counter": {"name": "c_x", "packets": 7, "bytes": 420}}]})"
      "\n";
  auto j = nlohmann::json::parse(refusals_json(listing, 1000000));
  CHECK(j["count"] == 7);
  REQUIRE(j["recent"].size() == 2);
  CHECK(j["recent"][0]["dest"] == "5.6.7.8:22");
  CHECK(j["recent"][1]["dest"] == "1.2.3.4:443");
  CHECK(refusals_json("garbage", 0) == R"({"count":0,"recent":[]})");
}
