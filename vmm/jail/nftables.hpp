// vmm/jail/nftables.hpp — the one `inet warren` table: egress profiles by veth name prefix
// (wjd* default, wji* internet, wjl* locked-down), NAT, and no way back to the node or to
// other sandboxes. Static: creating a sandbox never edits a rule.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"

namespace warren::vmm::jail {

struct nft_params {
  std::string pool_cidr;                // sandboxes' source range, masqueraded
  std::vector<std::string> dns4;        // host resolvers the `default` profile may still reach
  bool guard_host_forwarding = false;   // we turned ip_forward on: forward nothing but ours
};

// The whole table as an nft script that atomically replaces any older version of it.
std::string render_ruleset(const nft_params& p);
status apply_ruleset(const nft_params& p);  // nft -f -, plus net.ipv4.ip_forward=1
status delete_ruleset();

// IPv4 nameservers from a resolv.conf text, loopback ones dropped (unreachable from a netns).
std::vector<std::string> parse_nameservers(const std::string& resolv_conf);

}  // namespace warren::vmm::jail
