// vmm/jail/nftables.cpp — renders and loads `table inet warren`. Touches no other table and
// no host setting besides net.ipv4.ip_forward.
#include "vmm/jail/nftables.hpp"

#include <arpa/inet.h>

#include <sstream>

#include "vmm/jail/host_command.hpp"
#include "vmm/jail/host_file.hpp"

namespace warren::vmm::jail {

std::string render_ruleset(const nft_params& p) {
  std::ostringstream s;
  // "table; delete table; table {...}" in one transaction: idempotent and atomic (nft(8)).
  s << "table inet warren\n"
       "delete table inet warren\n"
       "table inet warren {\n"
       "  set dns4 { type ipv4_addr; ";
  if (!p.dns4.empty()) {
    s << "elements = { ";
    for (size_t i = 0; i < p.dns4.size(); ++i) s << (i ? ", " : "") << p.dns4[i];
    s << " } ";
  }
  s << "}\n"
       // The node itself (every local address, the veth gateways included) is off limits.
       "  chain input {\n"
       "    type filter hook input priority filter - 10; policy accept;\n"
       "    iifname \"wj*\" ct state established,related accept\n"
       "    iifname \"wj*\" drop\n"
       "  }\n"
       "  chain forward {\n"
       "    type filter hook forward priority filter - 10; policy accept;\n"
       "    iifname \"wj*\" oifname \"wj*\" drop\n"
       "    oifname \"wj*\" ct state established,related accept\n"
       "    oifname \"wj*\" drop\n"
       "    iifname \"wjl*\" drop\n"
       "    iifname \"wjd*\" ip daddr @dns4 meta l4proto { tcp, udp } th dport 53 accept\n"
       "    iifname \"wjd*\" ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, "
       "169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/3 } drop\n"
       "    iifname \"wjd*\" ip6 daddr { fc00::/7, fe80::/10, ::1/128 } drop\n"
       // Link-local (the cloud metadata service at 169.254.169.254 holds the node's credentials)
       // is never reachable, whatever the profile; the node's own addresses are dropped in input.
       "    iifname \"wj*\" ip daddr 169.254.0.0/16 drop\n"
       "    iifname \"wj*\" ip6 daddr fe80::/10 drop\n"
       "    iifname \"wj*\" accept\n";
  if (p.guard_host_forwarding) s << "    drop\n";
  s << "  }\n"
       "  chain postrouting {\n"
       "    type nat hook postrouting priority srcnat; policy accept;\n"
       "    ip saddr " << p.pool_cidr << " oifname != \"wj*\" masquerade\n"
       "  }\n"
       "}\n";
  return s.str();
}

status apply_ruleset(const nft_params& p) {
  auto r = run_command({"nft", "-f", "-"}, render_ruleset(p));
  if (r.exit_code != 0) return make_error(errc::internal, "nftables: " + r.output);
  // Routing for the veths; the guard rule above keeps any other forwarding as it was.
  if (!write_file("/proc/sys/net/ipv4/ip_forward", "1"))
    return make_error(errc::internal, "sysctl net.ipv4.ip_forward=1: " + errno_name(errno));
  return ok();
}

status delete_ruleset() {
  auto r = run_command({"nft", "delete", "table", "inet", "warren"});
  if (r.exit_code != 0 && r.output.find("No such file") == std::string::npos)
    return make_error(errc::internal, "nftables: " + r.output);
  return ok();
}

std::vector<std::string> parse_nameservers(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key, addr;
    if (!(ls >> key >> addr) || key != "nameserver") continue;
    in_addr a{};
    if (inet_pton(AF_INET, addr.c_str(), &a) != 1) continue;
    if ((ntohl(a.s_addr) >> 24) == 127) continue;
    out.push_back(addr);
  }
  return out;
}

}  // namespace warren::vmm::jail
