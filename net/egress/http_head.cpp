// net/egress/http_head.cpp — request-head parsing (RFC 9112 §2-§5) and the upstream rendering with
// placeholder substitution. Refuses what two parsers could read differently (smuggling, policy bypass).
#include "net/egress/http_head.hpp"

#include <algorithm>

#include "core/ascii.hpp"

namespace warren::net::egress {
namespace {

bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool value_ok(std::string_view v) {
  return std::none_of(v.begin(), v.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

// Every LF must follow a CR and every CR precede an LF (a CR at the very end may await its LF).
bool line_ends_ok(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] != '\n') return false;
  }
  return true;
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

// "Host" (or an authority) → host as http_request_head::host describes it; nullopt if malformed.
std::optional<std::string> normalize_host(std::string_view v) {
  std::string s = ascii_lower(v);
  std::string_view rest = s, host;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.';
        }))
      return std::nullopt;
    rest.remove_prefix(close + 1);
  } else {
    size_t colon = rest.find(':');
    host = rest.substr(0, colon);
    rest.remove_prefix(colon == std::string_view::npos ? rest.size() : colon);
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), host_char)) return std::nullopt;
  }
  if (!rest.empty()) {
    std::string_view port = rest.substr(1);
    if (rest.front() != ':' || port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
  }
  return std::string(host);
}

bool parse_request_line(std::string_view line, http_request_head& h) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return false;
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || (version != "HTTP/1.1" && version != "HTTP/1.0")) return false;
  if (!std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; })) return false;
  h.method = method;
  h.target = target;
  h.version = version;
  return true;
}

bool parse_field(std::string_view line, http_request_head& h) {
  if (line.front() == ' ' || line.front() == '\t') return false;  // obs-fold (RFC 9112 §5.2)
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return false;
  std::string_view value = trim_ows(line.substr(colon + 1));
  if (!value_ok(value)) return false;
  h.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  return true;
}

// The authority of an absolute-form target ("http://host:port/path"), or nullopt for origin-form.
std::optional<std::string_view> absolute_authority(std::string_view target) {
  for (std::string_view scheme : {"http://", "https://"})
    if (target.size() >= scheme.size() && ascii_iequals(target.substr(0, scheme.size()), scheme)) {
      std::string_view rest = target.substr(scheme.size());
      return rest.substr(0, rest.find_first_of("/?#"));
    }
  return std::nullopt;
}

// Host, framing headers and the target's authority must agree: several parsers must see one request.
bool settle_host(http_request_head& h) {
  const std::string* host_value = nullptr;
  bool has_cl = false, has_te = false;
  for (const auto& [name, value] : h.headers) {
    if (ascii_iequals(name, "host")) {
      if (host_value) return false;
      host_value = &value;
    }
    has_cl |= ascii_iequals(name, "content-length");
    has_te |= ascii_iequals(name, "transfer-encoding");
  }
  if (has_cl && has_te) return false;
  std::optional<std::string> from_host;
  if (host_value && !(from_host = normalize_host(*host_value))) return false;
  if (auto authority = absolute_authority(h.target)) {
    if (authority->find('@') != std::string_view::npos) return false;
    auto from_target = normalize_host(*authority);
    if (!from_target || (from_host && *from_host != *from_target)) return false;
    h.host = *from_target;
    return true;
  }
  if (!from_host) return h.version == "HTTP/1.0";
  h.host = *from_host;
  return true;
}

bool is_hop_by_hop(std::string_view name, const std::vector<std::string>& named) {
  std::string lower = ascii_lower(name);
  return lower == "connection" || lower == "keep-alive" || lower == "proxy-connection" ||
         std::find(named.begin(), named.end(), lower) != named.end();
}

bool safe_secret(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

std::string substitute(std::string_view value, const std::vector<std::pair<std::string, std::string>>& subs,
                       int& replaced) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size();) {
    auto hit = std::find_if(subs.begin(), subs.end(), [&](const auto& s) {
      return !s.first.empty() && safe_secret(s.second) && value.substr(i, s.first.size()) == s.first;
    });
    if (hit == subs.end()) {
      out += value[i++];
      continue;
    }
    out += hit->second;
    i += hit->first.size();
    ++replaced;
  }
  return out;
}

}  // namespace

std::optional<http_request_head> parse_request_head(std::string_view bytes, bool& need_more, size_t& head_len) {
  need_more = false;
  head_len = 0;
  std::string_view window = bytes.substr(0, request_head_max_bytes);
  size_t end = window.find("\r\n\r\n");
  if (!line_ends_ok(end == std::string_view::npos ? window : window.substr(0, end + 4))) return std::nullopt;
  if (end == std::string_view::npos) {
    need_more = bytes.size() < request_head_max_bytes;
    return std::nullopt;
  }
  http_request_head h;
  std::string_view rest = window.substr(0, end);
  bool first = true;
  while (true) {
    size_t eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    if (line.empty()) return std::nullopt;  // an empty line before the terminator: not a head we read
    if (!(first ? parse_request_line(line, h) : parse_field(line, h))) return std::nullopt;
    first = false;
    if (eol == std::string_view::npos) break;
    rest.remove_prefix(eol + 2);
  }
  if (!settle_host(h)) return std::nullopt;
  head_len = end + 4;
  return h;
}

std::string render_request_head(const http_request_head& h,
                                const std::vector<std::pair<std::string, std::string>>& substitutions,
                                int& replaced) {
  replaced = 0;
  std::vector<std::string> named;  // header names listed in Connection (RFC 9110 §7.6.1)
  for (const auto& [name, value] : h.headers) {
    if (!ascii_iequals(name, "connection")) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      auto token = trim_ows(rest.substr(0, comma));
      if (!token.empty()) named.push_back(ascii_lower(token));
      rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
    }
  }
  std::string out = h.method + " " + h.target + " " + h.version + "\r\n";
  for (const auto& [name, value] : h.headers) {
    if (is_hop_by_hop(name, named)) continue;
    out += name;
    out += ": ";
    out += substitute(value, substitutions, replaced);
    out += "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  return out;
}

}  // namespace warren::net::egress
