// net/egress/dns_message.cpp — DNS wire parsing/encoding (RFC 1035 §4) and one upstream exchange
// (UDP, then TCP on truncation: RFC 7766). Parsers never trust a length or a pointer they read.
#include "net/egress/dns_message.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/ascii.hpp"
#include "core/owned_fd.hpp"

namespace warren::net::egress {
namespace {

constexpr size_t kHeader = 12;
constexpr int kMaxPointerHops = 32;
constexpr uint16_t kQR = 0x8000, kTC = 0x0200, kRD = 0x0100, kRA = 0x0080, kOpcode = 0x7800;

uint16_t get16(std::string_view w, size_t p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(w[p]) << 8) | static_cast<uint8_t>(w[p + 1]));
}
uint32_t get32(std::string_view w, size_t p) { return (uint32_t{get16(w, p)} << 16) | get16(w, p + 2); }
void put16(std::string& o, uint16_t v) {
  o.push_back(static_cast<char>(v >> 8));
  o.push_back(static_cast<char>(v & 0xff));
}

bool label_ok(std::string_view label) {
  return std::all_of(label.begin(), label.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '.'; });
}

// Reads the name at pos (lower-cased, dots between labels) and moves pos past it. A compression
// pointer must point past the header and before the run of labels it ends (so targets strictly
// decrease: no loops), and at most kMaxPointerHops are followed.
bool read_name(std::string_view w, size_t& pos, std::string& out) {
  out.clear();
  size_t p = pos, run_start = pos, total = 0;
  bool jumped = false;
  for (int hops = 0;;) {
    if (p >= w.size()) return false;
    auto len = static_cast<uint8_t>(w[p]);
    if ((len & 0xC0) == 0xC0) {
      if (p + 1 >= w.size()) return false;
      size_t target = get16(w, p) & 0x3FFF;
      if (!jumped) pos = p + 2;
      jumped = true;
      // Never into the header: a reply built from a query's question bytes has another header.
      if (target < kHeader || target >= run_start || ++hops > kMaxPointerHops) return false;
      p = run_start = target;
      continue;
    }
    if (len & 0xC0) return false;  // 0x40/0x80: extended label types, obsolete (RFC 6891 §5)
    if (len == 0) {
      if (!jumped) pos = p + 1;
      break;
    }
    total += len + 1u;
    if (p + 1 + len > w.size() || total > 254) return false;  // 255 with the root label
    std::string_view label = w.substr(p + 1, len);
    if (!label_ok(label)) return false;
    out += ascii_lower(label);
    out += '.';
    p += 1 + len;
  }
  if (!out.empty()) out.pop_back();
  return true;
}

struct message_head {
  uint16_t id = 0, flags = 0, qdcount = 0, ancount = 0;
  dns_question q;
  size_t question_end = 0;  // just past the first question
};

// The header and first question of any message with qdcount >= 1.
std::optional<message_head> parse_head(std::string_view w) {
  if (w.size() < kHeader) return std::nullopt;
  message_head h;
  h.id = get16(w, 0);
  h.flags = get16(w, 2);
  h.qdcount = get16(w, 4);
  h.ancount = get16(w, 6);
  if (h.qdcount == 0) return std::nullopt;
  size_t pos = kHeader;
  if (!read_name(w, pos, h.q.name) || pos + 4 > w.size()) return std::nullopt;
  h.q.qtype = get16(w, pos);
  h.q.qclass = get16(w, pos + 2);
  h.question_end = pos + 4;
  return h;
}

struct record {
  std::string owner;
  uint16_t type = 0, klass = 0;
  uint32_t ttl = 0;
  size_t rdata = 0, rdlen = 0;
};

bool read_record(std::string_view w, size_t& pos, record& r) {
  if (!read_name(w, pos, r.owner) || pos + 10 > w.size()) return false;
  r.type = get16(w, pos);
  r.klass = get16(w, pos + 2);
  r.ttl = get32(w, pos + 4);
  if (r.ttl > 0x7fffffffu) r.ttl = 0;  // RFC 2181 §8: a TTL with the top bit set means zero
  r.rdlen = get16(w, pos + 8);
  r.rdata = pos + 10;
  if (r.rdata + r.rdlen > w.size()) return false;
  pos = r.rdata + r.rdlen;
  return true;
}

std::optional<dns_address> address_of(std::string_view w, const record& r) {
  char text[INET6_ADDRSTRLEN] = {};
  bool v6 = r.type == dns_type_aaaa;
  if (r.rdlen != (v6 ? 16u : 4u)) return std::nullopt;
  if (!::inet_ntop(v6 ? AF_INET6 : AF_INET, w.data() + r.rdata, text, sizeof text)) return std::nullopt;
  return dns_address{text, v6, r.ttl};
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool is_reply_to(std::string_view reply, const message_head& query) {
  auto h = parse_head(reply);
  return h && (h->flags & kQR) && h->id == query.id && h->q.name == query.q.name && h->q.qtype == query.q.qtype &&
         h->q.qclass == query.q.qclass;
}

uint16_t random_id() {
  uint16_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1)
    id = static_cast<uint16_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return id;
}

}  // namespace

std::optional<dns_query> parse_query(std::string_view wire) {
  auto h = parse_head(wire);
  if (!h || (h->flags & kQR) || h->qdcount != 1) return std::nullopt;
  return dns_query{h->id, h->flags, std::move(h->q)};
}

std::optional<dns_response_info> parse_response(std::string_view wire) {
  auto h = parse_head(wire);
  if (!h || !(h->flags & kQR)) return std::nullopt;
  dns_response_info info;
  info.id = h->id;
  info.rcode = h->flags & 0x000F;
  info.truncated = (h->flags & kTC) != 0;
  info.names.push_back(h->q.name);
  size_t pos = h->question_end;
  std::string skipped;
  for (int i = 1; i < h->qdcount; ++i) {
    if (!read_name(wire, pos, skipped) || pos + 4 > wire.size()) return info.truncated ? std::optional(info) : std::nullopt;
    pos += 4;
  }
  std::vector<std::pair<std::string, std::string>> cnames;
  std::vector<std::pair<std::string, dns_address>> addrs;
  for (int i = 0; i < h->ancount; ++i) {
    record r;
    if (!read_record(wire, pos, r)) {
      if (info.truncated) break;
      return std::nullopt;
    }
    if (r.klass != dns_class_in) continue;
    if (r.type == dns_type_cname) {
      size_t p = r.rdata;
      std::string target;
      if (!read_name(wire, p, target) || p != r.rdata + r.rdlen) return std::nullopt;
      cnames.emplace_back(r.owner, std::move(target));
    } else if (r.type == dns_type_a || r.type == dns_type_aaaa) {
      auto a = address_of(wire, r);
      if (!a) return std::nullopt;
      addrs.emplace_back(r.owner, std::move(*a));
    }
  }
  // The CNAME chain from the question, in any record order; each pass adds at least one name or stops.
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [owner, target] : cnames)
      if (contains(info.names, owner) && !contains(info.names, target)) {
        info.names.push_back(target);
        grew = true;
      }
  }
  for (auto& [owner, a] : addrs)
    if (contains(info.names, owner)) info.addresses.push_back(std::move(a));
  return info;
}

std::string make_error_response(std::string_view query_wire, int rcode) {
  auto h = parse_head(query_wire);
  if (!h || (h->flags & kQR) || h->qdcount != 1) return {};
  std::string out;
  put16(out, h->id);
  put16(out, static_cast<uint16_t>(kQR | (h->flags & (kOpcode | kRD)) | kRA | (rcode & 0x0F)));
  put16(out, 1);
  for (int i = 0; i < 3; ++i) put16(out, 0);
  // read_name only follows pointers backwards, so a compressed question name points inside these bytes.
  out.append(query_wire.substr(kHeader, h->question_end - kHeader));
  return out;
}

std::string make_query(uint16_t id, const std::string& name, uint16_t qtype) {
  std::string_view n = name;
  if (!n.empty() && n.back() == '.') n.remove_suffix(1);
  if (n.empty() || n.size() > 253) return {};
  std::string out;
  put16(out, id);
  put16(out, kRD);
  put16(out, 1);
  for (int i = 0; i < 3; ++i) put16(out, 0);
  while (true) {
    size_t dot = n.find('.');
    std::string_view label = n.substr(0, dot);
    if (label.empty() || label.size() > 63 || !label_ok(label)) return {};
    out.push_back(static_cast<char>(label.size()));
    out.append(label);
    if (dot == std::string_view::npos) break;
    n.remove_prefix(dot + 1);
  }
  out.push_back('\0');
  put16(out, qtype);
  put16(out, dns_class_in);
  return out;
}

namespace {

using steady = std::chrono::steady_clock;

struct endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
};

std::optional<endpoint> make_endpoint(const std::string& ip, uint16_t port) {
  endpoint e;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&e.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&e.addr);
  if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    e.len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = e.family = AF_INET6;
    v6->sin6_port = htons(port);
    e.len = sizeof(sockaddr_in6);
  } else {
    return std::nullopt;
  }
  return e;
}

int ms_left(steady::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

error sys_err(const std::string& what, const std::string& server) {
  return make_error(errc::bad_gateway, "DNS " + what + " " + server + ": " + std::strerror(errno));
}

// Waits for events on fd until the deadline: ok, or a timeout error.
status wait_for(int fd, short events, steady::time_point deadline, const std::string& server) {
  while (true) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms_left(deadline));
    if (n > 0) return ok();
    if (n == 0) return make_error(errc::timeout, "DNS server " + server + " did not answer in time");
    if (errno != EINTR) return sys_err("poll", server);
  }
}

expected<std::string> exchange_udp(const endpoint& ep, const std::string& server, std::string_view query,
                                   const message_head& qh, steady::time_point deadline) {
  owned_fd fd(::socket(ep.family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return sys_err("socket", server);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) return sys_err("connect", server);
  if (::send(fd.get(), query.data(), query.size(), 0) != static_cast<ssize_t>(query.size())) return sys_err("send", server);
  std::string buf(65535, '\0');
  while (true) {
    if (auto st = wait_for(fd.get(), POLLIN, deadline, server); !st) return std::move(st).err();
    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return sys_err("recv", server);
    }
    std::string_view reply(buf.data(), static_cast<size_t>(n));
    if (is_reply_to(reply, qh)) return std::string(reply);
  }
}

status io_all(int fd, char* data, size_t len, bool writing, steady::time_point deadline, const std::string& server) {
  size_t done = 0;
  while (done < len) {
    if (auto st = wait_for(fd, writing ? POLLOUT : POLLIN, deadline, server); !st) return st;
    ssize_t n = writing ? ::send(fd, data + done, len - done, MSG_NOSIGNAL) : ::recv(fd, data + done, len - done, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return sys_err(writing ? "send" : "recv", server);
    if (n == 0) return make_error(errc::bad_gateway, "DNS server " + server + " closed the TCP connection early");
    done += static_cast<size_t>(n);
  }
  return ok();
}

expected<std::string> exchange_tcp(const endpoint& ep, const std::string& server, std::string_view query,
                                   const message_head& qh, steady::time_point deadline) {
  owned_fd fd(::socket(ep.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return sys_err("socket", server);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) {
    if (errno != EINPROGRESS) return sys_err("connect", server);
    if (auto st = wait_for(fd.get(), POLLOUT, deadline, server); !st) return std::move(st).err();
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      errno = err;
      return sys_err("connect", server);
    }
  }
  std::string out;
  put16(out, static_cast<uint16_t>(query.size()));
  out.append(query);
  if (auto st = io_all(fd.get(), out.data(), out.size(), true, deadline, server); !st) return std::move(st).err();
  char len_buf[2];
  if (auto st = io_all(fd.get(), len_buf, 2, false, deadline, server); !st) return std::move(st).err();
  std::string reply(get16(std::string_view(len_buf, 2), 0), '\0');
  if (auto st = io_all(fd.get(), reply.data(), reply.size(), false, deadline, server); !st) return std::move(st).err();
  if (!is_reply_to(reply, qh)) return make_error(errc::bad_gateway, "DNS server " + server + " answered another question over TCP");
  return reply;
}

}  // namespace

expected<std::string> exchange(const std::string& server_ip, uint16_t port, std::string_view query, int timeout_ms) {
  auto qh = parse_head(query);
  if (!qh || (qh->flags & kQR) || query.size() > 65535) return make_error(errc::bad_request, "not a DNS query");
  auto ep = make_endpoint(server_ip, port);
  if (!ep) return make_error(errc::bad_request, "DNS server address '" + server_ip + "' is not an IP address");
  auto reply = exchange_udp(*ep, server_ip, query, *qh, steady::now() + std::chrono::milliseconds(timeout_ms));
  if (!reply || !(get16(*reply, 2) & kTC)) return reply;
  return exchange_tcp(*ep, server_ip, query, *qh, steady::now() + std::chrono::milliseconds(timeout_ms));
}

expected<std::vector<dns_address>> resolve(const std::vector<std::string>& servers, uint16_t port,
                                           const std::string& name, int timeout_ms) {
  error last = make_error(errc::unavailable, "no DNS server configured");
  for (const auto& server : servers) {
    std::vector<dns_address> found;
    bool answered = true;
    for (uint16_t qtype : {dns_type_a, dns_type_aaaa}) {
      std::string query = make_query(random_id(), name, qtype);
      if (query.empty()) return make_error(errc::bad_request, "'" + name + "' is not a domain name");
      auto reply = exchange(server, port, query, timeout_ms);
      auto info = reply ? parse_response(*reply) : std::nullopt;
      if (!reply) {
        last = std::move(reply).err();
      } else if (!info) {
        last = make_error(errc::bad_gateway, "DNS server " + server + " sent an unparsable answer");
      } else if (info->rcode == dns_rcode_nxdomain) {
        return make_error(errc::not_found, "DNS: " + name + " does not exist");
      } else if (info->rcode != 0) {
        last = make_error(errc::bad_gateway, "DNS server " + server + " answered rcode " + std::to_string(info->rcode));
      } else {
        found.insert(found.end(), info->addresses.begin(), info->addresses.end());
        continue;
      }
      // A server that answers A but fails AAAA (dnsmasq with only local IPv4 data refuses it)
      // still gave an answer: keep its addresses.
      if (qtype == dns_type_aaaa && !found.empty()) break;
      answered = false;
      break;
    }
    if (!answered) continue;
    if (found.empty()) return make_error(errc::not_found, "DNS: " + name + " has no address");
    return found;
  }
  return last;
}

}  // namespace warren::net::egress
