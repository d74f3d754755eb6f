// net/egress/service.cpp — the egress proxy and DNS forwarder (see service.hpp). What decides
// lives in policy.cpp; what parses lives in dns_message / tls_sni / http_head. Never logs a
// header value or a secret.
#include "net/egress/service.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "net/egress/dns_message.hpp"
#include "net/egress/http_head.hpp"
#include "net/egress/node_ca.hpp"
#include "net/egress/secret_box.hpp"
#include "net/egress/tls_sni.hpp"

namespace warren::net::egress {

struct service::entry {
  std::string id;
  policy pol;
  std::vector<credential> credentials;
  std::function<void(const std::vector<std::string>&, uint32_t)> learn;

  // (placeholder, secret) of every credential bound to `host`.
  std::vector<std::pair<std::string, std::string>> substitutions(const std::string& host) const {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& c : credentials)
      if (std::any_of(c.hosts.begin(), c.hosts.end(), [&](const domain_rule& d) { return d.matches(host); }))
        out.emplace_back(c.placeholder, c.secret);
    return out;
  }
};

struct service::decision {
  std::vector<ip_address> targets;  // where to connect, in order; empty: refused
  std::string refused;              // why (for the refusal log and a plain-HTTP 403)
};

namespace {

constexpr int sniff_timeout_ms = 10000;
constexpr int connect_timeout_ms = 10000;
constexpr int idle_timeout_ms = 600000;
constexpr int dns_timeout_ms = 3000;
constexpr int max_connections = 1024;

std::string now_rfc3339() {
  char buf[32];
  time_t t = time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void set_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool recv_exact(int fd, char* buf, size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, buf, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Listening sockets on every address (the nftables input chain lets only sandboxes' redirected
// traffic in); port 0 takes a free one.
expected<int> bind_socket(int type, uint16_t port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(errc::internal, std::string("egress: socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || (type == SOCK_STREAM && ::listen(fd, 512) != 0)) {
    int e = errno;
    ::close(fd);
    return make_error(errc::unavailable, "egress: bind port " + std::to_string(port) + ": " + strerror(e));
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

std::optional<ip_address> from_sockaddr(const sockaddr_storage& ss) {
  ip_address a;
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    std::memcpy(a.bytes.data(), &in->sin_addr, 4);
    return a;
  }
  if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return ip_address::parse(buf);  // maps ::ffff:a.b.c.d back to IPv4
  }
  return std::nullopt;
}

// The node's own addresses right now (a sandbox never reaches the node through the proxy).
bool is_node_address(const ip_address& a) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return true;  // cannot tell: refuse
  bool found = false;
  for (auto* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    sockaddr_storage ss{};
    if (i->ifa_addr->sa_family == AF_INET) std::memcpy(&ss, i->ifa_addr, sizeof(sockaddr_in));
    else if (i->ifa_addr->sa_family == AF_INET6) std::memcpy(&ss, i->ifa_addr, sizeof(sockaddr_in6));
    else continue;
    if (auto mine = from_sockaddr(ss)) found = *mine == a;
  }
  freeifaddrs(list);
  return found;
}

int connect_to(const ip_address& a, uint16_t port) {
  int fd = ::socket(a.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_storage ss{};
  socklen_t len;
  if (a.v6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    std::memcpy(&in6->sin6_addr, a.bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, a.bytes.data(), 4);
    len = sizeof(sockaddr_in);
  }
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t el = sizeof err;
    if (poll(&p, 1, connect_timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0) rc = 0;
  }
  if (rc != 0) {
    ::close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Peeks at what the client sent first, without consuming it, until `enough` says it has seen
// enough (or the buffer is full, the client stops sending, or the timeout passes).
template <class Enough>
std::string sniff(int fd, size_t cap, Enough enough) {
  std::string buf;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(sniff_timeout_ms);
  while (true) {
    buf.resize(cap);
    ssize_t n = ::recv(fd, buf.data(), cap, MSG_PEEK);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    if (n <= 0 || static_cast<size_t>(n) >= cap || enough(buf)) return buf;
    // Wait for more than what is there (poll would say "readable" at once: the peeked bytes
    // are still queued), unless the client has stopped sending.
    if (std::chrono::steady_clock::now() >= deadline) return buf;
    pollfd p{fd, POLLRDHUP, 0};
    if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) return buf;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// One end of a relay: a socket, maybe under TLS.
struct end_point {
  int fd = -1;
  SSL* ssl = nullptr;
  bool read_open = true;

  // >0 bytes, 0 end of stream, -1 nothing now, -2 failed.
  ssize_t read_some(char* buf, size_t cap) {
    if (!ssl) {
      ssize_t n = ::recv(fd, buf, cap, MSG_DONTWAIT);
      if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
      return n;
    }
    int n = SSL_read(ssl, buf, static_cast<int>(cap));
    if (n > 0) return n;
    int e = SSL_get_error(ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    ERR_clear_error();
    return e == SSL_ERROR_SYSCALL ? 0 : -2;  // a peer that closes without close_notify: the end
  }
  bool write_all(std::string_view data) {
    while (!data.empty()) {
      if (!ssl) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          data.remove_prefix(static_cast<size_t>(n));
          continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
      } else {
        int n = SSL_write(ssl, data.data(), static_cast<int>(data.size()));
        if (n > 0) {
          data.remove_prefix(static_cast<size_t>(n));
          continue;
        }
        int e = SSL_get_error(ssl, n);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return false;
      }
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, idle_timeout_ms) != 1) return false;
    }
    return true;
  }
  void shutdown_write() {
    if (ssl) SSL_shutdown(ssl);
    else ::shutdown(fd, SHUT_WR);
  }
  bool pending() const { return ssl && SSL_pending(ssl) > 0; }
};

// Moves bytes both ways until both directions ended (or nothing moved for the idle timeout).
void relay(end_point& a, end_point& b) {
  fcntl(a.fd, F_SETFL, fcntl(a.fd, F_GETFL) | O_NONBLOCK);
  fcntl(b.fd, F_SETFL, fcntl(b.fd, F_GETFL) | O_NONBLOCK);
  std::vector<char> buf(64 * 1024);
  auto pump = [&](end_point& from, end_point& to) -> bool {
    while (from.read_open) {
      ssize_t n = from.read_some(buf.data(), buf.size());
      if (n == -1) return true;
      if (n <= 0) {
        from.read_open = false;
        to.shutdown_write();
        return n == 0;
      }
      if (!to.write_all({buf.data(), static_cast<size_t>(n)})) return false;
    }
    return true;
  };
  while (a.read_open || b.read_open) {
    if (a.pending() && !pump(a, b)) return;
    if (b.pending() && !pump(b, a)) return;
    pollfd p[2] = {{a.fd, static_cast<short>(a.read_open ? POLLIN : 0), 0},
                   {b.fd, static_cast<short>(b.read_open ? POLLIN : 0), 0}};
    int n = poll(p, 2, idle_timeout_ms);
    if (n <= 0) return;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(a, b)) return;
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(b, a)) return;
  }
}

const char* refused_response =
    "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
    "X-Warren-Egress: refused\r\nContent-Length: ";

void answer_refused(end_point& client, const std::string& why) {
  std::string body = "warren egress: " + why + "\n";
  client.write_all(std::string(refused_response) + std::to_string(body.size()) + "\r\n\r\n" + body);
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(std::max(n, 0)));
  return out;
}

std::optional<std::string> unbase64(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0 || in.size() > 8192) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  size_t pad = in.size() >= 2 && in[in.size() - 1] == '=' ? (in[in.size() - 2] == '=' ? 2 : 1) : 0;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// `Authorization: Basic base64(user:placeholder)` (git, pip) hides the placeholder from a plain
// text replacement: such a value is decoded, substituted and encoded again.
void substitute_basic_auth(http_request_head& h, const std::vector<std::pair<std::string, std::string>>& subs,
                           int& replaced) {
  for (auto& [name, value] : h.headers) {
    if (strcasecmp(name.c_str(), "authorization") != 0 || value.size() < 6 || strncasecmp(value.c_str(), "basic ", 6) != 0)
      continue;
    auto plain = unbase64(value.substr(6));
    if (!plain) continue;
    bool changed = false;
    for (auto& [ph, secret] : subs)
      for (size_t at; (at = plain->find(ph)) != std::string::npos;) {
        plain->replace(at, ph.size(), secret);
        changed = true;
        ++replaced;
      }
    if (changed) value = "Basic " + base64(*plain);
  }
}

}  // namespace

service::service(const service_options& opts) : opts_(opts), pool_(*cidr::parse("10.201.0.0/16")) {
  if (auto p = cidr::parse(opts.pool_cidr)) pool_ = *p;
}

service::~service() { stop(); }

expected<std::shared_ptr<service>> service::start(const service_options& opts) {
  std::shared_ptr<service> s(new service(opts));
  auto ca = node_ca::load_or_create(opts.dir + "/ca");
  if (!ca) return ca.err();
  s->ca_ = *ca;
  auto box = secret_box::load_or_create(opts.dir + "/credentials.key");
  if (!box) return box.err();
  s->box_ = std::make_shared<secret_box>(std::move(*box));
  auto cctx = make_client_ctx(opts.upstream_ca_file);
  if (!cctx) return cctx.err();
  s->client_ctx_ = *cctx;
  auto pfd = bind_socket(SOCK_STREAM, opts.proxy_port);
  if (!pfd) return pfd.err();
  s->proxy_fd_ = *pfd;
  s->proxy_port_ = bound_port(*pfd);
  // The forwarder answers UDP and TCP on one port number: take a free UDP port, then the same
  // number for TCP (again with another if that one is taken for TCP).
  for (int attempt = 0; attempt < 20 && s->dns_tcp_fd_ < 0; ++attempt) {
    auto u = bind_socket(SOCK_DGRAM, opts.dns_port);
    if (!u) return u.err();
    auto t = bind_socket(SOCK_STREAM, bound_port(*u));
    if (t) {
      s->dns_udp_fd_ = *u;
      s->dns_tcp_fd_ = *t;
      s->dns_port_ = bound_port(*u);
    } else {
      ::close(*u);
      if (opts.dns_port) return t.err();
    }
  }
  if (s->dns_tcp_fd_ < 0) return make_error(errc::unavailable, "egress: no port free for the DNS forwarder");
  service* raw = s.get();
  s->loops_.emplace_back([raw] { raw->accept_loop(raw->proxy_fd_, &service::proxy_connection); });
  s->loops_.emplace_back([raw] { raw->accept_loop(raw->dns_tcp_fd_, &service::dns_tcp_connection); });
  s->loops_.emplace_back([raw] { raw->dns_udp_loop(); });
  spdlog::info("egress: proxy on port {}, DNS forwarder on port {}, upstream resolvers {}", s->proxy_port_,
               s->dns_port_, nlohmann::json(opts.dns_upstream).dump());
  return s;
}

void service::stop() {
  if (stopping_.exchange(true)) return;
  for (int fd : {proxy_fd_, dns_tcp_fd_, dns_udp_fd_})
    if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  for (auto& t : loops_) t.join();
  for (int fd : {proxy_fd_, dns_tcp_fd_, dns_udp_fd_})
    if (fd >= 0) ::close(fd);
  // Connection threads are detached; they hold no pointer into freed state beyond `this`,
  // which the daemon keeps until exit. Give running ones a moment to see the end.
  for (int i = 0; i < 50 && connections_.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

std::string service::seal(const std::string& secret) const { return box_->seal(secret); }
std::string service::ca_pem() const { return ca_->cert_pem(); }

vmm::egress_rules service::rules_for(const storage::sandbox_record& rec) const {
  vmm::egress_rules r;
  r.profile = rec.network_profile;
  auto allow = parse_rules(rec.allow, "allow");
  auto deny = parse_rules(rec.deny, "deny");
  if (allow) {
    r.allow_cidrs = allow->cidr_strings(false);
    for (auto& c : allow->cidr_strings(true)) r.allow_cidrs.push_back(c);
    r.allow_list = !allow->empty();
  }
  if (deny) {
    r.deny_cidrs = deny->cidr_strings(false);
    for (auto& c : deny->cidr_strings(true)) r.deny_cidrs.push_back(c);
  }
  // Rules that cannot be read (the record was damaged) refuse everything rather than nothing.
  if (!allow || !deny) r.allow_list = true, r.allow_cidrs.clear();
  bool domains = (allow && !allow->domains.empty()) || (deny && !deny->domains.empty());
  r.redirect_web = domains || !rec.credentials.empty();
  r.redirect_dns = !rec.allow.empty() || !rec.deny.empty() || !rec.credentials.empty();
  return r;
}

void service::attach(const storage::sandbox_record& rec, const vmm::instance& inst,
                     std::shared_ptr<vmm::driver> driver) {
  auto addr = ip_address::parse(inst.net_addr);
  if (!addr) return;  // no address the node sees it by: nothing reaches these services from it
  auto e = std::make_shared<entry>();
  e->id = rec.id;
  e->pol.profile = rec.network_profile;
  auto allow = parse_rules(rec.allow, "allow");
  auto deny = parse_rules(rec.deny, "deny");
  if (allow) e->pol.allow = *allow;
  if (deny) e->pol.deny = *deny;
  // Rules that cannot be read (a damaged record) refuse everything rather than nothing: an allow
  // list whose one name no canonical host name can equal.
  if (!allow || !deny) e->pol.allow = rule_list{}, e->pol.allow.domains.push_back({"invalid.", false});
  for (auto& c : rec.credentials) {
    auto secret = box_->open(c.sealed);
    if (!secret) {
      spdlog::error("sandbox {}: credential {} cannot be opened: {}", rec.id, c.name, secret.err().message);
      continue;
    }
    credential cr{c.name, c.placeholder, *secret, {}};
    for (auto& h : c.hosts)
      if (auto d = parse_rules({h}, "hosts"); d && !d->domains.empty()) cr.hosts.push_back(d->domains.front());
    e->credentials.push_back(std::move(cr));
  }
  e->learn = [driver, inst](const std::vector<std::string>& addrs, uint32_t ttl) {
    if (auto s = driver->allow_learned(inst, addrs, ttl); !s)
      spdlog::warn("sandbox {}: DNS answers not let through: {}", inst.id, s.err().message);
  };
  std::lock_guard lk(mu_);
  if (auto old = addr_of_.find(rec.id); old != addr_of_.end()) by_addr_.erase(old->second);
  by_addr_[addr->str()] = e;
  addr_of_[rec.id] = addr->str();
}

void service::detach(const std::string& id) {
  std::lock_guard lk(mu_);
  if (auto it = addr_of_.find(id); it != addr_of_.end()) {
    by_addr_.erase(it->second);
    addr_of_.erase(it);
  }
  refused_.erase(id);
}

std::shared_ptr<const service::entry> service::find(const ip_address& source) const {
  std::lock_guard lk(mu_);
  auto it = by_addr_.find(source.str());
  return it == by_addr_.end() ? nullptr : it->second;
}

std::shared_ptr<const service::entry> service::peer_entry(int fd) const {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return nullptr;
  auto source = from_sockaddr(peer);
  return source ? find(*source) : nullptr;
}

void service::refuse(const std::string& id, const std::string& dest, const char* by) {
  std::lock_guard lk(mu_);
  auto& log = refused_[id];
  ++log.count;
  log.recent.push_back({dest, now_rfc3339(), by});
  if (log.recent.size() > 32) log.recent.pop_front();
}

std::string service::refusals(const std::string& id) const {
  nlohmann::json out = {{"count", 0}, {"recent", nlohmann::json::array()}};
  std::lock_guard lk(mu_);
  if (auto it = refused_.find(id); it != refused_.end()) {
    out["count"] = it->second.count;
    for (auto r = it->second.recent.rbegin(); r != it->second.recent.rend(); ++r)
      out["recent"].push_back({{"dest", r->dest}, {"at", r->at}, {"by", r->by}});
  }
  return out.dump();
}

std::map<std::string, uint64_t> service::refusal_counts() const {
  auto firewall = firewall_counts_ ? firewall_counts_() : std::map<std::string, uint64_t>{};
  std::map<std::string, uint64_t> out;
  std::lock_guard lk(mu_);
  for (auto& [id, addr] : addr_of_) {
    (void)addr;
    auto it = refused_.find(id);
    auto fw = firewall.find(id);
    out[id] = (it == refused_.end() ? 0 : it->second.count) + (fw == firewall.end() ? 0 : fw->second);
  }
  return out;
}

bool service::forbidden_upstream(const ip_address& a) const {
  return never_reachable(a) || pool_.contains(a) || is_node_address(a);
}

// Where a connection for `name` (Host / SNI; "" when the client sent none) may go. A name is
// resolved by the node itself, never taken from where the sandbox connected: a lying SNI or Host
// reaches that name's real servers, or nothing.
service::decision service::decide(const entry& e, const std::string& name, const ip_address& original) const {
  decision d;
  const policy& p = e.pol;
  bool name_allowed = false;
  std::vector<ip_address> candidates;
  if (name.empty()) {
    if (p.has_domain_rules()) return {{}, "no host name (Host or SNI) to check against the domain rules"};
    candidates.push_back(original);
  } else if (auto literal = ip_address::parse(name)) {
    candidates.push_back(*literal);
  } else {
    if (p.denies_name(name)) return {{}, name + " is denied"};
    name_allowed = p.allows_name(name);
    if (!p.allow.empty() && !name_allowed && p.allow.cidrs.empty()) return {{}, name + " is not in the allow list"};
    auto resolved = resolve(opts_.dns_upstream, 53, name, dns_timeout_ms);
    if (!resolved) return {{}, name + " does not resolve: " + resolved.err().message};
    for (auto& r : *resolved)
      if (auto a = ip_address::parse(r.addr)) candidates.push_back(*a);
  }
  for (auto& a : candidates)
    if (!forbidden_upstream(a) && p.permits_address(a, name_allowed)) d.targets.push_back(a);
  if (d.targets.empty())
    d.refused = (name.empty() ? original.str() : name) + " is not an allowed destination for this sandbox";
  return d;
}

void service::accept_loop(int listen_fd, void (service::*handle)(int)) {
  while (!stopping_) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_ || errno == EINVAL || errno == EBADF) return;
      if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (connections_.fetch_add(1) >= max_connections) {
      connections_.fetch_sub(1);
      ::close(fd);
      continue;
    }
    std::thread([this, fd, handle] {
      (this->*handle)(fd);
      ::close(fd);
      connections_.fetch_sub(1);
    }).detach();
  }
}

void service::proxy_connection(int fd) {
  auto e = peer_entry(fd);
  if (!e) return;
  sockaddr_in orig{};
  socklen_t olen = sizeof orig;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &olen) != 0) return;
  ip_address original;
  std::memcpy(original.bytes.data(), &orig.sin_addr, 4);
  uint16_t port = ntohs(orig.sin_port);
  set_timeouts(fd, sniff_timeout_ms);

  // TLS starts with a handshake record (22); anything else on these ports is taken as HTTP.
  std::string first = sniff(fd, 1, [](const std::string& b) { return !b.empty(); });
  if (first.empty()) return;
  end_point client{fd};
  if (first[0] == 0x16) {
    bool need_more = false;
    std::optional<std::string> sni;
    sniff(fd, client_hello_max_bytes, [&](const std::string& b) {
      sni = parse_client_hello_sni(b, need_more);
      return !need_more;
    });
    std::string name = sni ? canonical_host(*sni).value_or(*sni) : "";
    auto d = decide(*e, name, original);
    if (d.targets.empty()) {
      refuse(e->id, (name.empty() ? original.str() : name) + ":" + std::to_string(port), "proxy");
      spdlog::info("sandbox {}: egress refused: {}", e->id, d.refused);
      return;
    }
    if (!name.empty() && !e->substitutions(name).empty()) return serve_terminated(fd, *e, name, d.targets, port);
    int up = -1;
    for (auto& t : d.targets)
      if ((up = connect_to(t, port)) >= 0) break;
    if (up < 0) return;
    set_timeouts(fd, 0);
    relay_plain(fd, up);
    ::close(up);
    return;
  }

  bool need_more = false;
  size_t head_len = 0;
  std::optional<http_request_head> head;
  sniff(fd, request_head_max_bytes, [&](const std::string& b) {
    head = parse_request_head(b, need_more, head_len);
    return !need_more;
  });
  if (!head) return answer_refused(client, "not an HTTP/1.x request head");
  auto name = canonical_host(head->host).value_or(head->host);
  auto d = decide(*e, name, original);
  if (d.targets.empty()) {
    refuse(e->id, (name.empty() ? original.str() : name) + ":" + std::to_string(port), "proxy");
    spdlog::info("sandbox {}: egress refused: {}", e->id, d.refused);
    return answer_refused(client, d.refused);
  }
  std::string consumed(head_len, '\0');
  if (!recv_exact(fd, consumed.data(), head_len)) return;
  int replaced = 0;
  auto subs = e->substitutions(name);
  substitute_basic_auth(*head, subs, replaced);
  std::string out = render_request_head(*head, subs, replaced);
  int up = -1;
  for (auto& t : d.targets)
    if ((up = connect_to(t, port)) >= 0) break;
  if (up < 0) return answer_refused(client, "cannot connect to " + name);
  set_timeouts(fd, 0);
  if (send_all(up, out)) relay_plain(fd, up);
  ::close(up);
}

void service::relay_plain(int client, int upstream) {
  end_point a{client}, b{upstream};
  relay(a, b);
}

// TLS to a host a credential is bound to: the sandbox talks to a certificate of the node's CA
// for that name, the node to the real host (verified against the host's trust store and the
// configured CA). Then one request: its headers get the secrets, `Connection: close` ends it.
void service::serve_terminated(int fd, const entry& e, const std::string& name, const std::vector<ip_address>& targets,
                               uint16_t port) {
  auto sctx = ca_->server_ctx(name);
  if (!sctx) {
    spdlog::warn("sandbox {}: no certificate for {}: {}", e.id, name, sctx.err().message);
    return;
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> down(SSL_new(sctx->get()), SSL_free);
  SSL_set_fd(down.get(), fd);
  if (SSL_accept(down.get()) != 1) {
    char err[256];
    ERR_error_string_n(ERR_get_error(), err, sizeof err);
    ERR_clear_error();
    spdlog::info("sandbox {}: TLS from the sandbox for {} failed: {}", e.id, name, err);
    return;
  }
  end_point client{fd, down.get()};
  // The request head, read through TLS.
  std::string buf;
  std::optional<http_request_head> head;
  size_t head_len = 0;
  bool need_more = true;
  char chunk[16384];
  while (need_more) {
    int n = SSL_read(down.get(), chunk, sizeof chunk);
    if (n <= 0) return;
    buf.append(chunk, static_cast<size_t>(n));
    head = parse_request_head(buf, need_more, head_len);
  }
  if (!head) return answer_refused(client, "not an HTTP/1.x request");
  auto host = canonical_host(head->host).value_or(head->host);
  if (host != name) {
    refuse(e.id, host + " (in a TLS connection to " + name + ")", "proxy");
    return answer_refused(client, "Host " + host + " does not match the TLS server name " + name);
  }
  int up = -1;
  for (auto& t : targets)
    if ((up = connect_to(t, port)) >= 0) break;
  if (up < 0) return answer_refused(client, "cannot connect to " + name);
  set_timeouts(up, sniff_timeout_ms);
  std::unique_ptr<SSL, decltype(&SSL_free)> upstream(SSL_new(static_cast<SSL_CTX*>(client_ctx_.get())), SSL_free);
  SSL_set_fd(upstream.get(), up);
  if (!prepare_client(upstream.get(), name) || SSL_connect(upstream.get()) != 1) {
    long v = SSL_get_verify_result(upstream.get());
    ERR_clear_error();
    ::close(up);
    spdlog::warn("sandbox {}: egress TLS to {} failed: {}", e.id, name, X509_verify_cert_error_string(v));
    return answer_refused(client, "the upstream certificate of " + name + " did not verify (" +
                                      X509_verify_cert_error_string(v) + ")");
  }
  int replaced = 0;
  auto subs = e.substitutions(name);
  substitute_basic_auth(*head, subs, replaced);
  std::string out = render_request_head(*head, subs, replaced) + buf.substr(head_len);
  end_point server{up, upstream.get()};
  set_timeouts(fd, 0);
  set_timeouts(up, 0);
  if (server.write_all(out)) relay(client, server);
  ::close(up);
}

void service::dns_udp_loop() {
  std::vector<char> buf(65535);
  while (!stopping_) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    ssize_t n = ::recvfrom(dns_udp_fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) {
      if (stopping_) return;
      continue;
    }
    auto source = from_sockaddr(peer);
    auto e = source ? find(*source) : nullptr;
    if (!e) continue;
    if (connections_.fetch_add(1) >= max_connections) {
      connections_.fetch_sub(1);
      continue;
    }
    std::string query(buf.data(), static_cast<size_t>(n));
    std::thread([this, e, query, peer, len] {
      auto answer = answer_dns(*e, query);
      if (!answer.empty())
        ::sendto(dns_udp_fd_, answer.data(), answer.size(), 0, reinterpret_cast<const sockaddr*>(&peer), len);
      connections_.fetch_sub(1);
    }).detach();
  }
}

void service::dns_tcp_connection(int fd) {
  auto e = peer_entry(fd);
  if (!e) return;
  set_timeouts(fd, sniff_timeout_ms);
  while (true) {
    unsigned char lenbuf[2];
    if (!recv_exact(fd, reinterpret_cast<char*>(lenbuf), 2)) return;
    std::string query((lenbuf[0] << 8) | lenbuf[1], '\0');
    if (!recv_exact(fd, query.data(), query.size())) return;
    auto answer = answer_dns(*e, query);
    if (answer.empty() || answer.size() > 65535) return;
    std::string framed{static_cast<char>(answer.size() >> 8), static_cast<char>(answer.size() & 0xff)};
    if (!send_all(fd, framed + answer)) return;
  }
}

// A name a deny domain matches, or (under an allow list without CIDRs) one no allow domain
// matches, is REFUSED without asking upstream. Answers for allowed names open the firewall for
// their addresses (for the answer's TTL, at least a minute) before the sandbox sees them.
std::string service::answer_dns(const entry& e, const std::string& query) {
  auto q = parse_query(query);
  if (!q) return make_error_response(query, 1);  // FORMERR (empty when not even a header)
  const std::string& name = q->q.name;
  const policy& p = e.pol;
  bool allowed = p.allows_name(name);
  if (p.denies_name(name) || (!p.allow.empty() && !allowed && p.allow.cidrs.empty())) {
    refuse(e.id, name, "dns");
    return make_error_response(query, dns_rcode_refused);
  }
  for (auto& server : opts_.dns_upstream) {
    auto answer = exchange(server, 53, query, dns_timeout_ms);
    if (!answer) continue;
    if (allowed && e.learn) {
      if (auto info = parse_response(*answer)) {
        std::vector<std::string> addrs;
        uint32_t ttl = 60;
        for (auto& a : info->addresses) {
          auto ip = ip_address::parse(a.addr);
          if (!ip || forbidden_upstream(*ip) || p.deny.has_cidr(*ip)) continue;
          addrs.push_back(ip->str());
          ttl = std::max(ttl, std::min<uint32_t>(a.ttl, 86400));
        }
        e.learn(addrs, ttl + 60);
      }
    }
    return *answer;
  }
  return make_error_response(query, 2);  // SERVFAIL: no upstream answered
}

}  // namespace warren::net::egress
