// vmm/jail/netlink.hpp — the few rtnetlink requests a sandbox's network needs, over a raw
// NETLINK_ROUTE socket (no fork/exec of `ip` on the create path). Returns 0 or -errno; no
// allocation beyond the stack, so it is usable in the single-threaded helper between forks.
#pragma once

#include <cstdint>

namespace warren::vmm::jail::nl {

// Creates veth host_name <-> peer_name with the peer placed in the netns of peer_ns_pid.
int create_veth(const char* host_name, const char* peer_name, int peer_ns_pid);
int delete_link(const char* name);  // -ENODEV when it is already gone
int link_index(const char* name);   // > 0, or -errno
int link_up(int ifindex);
int add_ipv4(int ifindex, uint32_t addr_host_order, int prefix);
int add_default_route(uint32_t gw_host_order);

}  // namespace warren::vmm::jail::nl
