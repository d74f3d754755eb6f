// net/egress/policy.cpp — parsing and deciding egress rules. Never resolves a name itself.
#include "net/egress/policy.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <map>

namespace warren::net::egress {

std::optional<ip_address> ip_address::parse(const std::string& text) {
  ip_address a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) return a;
  a.v6 = true;
  if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) {
    // An IPv4-mapped IPv6 address is that IPv4 address (a rule on 10.0.0.0/8 must see it).
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(mapped, mapped + 12, a.bytes.begin())) {
      ip_address v4;
      std::copy(a.bytes.begin() + 12, a.bytes.end(), v4.bytes.begin());
      return v4;
    }
    return a;
  }
  return std::nullopt;
}

std::string ip_address::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

namespace {

bool prefix_equal(const ip_address& a, const ip_address& b, int prefix) {
  for (int i = 0; prefix > 0; ++i, prefix -= 8) {
    uint8_t mask = prefix >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - prefix));
    if ((a.bytes[i] & mask) != (b.bytes[i] & mask)) return false;
  }
  return true;
}

bool in_any(const ip_address& a, std::initializer_list<const char*> nets) {
  for (const char* n : nets)
    if (cidr::parse(n)->contains(a)) return true;
  return false;
}

bool valid_label(const std::string& l) {
  if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') return false;
  return std::all_of(l.begin(), l.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

}  // namespace

std::optional<cidr> cidr::parse(const std::string& text) {
  auto slash = text.find('/');
  auto addr = ip_address::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  int max = addr->v6 ? 128 : 32;
  int prefix = max;
  if (slash != std::string::npos) {
    auto p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    prefix = std::stoi(p);
    if (prefix > max) return std::nullopt;
    // 0.0.0.0/0 written as ::ffff:0:0/96 would be mapped to v4 with a v6 prefix: refuse.
    if (!addr->v6 && text.find(':') != std::string::npos) return std::nullopt;
  }
  cidr c{*addr, prefix};
  for (int bit = prefix; bit < max; ++bit) c.net.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return c;
}

bool cidr::contains(const ip_address& a) const { return a.v6 == net.v6 && prefix_equal(a, net, prefix); }

std::string cidr::str() const { return net.str() + "/" + std::to_string(prefix); }

bool domain_rule::matches(const std::string& host) const {
  if (!wildcard) return host == name;
  return host.size() > name.size() + 1 && host.compare(host.size() - name.size(), name.size(), name) == 0 &&
         host[host.size() - name.size() - 1] == '.';
}

bool rule_list::has_cidr(const ip_address& a) const {
  return std::any_of(cidrs.begin(), cidrs.end(), [&](const cidr& c) { return c.contains(a); });
}

bool rule_list::has_domain(const std::string& host) const {
  return std::any_of(domains.begin(), domains.end(), [&](const domain_rule& d) { return d.matches(host); });
}

std::vector<std::string> rule_list::cidr_strings(bool v6) const {
  std::vector<std::string> out;
  for (auto& c : cidrs)
    if (c.net.v6 == v6) out.push_back(c.str());
  return out;
}

std::optional<std::string> canonical_host(std::string host) {
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!host.empty() && host.back() == '.') host.pop_back();
  if (host.empty() || host.size() > 253) return std::nullopt;
  size_t start = 0;
  while (true) {
    auto dot = host.find('.', start);
    if (!valid_label(host.substr(start, dot == std::string::npos ? std::string::npos : dot - start)))
      return std::nullopt;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  // An all-numeric last label is no DNS name (RFC 3696 §2): "300.1.1.1" is a bad address.
  auto last = host.substr(start);
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  return host;
}

expected<rule_list> parse_rules(const std::vector<std::string>& entries, const char* field) {
  rule_list out;
  if (entries.size() > 256)
    return make_error(errc::bad_request, std::string("field \"") + field + "\" has more than 256 entries");
  for (auto& e : entries) {
    auto bad = [&](const std::string& why) {
      return make_error(errc::bad_request, std::string("field \"") + field + "\": \"" + e + "\" " + why);
    };
    if (e.find_first_of(":/") != std::string::npos || ip_address::parse(e)) {
      auto c = cidr::parse(e);
      if (!c) return bad("is not a CIDR (a.b.c.d/n or an IPv6 prefix)");
      out.cidrs.push_back(*c);
      continue;
    }
    domain_rule d;
    std::string name = e;
    if (name.rfind("*.", 0) == 0) {
      d.wildcard = true;
      name = name.substr(2);
    }
    auto canon = canonical_host(name);
    if (!canon) return bad("is neither a CIDR nor a domain name (example.com or *.example.com)");
    if (canon->find('.') == std::string::npos && d.wildcard) return bad("matches a whole top-level domain");
    d.name = *canon;
    out.domains.push_back(d);
  }
  return out;
}

bool never_reachable(const ip_address& a) {
  if (!a.v6) return in_any(a, {"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3"});
  return in_any(a, {"::/128", "::1/128", "fe80::/10", "ff00::/8"});
}

bool is_private(const ip_address& a) {
  if (!a.v6) return in_any(a, {"10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16"});
  return in_any(a, {"fc00::/7"});
}

bool policy::permits_address(const ip_address& a, bool name_allowed) const {
  if (deny.has_cidr(a)) return false;
  if (!allow.empty()) return name_allowed || allow.has_cidr(a);
  if (profile == "internet") return true;
  if (profile == "default") return !is_private(a);
  return false;  // locked-down
}

std::vector<std::string> well_known_hosts(const std::string& name) {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"OPENAI_API_KEY", {"api.openai.com"}},
      {"ANTHROPIC_API_KEY", {"api.anthropic.com"}},
      {"GITHUB_TOKEN", {"api.github.com", "github.com", "uploads.github.com"}},
      {"GH_TOKEN", {"api.github.com", "github.com", "uploads.github.com"}},
      {"HF_TOKEN", {"huggingface.co"}},
      {"HUGGING_FACE_HUB_TOKEN", {"huggingface.co"}},
      {"GEMINI_API_KEY", {"generativelanguage.googleapis.com"}},
      {"GOOGLE_API_KEY", {"generativelanguage.googleapis.com"}},
      {"MISTRAL_API_KEY", {"api.mistral.ai"}},
      {"GROQ_API_KEY", {"api.groq.com"}},
      {"COHERE_API_KEY", {"api.cohere.com", "api.cohere.ai"}},
      {"OPENROUTER_API_KEY", {"openrouter.ai"}},
      {"TOGETHER_API_KEY", {"api.together.xyz"}},
      {"DEEPSEEK_API_KEY", {"api.deepseek.com"}},
      {"XAI_API_KEY", {"api.x.ai"}},
      {"REPLICATE_API_TOKEN", {"api.replicate.com"}},
  };
  auto it = table.find(name);
  return it == table.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace warren::net::egress
