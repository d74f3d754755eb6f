// tests/unit/net/egress/policy_test.cpp — allow/deny entries and the decisions taken from them.
#include <catch2/catch_test_macros.hpp>

#include "net/egress/policy.hpp"

using namespace warren::net::egress;

static ip_address ip(const char* s) { return *ip_address::parse(s); }

TEST_CASE("entries parse as CIDRs (host bits cleared) or domain names; anything else is a 400") {
  auto r = parse_rules({"10.1.2.3/8", "2001:db8::1/32", "1.2.3.4", "API.Example.com.", "*.example.org"}, "allow");
  REQUIRE(r);
  REQUIRE(r->cidrs.size() == 3);
  CHECK(r->cidrs[0].str() == "10.0.0.0/8");
  CHECK(r->cidrs[1].str() == "2001:db8::/32");
  CHECK(r->cidrs[2].str() == "1.2.3.4/32");
  CHECK(r->cidr_strings(true) == std::vector<std::string>{"2001:db8::/32"});
  REQUIRE(r->domains.size() == 2);
  CHECK(r->domains[0].str() == "api.example.com");
  CHECK(r->domains[1].str() == "*.example.org");
  for (const char* bad : {"10.0.0.0/33", "1.2.3.4/", "1.2.3.4/8x", "::ffff:1.2.3.4/104", "exa mple.com", "*.com",
                          "-a.com", "a..com", "300.1.1.1", "", "*.", "http://x.com", "x.com:443"}) {
    INFO(bad);
    auto e = parse_rules({bad}, "deny");
    REQUIRE_FALSE(e);
    CHECK(e.err().code == warren::errc::bad_request);
  }
  CHECK_FALSE(parse_rules(std::vector<std::string>(257, "a.com"), "allow"));
}

TEST_CASE("a wildcard matches names below it, not the name itself; matching is exact otherwise") {
  domain_rule w{"example.com", true}, e{"example.com", false};
  CHECK(w.matches("a.example.com"));
  CHECK(w.matches("a.b.example.com"));
  CHECK_FALSE(w.matches("example.com"));
  CHECK_FALSE(w.matches("badexample.com"));
  CHECK(e.matches("example.com"));
  CHECK_FALSE(e.matches("a.example.com"));
  CHECK(canonical_host("Api.OpenAI.com.") == std::optional<std::string>("api.openai.com"));
}

TEST_CASE("deny wins over allow; an allow list refuses the rest; without one the profile decides") {
  policy p;
  p.profile = "internet";
  p.allow = *parse_rules({"203.0.113.0/24", "api.openai.com"}, "allow");
  p.deny = *parse_rules({"203.0.113.20", "evil.example"}, "deny");
  CHECK(p.permits_address(ip("203.0.113.10"), false));
  CHECK_FALSE(p.permits_address(ip("203.0.113.20"), true));  // denied even for an allowed name
  CHECK_FALSE(p.permits_address(ip("198.51.100.1"), false));
  CHECK(p.permits_address(ip("198.51.100.1"), true));  // the answer for an allowed name
  CHECK(p.denies_name("evil.example"));
  CHECK(p.allows_name("api.openai.com"));

  policy d;  // no lists: the profile
  CHECK(d.permits_address(ip("8.8.8.8"), false));
  CHECK_FALSE(d.permits_address(ip("10.1.1.1"), false));
  CHECK_FALSE(d.permits_address(ip("fd00::1"), false));
  d.profile = "internet";
  CHECK(d.permits_address(ip("10.1.1.1"), false));
  d.profile = "locked-down";
  CHECK_FALSE(d.permits_address(ip("8.8.8.8"), false));
}

TEST_CASE("link-local, loopback and multicast are never reachable; IPv4-mapped IPv6 is IPv4") {
  for (const char* a : {"169.254.169.254", "127.0.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "ff02::1",
                        "::ffff:169.254.169.254"})
    CHECK(never_reachable(ip(a)));
  CHECK_FALSE(never_reachable(ip("8.8.8.8")));
  CHECK_FALSE(ip("::ffff:10.0.0.1").v6);
  CHECK(is_private(ip("::ffff:10.0.0.1")));
}

TEST_CASE("well-known credential names are bound to their service's API hosts") {
  CHECK(well_known_hosts("OPENAI_API_KEY") == std::vector<std::string>{"api.openai.com"});
  CHECK(well_known_hosts("ANTHROPIC_API_KEY") == std::vector<std::string>{"api.anthropic.com"});
  CHECK(well_known_hosts("MY_OWN_TOKEN").empty());
}
