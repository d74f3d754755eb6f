// Tests net/egress/dns_message.cpp: wire parsing (with hostile packets), error replies, and exchange /
// resolve against a tiny UDP+TCP DNS server this test runs on 127.0.0.1.
#include <catch2/catch_test_macros.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include "net/egress/dns_message.hpp"

using namespace warren;
using namespace warren::net::egress;

namespace {

// ---- a minimal encoder for answers (the library only encodes queries and error replies) ----

void put16(std::string& o, uint16_t v) {
  o.push_back(static_cast<char>(v >> 8));
  o.push_back(static_cast<char>(v & 0xff));
}

std::string name_wire(const std::string& name) {
  std::string q = make_query(0, name, 1);  // header(12) + name + type + class
  return q.substr(12, q.size() - 16);
}

struct rr {
  std::string owner;  // a name, or raw wire bytes when wire_owner is set
  uint16_t type = dns_type_a;
  uint32_t ttl = 60;
  std::string rdata;
  bool wire_owner = false;
};

std::string ipv4(const char* text) {
  std::string b(4, '\0');
  ::inet_pton(AF_INET, text, b.data());
  return b;
}
std::string ipv6(const char* text) {
  std::string b(16, '\0');
  ::inet_pton(AF_INET6, text, b.data());
  return b;
}

// A reply to a query made by make_query (no additional section: the question is all after the header).
std::string reply_to(std::string_view query, int rcode, const std::vector<rr>& answers, bool tc = false,
                     int id_delta = 0) {
  std::string o;
  put16(o, static_cast<uint16_t>(((static_cast<uint8_t>(query[0]) << 8) | static_cast<uint8_t>(query[1])) + id_delta));
  put16(o, static_cast<uint16_t>(0x8180 | (tc ? 0x0200 : 0) | rcode));
  put16(o, 1);
  put16(o, static_cast<uint16_t>(answers.size()));
  put16(o, 0);
  put16(o, 0);
  o.append(query.substr(12));
  for (const auto& a : answers) {
    o += a.wire_owner ? a.owner : name_wire(a.owner);
    put16(o, a.type);
    put16(o, dns_class_in);
    put16(o, static_cast<uint16_t>(a.ttl >> 16));
    put16(o, static_cast<uint16_t>(a.ttl & 0xffff));
    put16(o, static_cast<uint16_t>(a.rdata.size()));
    o += a.rdata;
  }
  return o;
}

// ---- a DNS server on 127.0.0.1 (UDP and TCP on one port), answering with a function ----

class test_dns_server {
 public:
  // answer(query, over_tcp): the reply datagrams to send, in order (none: stay silent).
  using answer_fn = std::function<std::vector<std::string>(const std::string&, bool)>;

  explicit test_dns_server(answer_fn answer) : answer_(std::move(answer)) {
    for (int attempt = 0; attempt < 20 && port_ == 0; ++attempt) {
      udp_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      REQUIRE(::bind(udp_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
      socklen_t len = sizeof a;
      ::getsockname(udp_, reinterpret_cast<sockaddr*>(&a), &len);
      tcp_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(tcp_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(tcp_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(tcp_, 8) == 0) {
        port_ = ntohs(a.sin_port);
      } else {
        ::close(udp_);
        ::close(tcp_);
      }
    }
    REQUIRE(port_ != 0);
    REQUIRE(::pipe(stop_) == 0);
    thread_ = std::thread([this] { run(); });
  }
  ~test_dns_server() {
    ::write(stop_[1], "x", 1);
    thread_.join();
    for (int fd : {udp_, tcp_, stop_[0], stop_[1]}) ::close(fd);
  }
  uint16_t port() const { return port_; }
  int udp_queries() const { return udp_count_; }
  int tcp_queries() const { return tcp_count_; }

 private:
  void run() {
    while (true) {
      pollfd fds[3] = {{udp_, POLLIN, 0}, {tcp_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(fds, 3, -1) <= 0 || fds[2].revents) return;
      if (fds[0].revents) serve_udp();
      if (fds[1].revents) serve_tcp();
    }
  }
  void serve_udp() {
    char buf[4096];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(udp_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) return;
    ++udp_count_;
    for (const auto& r : answer_(std::string(buf, static_cast<size_t>(n)), false))
      ::sendto(udp_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
  void serve_tcp() {
    int c = ::accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    ++tcp_count_;
    unsigned char len_buf[2];
    if (::recv(c, len_buf, 2, MSG_WAITALL) == 2) {
      std::string q((len_buf[0] << 8) | len_buf[1], '\0');
      if (::recv(c, q.data(), q.size(), MSG_WAITALL) == static_cast<ssize_t>(q.size()))
        for (const auto& r : answer_(q, true)) {
          std::string framed;
          put16(framed, static_cast<uint16_t>(r.size()));
          framed += r;
          ::send(c, framed.data(), framed.size(), MSG_NOSIGNAL);
        }
    }
    ::close(c);
  }

  answer_fn answer_;
  int udp_ = -1, tcp_ = -1, stop_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<int> udp_count_{0}, tcp_count_{0};
  std::thread thread_;
};

uint16_t qtype_of(const std::string& q) {
  auto parsed = parse_query(q);
  return parsed ? parsed->q.qtype : 0;
}

}  // namespace

TEST_CASE("a query made by make_query parses back, the name lower-cased without its trailing dot") {
  std::string q = make_query(0xBEEF, "API.OpenAI.com.", dns_type_aaaa);
  auto p = parse_query(q);
  REQUIRE(p);
  CHECK(p->id == 0xBEEF);
  CHECK(p->flags == 0x0100);
  CHECK(p->q.name == "api.openai.com");
  CHECK(p->q.qtype == dns_type_aaaa);
  CHECK(p->q.qclass == dns_class_in);
  CHECK_FALSE(parse_response(q));  // QR=0 is not a response
}

TEST_CASE("make_query refuses names that are not domain names") {
  CHECK(make_query(1, "", 1).empty());
  CHECK(make_query(1, "a..b", 1).empty());
  CHECK(make_query(1, std::string(64, 'a') + ".com", 1).empty());
  CHECK(make_query(1, std::string(300, 'a'), 1).empty());
  CHECK(make_query(1, "sp ace.com", 1).empty());
  CHECK_FALSE(make_query(1, std::string(63, 'a') + ".com", 1).empty());
}

TEST_CASE("parse_query refuses responses and several questions") {
  std::string q = make_query(7, "example.com", dns_type_a);
  CHECK_FALSE(parse_query(reply_to(q, 0, {})));
  std::string two = q;
  two[5] = 2;
  two += q.substr(12);
  CHECK_FALSE(parse_query(two));
}

TEST_CASE("a response yields the CNAME chain from the question and only the addresses of names on it") {
  std::string q = make_query(9, "www.example.com", dns_type_a);
  std::string resp = reply_to(q, 0,
                              {{"www.example.com", dns_type_cname, 300, name_wire("Edge.CDN.net")},
                               {"edge.cdn.net", dns_type_a, 60, ipv4("192.0.2.7")},
                               {"edge.cdn.net", dns_type_aaaa, 30, ipv6("2001:db8::7")},
                               {"evil.example", dns_type_a, 60, ipv4("203.0.113.66")},
                               // owner as a compression pointer to the question name (offset 12)
                               {std::string("\xC0\x0C", 2), dns_type_a, 0x80000000u, ipv4("192.0.2.8"), true}});
  auto r = parse_response(resp);
  REQUIRE(r);
  CHECK(r->id == 9);
  CHECK(r->rcode == 0);
  CHECK_FALSE(r->truncated);
  CHECK(r->names == std::vector<std::string>{"www.example.com", "edge.cdn.net"});
  REQUIRE(r->addresses.size() == 3);
  CHECK(r->addresses[0].addr == "192.0.2.7");
  CHECK(r->addresses[0].ttl == 60);
  CHECK_FALSE(r->addresses[0].v6);
  CHECK(r->addresses[1].addr == "2001:db8::7");
  CHECK(r->addresses[1].v6);
  CHECK(r->addresses[2].addr == "192.0.2.8");
  CHECK(r->addresses[2].ttl == 0);  // a TTL with the top bit set counts as zero (RFC 2181 §8)
}

TEST_CASE("a CNAME chain listed out of order and with a cycle still ends") {
  std::string q = make_query(1, "a.test", dns_type_a);
  auto r = parse_response(reply_to(q, 0,
                                   {{"b.test", dns_type_cname, 1, name_wire("c.test")},
                                    {"c.test", dns_type_cname, 1, name_wire("a.test")},
                                    {"a.test", dns_type_cname, 1, name_wire("b.test")},
                                    {"c.test", dns_type_a, 1, ipv4("198.51.100.1")}}));
  REQUIRE(r);
  CHECK(r->names == std::vector<std::string>{"a.test", "b.test", "c.test"});
  REQUIRE(r->addresses.size() == 1);
}

TEST_CASE("make_error_response keeps id, opcode, RD and the question's bytes, sets QR, RA and the rcode") {
  std::string q = make_query(0x1234, "WwW.ExAmple.COM", dns_type_a);
  std::string r = make_error_response(q, dns_rcode_refused);
  REQUIRE(r.size() == q.size());
  CHECK(r.substr(0, 2) == q.substr(0, 2));
  CHECK(static_cast<uint8_t>(r[2]) == 0x81);  // QR | RD
  CHECK(static_cast<uint8_t>(r[3]) == 0x85);  // RA | REFUSED
  CHECK(r.substr(4, 8) == std::string("\0\1\0\0\0\0\0\0", 8));
  CHECK(r.substr(12) == q.substr(12));  // 0x20 case randomization survives
  auto p = parse_response(make_error_response(q, dns_rcode_nxdomain));
  REQUIRE(p);
  CHECK(p->rcode == 3);
  CHECK(p->names == std::vector<std::string>{"www.example.com"});
  CHECK(p->addresses.empty());

  std::string no_rd = q;
  no_rd[2] = 0;
  CHECK(static_cast<uint8_t>(make_error_response(no_rd, 5)[2]) == 0x80);
  CHECK(make_error_response("garbage", 5).empty());
  CHECK(make_error_response(r, 5).empty());  // a response is not a query
}

TEST_CASE("hostile packets: truncation, pointer loops, forward pointers, odd labels, garbage") {
  std::string q = make_query(3, "www.example.com", dns_type_a);
  std::string resp = reply_to(q, 0, {{"www.example.com", dns_type_cname, 1, name_wire("x.example.com")},
                                     {"x.example.com", dns_type_a, 1, ipv4("192.0.2.1")}});
  REQUIRE(parse_response(resp));
  for (size_t n = 0; n < resp.size(); ++n) {
    CHECK_FALSE(parse_response(resp.substr(0, n)));  // not flagged TC: a cut answer is refused
    (void)parse_query(resp.substr(0, n));
    (void)make_error_response(resp.substr(0, n), 3);
  }
  for (size_t n = 0; n < q.size(); ++n) CHECK_FALSE(parse_query(q.substr(0, n)));

  std::string header("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  CHECK_FALSE(parse_query(header + std::string("\xC0\x0C\x00\x01\x00\x01", 6)));             // points at itself
  CHECK_FALSE(parse_query(header + std::string("\xC0\x0E\x00\x01\x00\x01\x00", 7)));         // points forward
  CHECK_FALSE(parse_query(header + std::string("\xC0\x02\x00\x01\x00\x01", 6)));             // into the header
  CHECK_FALSE(parse_query(header + std::string("\x01" "a\xC0\x0C\x00\x01\x00\x01", 8)));     // loops to its own start
  CHECK_FALSE(parse_query(header + std::string("\x03" "a.b\x00\x00\x01\x00\x01", 9)));       // '.' inside a label
  CHECK_FALSE(parse_query(header + std::string("\x03" "a\0b\x00\x00\x01\x00\x01", 9)));      // NUL inside a label
  CHECK_FALSE(parse_query(header + std::string("\x41" "a\x00\x00\x01\x00\x01", 7)));         // extended label type
  CHECK_FALSE(parse_query(header + std::string("\x3f", 1)));                                 // label runs off the end

  // Names over 255 bytes: spelled out in a question, or built in answers whose owners point back at
  // the previous owner (each adds 64 bytes).
  std::string label63 = std::string("\x3f") + std::string(63, 'a');
  CHECK_FALSE(parse_query(header + label63 + label63 + label63 + label63 + std::string("\x00\x00\x01\x00\x01", 5)));
  CHECK(parse_query(header + label63 + label63 + label63 + std::string("\x3d") + std::string(61, 'a') +
                    std::string("\x00\x00\x01\x00\x01", 5)));  // exactly 255 bytes
  std::string chained = reply_to(make_query(3, "q.test", dns_type_a), 0, {});
  size_t prev = 12;
  for (int i = 0; i < 4; ++i) {
    size_t here = chained.size();
    chained += label63;
    chained += static_cast<char>(0xC0 | (prev >> 8));
    chained += static_cast<char>(prev & 0xff);
    chained += std::string("\x00\x01\x00\x01\x00\x00\x00\x01\x00\x04\xc0\x00\x02\x01", 14);
    prev = here;
    chained[7] = static_cast<char>(i + 1);  // ancount
    if (i < 3) CHECK(parse_response(chained));
  }
  CHECK_FALSE(parse_response(chained));

  std::mt19937 rng(1035);
  for (int i = 0; i < 20000; ++i) {
    std::string g(rng() % 80, '\0');
    for (auto& c : g) c = static_cast<char>(rng());
    if (g.size() > 12 && (i & 1)) g.replace(0, 12, header);  // past the header more often
    if (i % 3 == 0 && g.size() > 3) g[2] = static_cast<char>(g[2] | 0x80);
    (void)parse_query(g);
    (void)parse_response(g);
    (void)make_error_response(g, 3);
  }
  std::string flipped = resp;
  for (size_t i = 0; i < flipped.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      (void)parse_response(flipped);
      flipped[i] = resp[i];
    }
}

TEST_CASE("a truncated (TC) response keeps the records that parsed") {
  std::string q = make_query(3, "t.example", dns_type_a);
  std::string resp = reply_to(q, 0, {{"t.example", dns_type_a, 5, ipv4("192.0.2.1")},
                                     {"t.example", dns_type_a, 5, ipv4("192.0.2.2")}},
                              true);
  auto r = parse_response(resp.substr(0, resp.size() - 3));
  REQUIRE(r);
  CHECK(r->truncated);
  REQUIRE(r->addresses.size() == 1);
  CHECK(r->addresses[0].addr == "192.0.2.1");
}

TEST_CASE("exchange answers over UDP and ignores a reply with another id") {
  test_dns_server server([](const std::string& q, bool) {
    return std::vector<std::string>{reply_to(q, 0, {{"a.test", dns_type_a, 9, ipv4("192.0.2.3")}}, false, 1),
                                    reply_to(q, 0, {{"a.test", dns_type_a, 9, ipv4("192.0.2.4")}})};
  });
  auto reply = exchange("127.0.0.1", server.port(), make_query(42, "a.test", dns_type_a), 2000);
  REQUIRE(reply);
  auto r = parse_response(*reply);
  REQUIRE(r);
  CHECK(r->id == 42);
  REQUIRE(r->addresses.size() == 1);
  CHECK(r->addresses[0].addr == "192.0.2.4");
  CHECK(server.tcp_queries() == 0);
}

TEST_CASE("exchange repeats a truncated UDP answer over TCP") {
  test_dns_server server([](const std::string& q, bool tcp) {
    if (!tcp) return std::vector<std::string>{reply_to(q, 0, {}, true)};
    std::vector<rr> many;
    for (int i = 0; i < 40; ++i)
      many.push_back({"big.test", dns_type_a, 7, ipv4(("198.51.100." + std::to_string(i)).c_str())});
    return std::vector<std::string>{reply_to(q, 0, many)};
  });
  auto reply = exchange("127.0.0.1", server.port(), make_query(5, "big.test", dns_type_a), 2000);
  REQUIRE(reply);
  auto r = parse_response(*reply);
  REQUIRE(r);
  CHECK_FALSE(r->truncated);
  CHECK(r->addresses.size() == 40);
  CHECK(server.udp_queries() == 1);
  CHECK(server.tcp_queries() == 1);
}

TEST_CASE("exchange times out on a silent server and refuses bad input") {
  test_dns_server server([](const std::string&, bool) { return std::vector<std::string>{}; });
  auto t0 = std::chrono::steady_clock::now();
  auto reply = exchange("127.0.0.1", server.port(), make_query(5, "slow.test", dns_type_a), 200);
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(reply);
  CHECK(reply.err().code == errc::timeout);
  CHECK(took >= std::chrono::milliseconds(190));
  CHECK(took < std::chrono::seconds(2));
  CHECK(exchange("not-an-ip", 53, make_query(1, "a.test", 1), 100).err().code == errc::bad_request);
  CHECK(exchange("127.0.0.1", server.port(), "junk", 100).err().code == errc::bad_request);
}

TEST_CASE("resolve gathers A and AAAA, skips a server that refuses, and says not_found for NXDOMAIN or nothing") {
  test_dns_server server([](const std::string& q, bool) {
    auto p = parse_query(q);
    if (!p) return std::vector<std::string>{};
    if (p->q.name == "gone.test") return std::vector<std::string>{reply_to(q, dns_rcode_nxdomain, {})};
    if (p->q.name == "empty.test") return std::vector<std::string>{reply_to(q, 0, {})};
    if (p->q.name == "broken.test") return std::vector<std::string>{reply_to(q, 2, {})};
    if (qtype_of(q) == dns_type_a) return std::vector<std::string>{reply_to(q, 0, {{p->q.name, dns_type_a, 30, ipv4("192.0.2.10")}})};
    return std::vector<std::string>{reply_to(q, 0, {{p->q.name, dns_type_aaaa, 40, ipv6("2001:db8::10")}})};
  });
  // 127.0.0.2 has no listener on that port: the kernel refuses, and resolve moves on.
  auto found = resolve({"127.0.0.2", "127.0.0.1"}, server.port(), "ok.test", 1000);
  REQUIRE(found);
  REQUIRE(found->size() == 2);
  CHECK((*found)[0].addr == "192.0.2.10");
  CHECK((*found)[1].addr == "2001:db8::10");
  CHECK((*found)[1].v6);

  CHECK(resolve({"127.0.0.1"}, server.port(), "gone.test", 1000).err().code == errc::not_found);
  CHECK(resolve({"127.0.0.1"}, server.port(), "empty.test", 1000).err().code == errc::not_found);
  CHECK(resolve({"127.0.0.1"}, server.port(), "broken.test", 1000).err().code == errc::bad_gateway);
  CHECK(resolve({}, server.port(), "ok.test", 1000).err().code == errc::unavailable);
  CHECK(resolve({"127.0.0.1"}, server.port(), "bad..name", 1000).err().code == errc::bad_request);
}
