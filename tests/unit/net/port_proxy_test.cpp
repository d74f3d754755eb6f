// Tests the pure parts of the port proxy (net/port_proxy.hpp, net/port_proxy_parse.hpp): routing
// by Host, the browser_url `next` check (no open redirect), header list tokens and the
// hop-by-hop set, and the incremental upstream response parser — with truncated, oversized and
// garbage input.
#include <catch2/catch_test_macros.hpp>

#include <random>
#include <string>
#include <vector>

#include "net/port_proxy.hpp"
#include "net/port_proxy_parse.hpp"

using namespace warren;
using namespace warren::net;
using namespace warren::net::proxy_detail;

namespace {

const std::string id = "0123456789abcdef";
const std::string domain = "localhost:7070";

// ---- route_port_host ---------------------------------------------------------------------------

TEST_CASE("route: <port>-<id> host with and without the domain's port") {
  for (std::string host : {"8000-" + id + ".localhost:7070", "8000-" + id + ".localhost"}) {
    auto r = route_port_host(host, "/a/b?x=1&y=%2F", domain);
    REQUIRE(r.has_value());
    REQUIRE(r->has_value());
    CHECK((*r)->sandbox_id == id);
    CHECK((*r)->port == 8000);
    CHECK((*r)->prefix.empty());
    CHECK((*r)->target == "/a/b?x=1&y=%2F");  // path and query verbatim
  }
  // A domain configured without a port matches a Host that carries one.
  auto r = route_port_host("5173-" + id + ".sb.example.com:443", "/", "sb.example.com");
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->port == 5173);
}

TEST_CASE("route: Host and domain are case-insensitive; the id comes out lower-case") {
  auto r = route_port_host("8000-0123456789ABCDEF.LocalHost:7070", "/", domain);
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->sandbox_id == id);
  auto r2 = route_port_host("RUN0123456789ABCDEF.LOCALHOST:7070", "/sb/p/80/", "LocalHost:7070");
  REQUIRE(r2.has_value());
  REQUIRE(r2->has_value());
  CHECK((*r2)->sandbox_id == id);
  CHECK((*r2)->port == 80);
}

TEST_CASE("route: an empty target becomes /") {
  auto r = route_port_host("8000-" + id + ".localhost:7070", "", domain);
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->target == "/");
}

TEST_CASE("route: run<id> host maps /sb/p/<port>/<rest>?<query>") {
  auto host = "run" + id + ".localhost:7070";
  struct c { std::string in, port_target; uint16_t port; };
  for (auto [in, want, port] : std::vector<c>{{"/sb/p/8000/", "/", 8000},
                                              {"/sb/p/8000", "/", 8000},
                                              {"/sb/p/8000?q=1", "/?q=1", 8000},
                                              {"/sb/p/8000/a/b?q=1/2", "/a/b?q=1/2", 8000},
                                              {"/sb/p/1/x", "/x", 1},
                                              {"/sb/p/65535//evil", "//evil", 65535}}) {
    auto r = route_port_host(host, in, domain);
    REQUIRE(r.has_value());
    REQUIRE(r->has_value());
    CHECK((*r)->port == port);
    CHECK((*r)->prefix == "/sb/p/" + std::to_string(port));
    CHECK((*r)->target == want);
  }
}

TEST_CASE("route: run<id> host with a bad path is a port host but an error (404)") {
  auto host = "run" + id + ".localhost:7070";
  for (std::string t : {"/", "", "/sb/p/", "/sb/p//x", "/sb/p/0/", "/sb/p/65536/", "/sb/p/123456/",
                        "/sb/p/-1/", "/sb/p/8o/", "/sb/p/ 80/", "/SB/P/80/", "/sb/x/80/", "sb/p/80/"}) {
    auto r = route_port_host(host, t, domain);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->has_value());
    if (!r->has_value()) CHECK(r->err().code == errc::not_found);
  }
}

TEST_CASE("route: a <port>-<id> label with a bad port is an error, not the API") {
  for (std::string p : {"0", "65536", "99999", "123456", "00000000000000000080"}) {
    auto r = route_port_host(p + "-" + id + ".localhost:7070", "/", domain);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->has_value());
  }
  auto lead0 = route_port_host("080-" + id + ".localhost:7070", "/", domain);
  REQUIRE(lead0.has_value());
  REQUIRE(lead0->has_value());
  CHECK((*lead0)->port == 80);
}

TEST_CASE("route: hosts that are not port hosts go to the API (nullopt)") {
  std::vector<std::string> hosts = {
      "",
      ":",
      "localhost:7070",
      "localhost",
      "127.0.0.1:7070",
      "[::1]:7070",
      ".localhost:7070",
      "8000-" + id.substr(0, 15) + ".localhost:7070",    // id one short
      "8000-" + id + "0.localhost:7070",                 // id one long
      "8000-0123456789abcdeg.localhost:7070",            // not hex
      "8000-" + id + "localhost:7070",                   // no dot before the domain
      "8000-" + id + ".evil.com",                        // another domain
      "8000-" + id + ".localhost.evil.com:7070",         // domain as a prefix
      "x.8000-" + id + ".localhost:7070",                // nested label
      "8000_" + id + ".localhost:7070",                  // wrong separator
      "-" + id + ".localhost:7070",                      // no port
      "abc-" + id + ".localhost:7070",                   // port not digits
      "+80-" + id + ".localhost:7070",
      "run" + id.substr(0, 15) + ".localhost:7070",      // run + short id
      "run" + id + "0.localhost:7070",                   // run + long id
      "run-" + id + ".localhost:7070",
      id + ".localhost:7070",                            // bare id
  };
  for (auto& h : hosts) {
    INFO(h);
    CHECK_FALSE(route_port_host(h, "/sb/p/80/", domain).has_value());
  }
  CHECK_FALSE(route_port_host("8000-" + id + ".localhost:7070", "/", "").has_value());
}

TEST_CASE("route: garbage hosts and targets never throw") {
  std::mt19937 rng(1234);
  const std::string alphabet = std::string("0123456789abcdefrun-.:/[]?%\\ \t\r\n\x7f\xff") + '\0';
  for (int i = 0; i < 20000; ++i) {
    std::string h, t;
    auto hn = rng() % 40, tn = rng() % 20;
    for (unsigned k = 0; k < hn; ++k) h += alphabet[rng() % alphabet.size()];
    for (unsigned k = 0; k < tn; ++k) t += alphabet[rng() % alphabet.size()];
    if (i % 3 == 0) h += ".localhost:7070";
    if (i % 5 == 0) h = "run" + id + ".localhost:7070", t = "/sb/p/" + t;
    CHECK_NOTHROW(route_port_host(h, t, domain));
  }
}

// ---- is_local_redirect -------------------------------------------------------------------------

TEST_CASE("next: paths on the same host are allowed") {
  for (std::string n : {"/", "/app", "/app/?x=1&y=2#frag", "/a//b", "/%2F%2Fevil.com", "/.", "/?next=//evil",
                        "/a:b", "/\xc3\xa9"})
    CHECK(is_local_redirect(n));
  CHECK(is_local_redirect("/" + std::string(2047, 'a')));  // 2048 bytes
}

TEST_CASE("next: anything a browser could read as another origin is refused") {
  for (const std::string& n : std::vector<std::string>{"", "//evil.com", "//evil.com/x", "/\\evil.com", "\\\\evil.com", "\\/evil.com",
                        "http://evil.com", "https://evil.com/", "http:", "http:/evil", "javascript:alert(1)",
                        "data:text/html,x", "evil.com", "evil.com/x", " /x", "./x", "../x", "%2F%2Fevil.com",
                        "/\t/evil.com", "\t//evil.com", "/\n/evil.com", "/\r\nSet-Cookie: a=b", "/a b",
                        "/a\\b", "/\x7f", std::string("/\0evil", 6), "/\x01"})
    CHECK_FALSE(is_local_redirect(n));
  CHECK_FALSE(is_local_redirect("/" + std::string(2048, 'a')));  // oversized
}

// ---- headers -----------------------------------------------------------------------------------

TEST_CASE("header list tokens are trimmed, lower-cased, empty items dropped") {
  CHECK(tokens("Keep-Alive, X-Foo ,,\tUpgrade\t") == std::vector<std::string>{"keep-alive", "x-foo", "upgrade"});
  CHECK(tokens("").empty());
  CHECK(tokens(",, ,\t,").empty());
  CHECK(tokens("close") == std::vector<std::string>{"close"});
  CHECK(tokens("a,b,") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("hop-by-hop fields (RFC 9110 7.6.1) are dropped, end-to-end ones kept") {
  for (auto n : {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
                 "trailer", "transfer-encoding", "upgrade", "Connection", "Keep-Alive", "TE", "Transfer-Encoding"})
    CHECK(hop_by_hop(n));
  for (auto n : {"host", "content-length", "content-type", "cookie", "set-cookie", "authorization",
                 "x-forwarded-for", "sec-websocket-key", "trailers", "", "connectio", "connection "})
    CHECK_FALSE(hop_by_hop(n));
}

TEST_CASE("public URLs and the exposure cookie name") {
  public_urls u;
  u.domain = "localhost:7070";
  CHECK(u.host(id, 5173) == "5173-" + id + ".localhost:7070");
  CHECK(u.port_url(id, 5173) == "http://5173-" + id + ".localhost:7070/");
  CHECK(u.run_url(id, 8000) == "http://run" + id + ".localhost:7070/sb/p/8000/");
  // what the proxy builds, it routes back
  auto r = route_port_host(u.host(id, 5173), "/", u.domain);
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->port == 5173);
  CHECK(exposure_cookie_name(5173) == "warren_token_5173");
}

// ---- the response parser -----------------------------------------------------------------------

struct collect : response_sink {
  int heads = 0, dones = 0;
  std::string body;
  void on_head() override { ++heads; }
  void on_body(std::string_view d) override { body.append(d); }
  void on_done() override { ++dones; }
};

// Feeds `pieces` like the proxy does: bytes the parser did not take are carried to the next put.
// Returns the first error (need_more is not one).
boost::beast::error_code feed(response_parser& p, const std::vector<std::string>& pieces, bool eof = false) {
  std::string carry;
  for (auto& piece : pieces) {
    carry += piece;
    size_t used = 0;
    while (used < carry.size() && !p.is_done()) {
      boost::beast::error_code ec;
      used += p.put(boost::asio::buffer(carry.data() + used, carry.size() - used), ec);
      if (ec == boost::beast::http::error::need_more) break;
      if (ec) return ec;
    }
    carry.erase(0, used);
  }
  boost::beast::error_code ec;
  if (eof && !p.is_done()) p.put_eof(ec);
  return ec;
}

std::vector<std::string> bytewise(const std::string& s) {
  std::vector<std::string> out;
  for (char c : s) out.emplace_back(1, c);
  return out;
}

const std::string chunked =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
    "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";

TEST_CASE("parser: a Content-Length response, whole or one byte at a time") {
  const std::string msg = "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Y: z\r\n\r\nhello";
  for (auto pieces : {std::vector<std::string>{msg}, bytewise(msg)}) {
    collect s;
    response_parser p(s, false);
    CHECK_FALSE(feed(p, pieces));
    CHECK(p.is_done());
    CHECK(p.status == 201);
    CHECK(p.reason == "Created");
    CHECK(p.fields.size() == 2);
    CHECK(s.heads == 1);
    CHECK(s.dones == 1);
    CHECK(s.body == "hello");
  }
}

TEST_CASE("parser: chunked bodies are de-chunked at any split; repeated fields kept in order") {
  for (size_t split = 0; split <= chunked.size(); ++split) {
    collect s;
    response_parser p(s, false);
    CHECK_FALSE(feed(p, {chunked.substr(0, split), chunked.substr(split)}));
    CHECK(p.is_done());
    CHECK(s.body == "hello 0123456789");
    CHECK(s.dones == 1);
  }
  collect s;
  response_parser p(s, false);
  CHECK_FALSE(feed(p, bytewise(chunked)));
  REQUIRE(p.fields.size() == 5);  // trailer fields are appended after on_head (the proxy has sent the head)
  CHECK(p.fields[2] == std::pair<std::string, std::string>{"Set-Cookie", "a=1"});
  CHECK(p.fields[3] == std::pair<std::string, std::string>{"Set-Cookie", "b=2"});
}

TEST_CASE("parser: truncated responses are never complete") {
  const std::string msg = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
  // from 1: the proxy calls put_eof only after the server sent something (got_some())
  for (size_t cut = 1; cut < msg.size(); ++cut) {
    collect s;
    response_parser p(s, false);
    INFO(cut);
    auto ec = feed(p, {msg.substr(0, cut)}, true);
    CHECK_FALSE(p.is_done());
    CHECK(s.dones == 0);
    CHECK(ec);  // EOF mid-message is an error (partial_message)
  }
  for (size_t cut = 1; cut < chunked.size(); ++cut) {
    collect s;
    response_parser p(s, false);
    CHECK(feed(p, {chunked.substr(0, cut)}, true));
    CHECK(s.dones == 0);
  }
}

TEST_CASE("parser: a close-delimited body ends at EOF") {
  collect s;
  response_parser p(s, false);
  CHECK_FALSE(feed(p, {"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome ", "bytes"}, true));
  CHECK(p.is_done());
  CHECK(s.body == "some bytes");
}

TEST_CASE("parser: HEAD, 204 and 304 responses have no body whatever their headers say") {
  {
    collect s;
    response_parser p(s, true);
    CHECK_FALSE(feed(p, {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"}));
    CHECK(p.is_done());
    CHECK(s.body.empty());
  }
  for (std::string st : {"204 No Content", "304 Not Modified"}) {
    collect s;
    response_parser p(s, false);
    CHECK_FALSE(feed(p, {"HTTP/1.1 " + st + "\r\nX: y\r\n\r\n"}));
    CHECK(p.is_done());
    CHECK(s.dones == 1);
  }
}

TEST_CASE("parser: interim 100/103 responses complete on their own (the proxy starts a new parser)") {
  collect s;
  response_parser p(s, false);
  CHECK_FALSE(feed(p, {"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n"}));
  CHECK(p.is_done());
  CHECK(p.status == 103);
}

TEST_CASE("parser: a 101 upgrade completes at the end of its head") {
  collect s;
  response_parser p(s, false);
  CHECK_FALSE(feed(p, {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"}));
  CHECK(p.status == 101);
  CHECK(p.is_done());
  CHECK(p.upgrade());
}

TEST_CASE("parser: the body is not capped (a huge Content-Length streams)") {
  collect s;
  response_parser p(s, false);
  CHECK_FALSE(feed(p, {"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n", std::string(1 << 20, 'x')}));
  CHECK_FALSE(p.is_done());
  CHECK(s.body.size() == (1u << 20));
}

TEST_CASE("parser: oversized heads are refused") {
  collect s;
  response_parser p(s, false);
  std::string big = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n";
  CHECK(feed(p, {big.substr(0, 30000), big.substr(30000)}));
  CHECK(s.heads == 0);
  collect s2;
  response_parser p2(s2, false);
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 9000; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  CHECK(feed(p2, {many + "\r\n"}));
  CHECK(s2.heads == 0);
}

TEST_CASE("parser: garbage is an error, not a response") {
  for (const std::string& g : std::vector<std::string>{"HELLO WORLD\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n",
                        "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/9.9 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
                        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                        std::string("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)}) {
    INFO(std::to_string(g.size()) + ": " + g);
    collect s;
    response_parser p(s, false);
    CHECK(feed(p, {g}, true));  // an error at once, or at the latest when the server closes
    CHECK(s.dones == 0);
  }
}

TEST_CASE("parser: random garbage never crashes or completes a body it did not see") {
  std::mt19937 rng(99);
  for (int i = 0; i < 5000; ++i) {
    std::string g = i % 2 ? "HTTP/1.1 200 OK\r\n" : "";
    auto n = rng() % 200;
    for (unsigned k = 0; k < n; ++k) g += static_cast<char>(rng() % 256);
    collect s;
    response_parser p(s, false);
    CHECK_NOTHROW(feed(p, {g}, true));
  }
}

}  // namespace
