// vmm/jail/nftables.cpp — renders and loads `table inet warren`. Touches no other table and
// no host setting besides net.ipv4.ip_forward.
#include "vmm/jail/nftables.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <ctime>
#include <sstream>

#include <nlohmann/json.hpp>

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
       // Per-sandbox chains, by the sandbox's veth (render_sandbox_rules).
       "  map sandbox_fwd { type ifname : verdict; }\n"
       "  map sandbox_nat { type ifname : verdict; }\n"
       "  chain input {\n"
       "    type filter hook input priority filter - 10; policy accept;\n"
       "    iifname \"wj*\" ct state established,related accept\n";
  // Redirected DNS and web traffic reaches the egress services on the veth's gateway address;
  // nothing else of the node does, and the services answer no one but sandboxes.
  if (p.proxy_port) s << "    iifname \"wj*\" ct status dnat tcp dport " << p.proxy_port << " accept\n";
  if (p.dns_port) s << "    iifname \"wj*\" ct status dnat meta l4proto { tcp, udp } th dport " << p.dns_port << " accept\n";
  s << "    iifname \"wj*\" drop\n";
  if (p.proxy_port) s << "    tcp dport " << p.proxy_port << " drop\n";
  if (p.dns_port) s << "    meta l4proto { tcp, udp } th dport " << p.dns_port << " drop\n";
  s << "  }\n"
       "  chain prerouting {\n"
       "    type nat hook prerouting priority dstnat; policy accept;\n"
       "    iifname vmap @sandbox_nat\n"
       "  }\n"
       "  chain forward {\n"
       "    type filter hook forward priority filter - 10; policy accept;\n"
       "    iifname \"wj*\" oifname \"wj*\" drop\n"
       "    oifname \"wj*\" ct state established,related accept\n"
       "    oifname \"wj*\" drop\n"
       "    iifname vmap @sandbox_fwd\n"
       // What follows is the fallback for a sandbox whose own chain is missing: its profile by
       // the veth's name prefix.
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

namespace {

std::string set_elements(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

std::vector<std::string> only_family(const std::vector<std::string>& cidrs, bool v6) {
  std::vector<std::string> out;
  for (auto& c : cidrs)
    if ((c.find(':') != std::string::npos) == v6) out.push_back(c);
  return out;
}

// Every object of one sandbox, declared exactly as it is created (a declaration of an existing
// object must match it).
std::string sandbox_declarations(const std::string& id) {
  std::ostringstream s;
  s << "table inet warren {\n"
    << "  set a4_" << id << " { type ipv4_addr; flags interval; }\n"
    << "  set a6_" << id << " { type ipv6_addr; flags interval; }\n"
    << "  set d4_" << id << " { type ipv4_addr; flags interval; }\n"
    << "  set d6_" << id << " { type ipv6_addr; flags interval; }\n"
    << "  set l4_" << id << " { type ipv4_addr; flags timeout; }\n"
    << "  set l6_" << id << " { type ipv6_addr; flags timeout; }\n"
    << "  set f4_" << id << " { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 10m; size 32; }\n"
    << "  set f6_" << id << " { type ipv6_addr . inet_service; flags dynamic, timeout; timeout 10m; size 32; }\n"
    << "  counter c_" << id << " { }\n"
    << "  chain s_" << id << " { }\n  chain n_" << id << " { }\n  chain r_" << id << " { }\n"
    << "}\n";
  return s.str();
}

}  // namespace

std::string render_sandbox_rules(const std::string& id, const std::string& host_if, const nft_params& p,
                                 const egress_rules& r) {
  std::ostringstream s;
  const std::string t = "inet warren", sc = "s_" + id, nc = "n_" + id, rc = "r_" + id;
  // Declaring what exists already is a no-op; then everything but learned addresses (l4/l6)
  // and recorded refusals (f4/f6, the counter) is emptied and written again, in one transaction.
  s << sandbox_declarations(id);
  for (auto c : {sc, nc, rc}) s << "flush chain " << t << " " << c << "\n";
  for (auto set : {"a4_", "a6_", "d4_", "d6_"}) s << "flush set " << t << " " << set << id << "\n";
  auto elements = [&](const char* set, const std::vector<std::string>& v) {
    if (!v.empty()) s << "add element " << t << " " << set << id << " { " << set_elements(v) << " }\n";
  };
  elements("a4_", only_family(r.allow_cidrs, false));
  elements("a6_", only_family(r.allow_cidrs, true));
  elements("d4_", only_family(r.deny_cidrs, false));
  elements("d6_", only_family(r.deny_cidrs, true));
  auto rule = [&](const std::string& chain, const std::string& text) { s << "add rule " << t << " " << chain << " " << text << "\n"; };
  // A refusal: remember where to (10 minutes, 32 destinations), count it, and say so at once.
  rule(rc, "meta l4proto { tcp, udp } add @f4_" + id + " { ip daddr . th dport }");
  rule(rc, "meta l4proto { tcp, udp } add @f6_" + id + " { ip6 daddr . th dport }");
  rule(rc, "meta l4proto tcp counter name c_" + id + " reject with tcp reset");
  rule(rc, "counter name c_" + id + " reject with icmpx type admin-prohibited");
  // Link-local (the cloud metadata service holds the node's credentials) whatever the rules.
  rule(sc, "ip daddr 169.254.0.0/16 goto " + rc);
  rule(sc, "ip6 daddr fe80::/10 goto " + rc);
  rule(sc, "ip daddr @d4_" + id + " goto " + rc);
  rule(sc, "ip6 daddr @d6_" + id + " goto " + rc);
  if (r.allow_list) {
    for (auto set : {"a4_", "l4_"}) rule(sc, std::string("ip daddr @") + set + id + " accept");
    for (auto set : {"a6_", "l6_"}) rule(sc, std::string("ip6 daddr @") + set + id + " accept");
    rule(sc, "goto " + rc);
  } else if (r.profile == "internet") {
    rule(sc, "accept");
  } else if (r.profile == "default") {
    if (!r.redirect_dns) rule(sc, "ip daddr @dns4 meta l4proto { tcp, udp } th dport 53 accept");
    rule(sc, "ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 172.16.0.0/12, "
             "192.168.0.0/16, 224.0.0.0/3 } goto " + rc);
    rule(sc, "ip6 daddr { fc00::/7, ::1/128 } goto " + rc);
    rule(sc, "accept");
  } else {
    rule(sc, "goto " + rc);  // locked-down
  }
  if (r.redirect_dns && p.dns_port)
    rule(nc, "meta l4proto { tcp, udp } th dport 53 redirect to :" + std::to_string(p.dns_port));
  if (r.redirect_web && p.proxy_port) rule(nc, "tcp dport { 80, 443 } redirect to :" + std::to_string(p.proxy_port));
  s << "add element " << t << " sandbox_fwd { \"" << host_if << "\" : goto " << sc << " }\n"
    << "add element " << t << " sandbox_nat { \"" << host_if << "\" : goto " << nc << " }\n";
  return s.str();
}

std::string render_sandbox_removal(const std::string& id, const std::string& host_if) {
  // Declare and "add" first so that each "delete" finds what it deletes: a half-removed sandbox
  // is removed, and a second removal is harmless.
  std::ostringstream s;
  const std::string t = "inet warren";
  s << sandbox_declarations(id)
    << "add element " << t << " sandbox_fwd { \"" << host_if << "\" : goto s_" << id << " }\n"
    << "add element " << t << " sandbox_nat { \"" << host_if << "\" : goto n_" << id << " }\n"
    << "delete element " << t << " sandbox_fwd { \"" << host_if << "\" }\n"
    << "delete element " << t << " sandbox_nat { \"" << host_if << "\" }\n";
  for (auto c : {"s_", "n_", "r_"}) s << "flush chain " << t << " " << c << id << "\n";
  for (auto c : {"s_", "n_", "r_"}) s << "delete chain " << t << " " << c << id << "\n";
  for (auto set : {"a4_", "a6_", "d4_", "d6_", "l4_", "l6_", "f4_", "f6_"}) s << "delete set " << t << " " << set << id << "\n";
  s << "delete counter " << t << " c_" << id << "\n";
  return s.str();
}

std::string render_learned(const std::string& id, const std::vector<std::string>& addrs, uint32_t ttl_s) {
  // An element that exists keeps its old timeout on "add": delete and add it again (the first
  // "add" makes the delete safe), all in one transaction.
  std::ostringstream s;
  for (auto& a : addrs) {
    std::string set = (a.find(':') != std::string::npos ? "l6_" : "l4_") + id;
    s << "add element inet warren " << set << " { " << a << " }\n"
      << "delete element inet warren " << set << " { " << a << " }\n"
      << "add element inet warren " << set << " { " << a << " timeout " << ttl_s << "s }\n";
  }
  return s.str();
}

std::string refusals_json(const std::string& out, int64_t now) {
  // Each listing is one JSON document per line of output ({"nftables": [...]}).
  nlohmann::json result = {{"count", 0}, {"recent", nlohmann::json::array()}};
  std::vector<std::pair<int64_t, std::string>> recent;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto doc = nlohmann::json::parse(line, nullptr, false);
    if (!doc.is_object() || !doc["nftables"].is_array()) continue;
    for (auto& item : doc["nftables"]) {
      if (item.contains("counter")) result["count"] = item["counter"].value("packets", 0);
      if (!item.contains("set") || !item["set"]["elem"].is_array()) continue;
      int64_t timeout = item["set"].value("timeout", 600);
      for (auto& e : item["set"]["elem"]) {
        auto& el = e.contains("elem") ? e["elem"] : e;
        auto& val = el.contains("val") ? el["val"] : el;
        if (!val.contains("concat") || val["concat"].size() != 2) continue;
        auto addr = val["concat"][0].get<std::string>();
        auto port = val["concat"][1].dump();
        std::string dest = addr.find(':') != std::string::npos ? "[" + addr + "]:" + port : addr + ":" + port;
        recent.emplace_back(now - (timeout - el.value("expires", timeout)), dest);
      }
    }
  }
  std::sort(recent.begin(), recent.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (auto& [at, dest] : recent) {
    char buf[32];
    time_t t = static_cast<time_t>(at);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    result["recent"].push_back({{"dest", dest}, {"at", buf}, {"by", "firewall"}});
  }
  return result.dump();
}

status run_nft(const std::string& script) {
  auto r = run_command({"nft", "-f", "-"}, script);
  if (r.exit_code != 0) return make_error(errc::internal, "nftables: " + r.output);
  return ok();
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
