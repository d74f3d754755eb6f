// vmm/jail/nftables.hpp — the one `inet warren` table: egress profiles by veth name prefix
// (wjd* default, wji* internet, wjl* locked-down), NAT, and no way back to the node or to
// other sandboxes. Static: creating a sandbox never edits a rule.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"
#include "vmm/driver.hpp"

namespace warren::vmm::jail {

struct nft_params {
  std::string pool_cidr;                // sandboxes' source range, masqueraded
  std::vector<std::string> dns4;        // host resolvers the `default` profile may still reach
  bool guard_host_forwarding = false;   // we turned ip_forward on: forward nothing but ours
  uint16_t proxy_port = 0, dns_port = 0;  // the node's egress services (redirect targets)
};

// The whole table as an nft script that atomically replaces any older version of it.
std::string render_ruleset(const nft_params& p);
status apply_ruleset(const nft_params& p);  // nft -f -, plus net.ipv4.ip_forward=1
status delete_ruleset();

// One sandbox's own chains and sets (its egress rules): `s_<id>` decides every new connection
// it forwards, `n_<id>` redirects to the egress services, `r_<id>` counts and records refusals.
// The script (re)places them atomically; learned addresses and recorded refusals survive it.
std::string render_sandbox_rules(const std::string& id, const std::string& host_if, const nft_params& p,
                                 const egress_rules& rules);
std::string render_sandbox_removal(const std::string& id, const std::string& host_if);
// Addresses an allow list lets through for ttl_s seconds (the DNS forwarder's answers).
std::string render_learned(const std::string& id, const std::vector<std::string>& addrs, uint32_t ttl_s);
// The refusal counter and recent refused destinations, from `nft -j` listings of r_<id>'s set
// and counter: {"count": N, "recent": [{"dest": "ip:port", "at": RFC 3339}]}.
std::string refusals_json(const std::string& nft_json_output, int64_t now_unix);
status run_nft(const std::string& script);

// IPv4 nameservers from a resolv.conf text, loopback ones dropped (unreachable from a netns).
std::vector<std::string> parse_nameservers(const std::string& resolv_conf);

}  // namespace warren::vmm::jail
