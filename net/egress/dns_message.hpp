// net/egress/dns_message.hpp — DNS wire format (RFC 1035) for the node's per-sandbox DNS forwarder:
// parse queries and answers, build error replies and queries, one exchange with an upstream.
// Every parser is bounds-checked and follows compression pointers only backwards and a bounded number
// of times: hostile packets give nullopt, never a crash or a loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace warren::net::egress {

constexpr uint16_t dns_type_a = 1, dns_type_cname = 5, dns_type_aaaa = 28;
constexpr uint16_t dns_class_in = 1;
constexpr int dns_rcode_nxdomain = 3, dns_rcode_refused = 5;

// name: lower-case, no trailing dot ("" for the root). A label holding a '.' or a byte outside
// printable ASCII makes the whole message unparsable (such names could not be matched safely).
struct dns_question {
  std::string name;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
};
struct dns_query {
  uint16_t id = 0;
  uint16_t flags = 0;
  dns_question q;
};
// A query (QR=0) with exactly one question; other sections (EDNS OPT...) are not read.
std::optional<dns_query> parse_query(std::string_view wire);

struct dns_address {
  std::string addr;  // textual: "192.0.2.1", "2001:db8::1"
  bool v6 = false;
  uint32_t ttl = 0;
};
struct dns_response_info {
  uint16_t id = 0;
  int rcode = 0;
  bool truncated = false;
  std::vector<std::string> names;        // the question name plus every CNAME target reached from it, lower-case
  std::vector<dns_address> addresses;    // class IN A/AAAA answer records whose owner is in names
};
// A response (QR=1) with at least one question; only the answer section is read (records in the
// authority/additional sections never count as addresses). A truncated (TC) answer keeps what parsed.
std::optional<dns_response_info> parse_response(std::string_view wire);

// Same id, opcode and question (the query's bytes, so 0x20 case randomization survives), QR=1, RD
// copied, RA=1, the given rcode, no records. Empty string if the query does not parse.
std::string make_error_response(std::string_view query_wire, int rcode);

// RD=1, class IN. Empty string if name is not a valid domain name (empty label, label > 63, > 253).
std::string make_query(uint16_t id, const std::string& name, uint16_t qtype);

// One exchange with an upstream resolver: UDP with the given timeout; if the answer is truncated
// (TC), repeated over TCP (2-byte length prefix) with a fresh timeout. A UDP reply whose id or
// question does not match the query is ignored (spoofing), and waiting goes on until the deadline.
// Errors: bad_request (query unparsable, bad server address), timeout, bad_gateway (socket errors,
// a TCP answer that does not match).
expected<std::string> exchange(const std::string& server_ip, uint16_t port, std::string_view query, int timeout_ms);

// A and AAAA of name from the first server that answers (SERVFAIL/REFUSED/timeouts move to the next
// server). NXDOMAIN or no address → errc::not_found; no server answering → the last server's error.
expected<std::vector<dns_address>> resolve(const std::vector<std::string>& servers, uint16_t port,
                                           const std::string& name, int timeout_ms);

}  // namespace warren::net::egress
