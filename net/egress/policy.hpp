// net/egress/policy.hpp — a sandbox's egress policy as data: `allow` / `deny` entries (CIDRs and
// domain names) parsed and validated, the decisions the egress proxy and DNS forwarder take from
// them, and the well-known credential names. Pure: no I/O, no sockets. The nftables side of the
// same policy (vmm/jail/nftables.cpp) must decide the same way for addresses.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace warren::net::egress {

// An IPv4 or IPv6 address in network byte order (v4 in the first 4 bytes).
struct ip_address {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
  static std::optional<ip_address> parse(const std::string& text);
  std::string str() const;
  bool operator==(const ip_address& o) const { return v6 == o.v6 && bytes == o.bytes; }
};

struct cidr {
  ip_address net;  // host bits cleared
  int prefix = 0;
  static std::optional<cidr> parse(const std::string& text);  // "a.b.c.d[/n]" or "x::y[/n]"
  bool contains(const ip_address& a) const;
  std::string str() const;  // normalized "net/prefix"
};

// "example.com" (that name only) or "*.example.com" (any name below it, not itself).
struct domain_rule {
  std::string name;  // lower-case, no trailing dot, without the "*."
  bool wildcard = false;
  bool matches(const std::string& host) const;  // host lower-case, no trailing dot
  std::string str() const { return wildcard ? "*." + name : name; }
};

struct rule_list {
  std::vector<cidr> cidrs;
  std::vector<domain_rule> domains;
  bool empty() const { return cidrs.empty() && domains.empty(); }
  bool has_cidr(const ip_address& a) const;
  bool has_domain(const std::string& host) const;
  std::vector<std::string> cidr_strings(bool v6) const;
};

// Parses API entries; bad_request names the first bad one. At most 256 entries per list.
expected<rule_list> parse_rules(const std::vector<std::string>& entries, const char* field);

// A host name as sent in Host / SNI / a DNS question, canonical (lower-case, no trailing dot,
// no port), or nullopt when it is not a DNS name.
std::optional<std::string> canonical_host(std::string host);

struct policy {
  std::string profile = "default";  // default | internet | locked-down
  rule_list allow, deny;
  bool has_domain_rules() const { return !allow.domains.empty() || !deny.domains.empty(); }
  bool has_rules() const { return !allow.empty() || !deny.empty(); }

  // May a sandbox reach this address (any port)? The same order as the nftables chain: deny
  // CIDRs, then an allow list (CIDRs, or `name_allowed` — the address came from resolving a name
  // an allow domain matches) refuses everything else, else the profile. Addresses never
  // reachable (link-local, loopback, the node's own) are the caller's check, before this one.
  bool permits_address(const ip_address& a, bool name_allowed) const;
  // For a host name: denied by a deny domain; allowed by an allow domain.
  bool denies_name(const std::string& host) const { return deny.has_domain(host); }
  bool allows_name(const std::string& host) const { return allow.has_domain(host); }
};

// Addresses no sandbox reaches whatever its policy: unspecified, loopback, link-local,
// multicast (the node's own addresses and the sandbox pool are added by the caller).
bool never_reachable(const ip_address& a);
// The private ranges the `default` profile refuses (API.md Networking).
bool is_private(const ip_address& a);

// Well-known credential names → the API hosts their secret may be sent to (OPENAI_API_KEY →
// api.openai.com, …); empty when the name is not known.
std::vector<std::string> well_known_hosts(const std::string& name);

}  // namespace warren::net::egress
