// Tests net/egress/http_head.cpp: request-head parsing (strict, hostile input) and the upstream head
// with placeholders replaced in header values only and Connection: close forced.
#include <catch2/catch_test_macros.hpp>

#include <random>

#include "net/egress/http_head.hpp"

using namespace warren::net::egress;

namespace {

std::optional<http_request_head> parse(std::string_view bytes) {
  bool need_more = true;
  size_t head_len = 0;
  auto h = parse_request_head(bytes, need_more, head_len);
  CHECK_FALSE(need_more);
  return h;
}

std::string render(const http_request_head& h, int& replaced) {
  return render_request_head(h, {{"WARREN_PH_1", "sk-secret-1"}, {"WARREN_PH_2", "tok2"}}, replaced);
}

}  // namespace

TEST_CASE("a request head parses with its headers, Host lower-cased and without port") {
  std::string req = "POST /v1/chat?x=1 HTTP/1.1\r\nHost: API.OpenAI.com:443\r\nAuthorization:  Bearer x \r\n"
                    "Content-Length: 2\r\n\r\n{}";
  bool need_more = true;
  size_t head_len = 0;
  auto h = parse_request_head(req, need_more, head_len);
  REQUIRE(h);
  CHECK_FALSE(need_more);
  CHECK(head_len == req.size() - 2);
  CHECK(h->method == "POST");
  CHECK(h->target == "/v1/chat?x=1");
  CHECK(h->version == "HTTP/1.1");
  CHECK(h->host == "api.openai.com");
  REQUIRE(h->headers.size() == 3);
  CHECK(h->headers[1].first == "Authorization");
  CHECK(h->headers[1].second == "Bearer x");
}

TEST_CASE("Host forms: IPv6 literal, trailing dot, absolute-form target") {
  CHECK(parse("GET / HTTP/1.1\r\nHost: [2001:DB8::1]:8080\r\n\r\n")->host == "2001:db8::1");
  CHECK(parse("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n")->host == "::1");
  CHECK(parse("GET / HTTP/1.1\r\nHost: example.com.\r\n\r\n")->host == "example.com");
  CHECK(parse("GET http://Example.com:80/x HTTP/1.1\r\nHost: example.com\r\n\r\n")->host == "example.com");
  CHECK(parse("GET http://example.com/x HTTP/1.0\r\n\r\n")->host == "example.com");
  CHECK(parse("GET / HTTP/1.0\r\n\r\n")->host.empty());
  CHECK_FALSE(parse("GET http://example.com/ HTTP/1.1\r\nHost: evil.example\r\n\r\n"));  // target and Host disagree
  CHECK_FALSE(parse("GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\n\r\n"));  // HTTP/1.1 needs Host
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\r\nHost: b.com\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: ::1\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com:\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com:80x\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a b.com\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: \r\n\r\n"));
}

TEST_CASE("an incomplete head asks for more; one over 64 KiB is refused") {
  std::string req = "GET / HTTP/1.1\r\nHost: a.com\r\nX-Long: " + std::string(100, 'v') + "\r\n\r\n";
  for (size_t n = 0; n < req.size(); ++n) {
    bool need_more = false;
    size_t head_len = 7;
    CHECK_FALSE(parse_request_head(req.substr(0, n), need_more, head_len));
    CHECK(need_more);
    CHECK(head_len == 0);
  }
  std::string huge = "GET / HTTP/1.1\r\nHost: a.com\r\nX-Big: " + std::string(request_head_max_bytes, 'v');
  bool need_more = true;
  size_t head_len = 0;
  CHECK_FALSE(parse_request_head(huge, need_more, head_len));
  CHECK_FALSE(need_more);
  CHECK_FALSE(parse_request_head(huge + "\r\n\r\n", need_more, head_len));
  CHECK_FALSE(need_more);
}

TEST_CASE("obs-fold, bare LF, lone CR, space before colon, control bytes and smuggling framing are refused") {
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\r\nX-A: one\r\n two\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\r\nX-A: one\r\n\ttwo\r\n\r\n"));
  // Bare LF is refused as soon as it is seen, complete head or not (never "need more").
  CHECK_FALSE(parse("GET / HTTP/1.1\nHost: a.com\n\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\nX: y\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\rX: y\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost : a.com\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\r\nX-A: a\x01" "b\r\n\r\n"));
  const char with_nul[] = "GET / HTTP/1.1\r\nHost: a.com\r\nX-A: a\0b\r\n\r\n";
  CHECK_FALSE(parse(std::string(with_nul, sizeof with_nul - 1)));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\r\n: empty-name\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: a.com\r\nno-colon\r\n\r\n"));
}

TEST_CASE("request lines other than METHOD SP target SP HTTP/1.x are refused") {
  CHECK_FALSE(parse("GET  / HTTP/1.1\r\nHost: a.com\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/2.0\r\nHost: a.com\r\n\r\n"));
  CHECK_FALSE(parse("GET /\r\nHost: a.com\r\n\r\n"));
  CHECK_FALSE(parse("G(T / HTTP/1.1\r\nHost: a.com\r\n\r\n"));
  CHECK_FALSE(parse("GET / HTTP/1.1 x\r\nHost: a.com\r\n\r\n"));
  CHECK_FALSE(parse("GET /\x7f HTTP/1.1\r\nHost: a.com\r\n\r\n"));
  CHECK_FALSE(parse("\r\nGET / HTTP/1.1\r\nHost: a.com\r\n\r\n"));
  CHECK_FALSE(parse("\r\n\r\n"));
}

TEST_CASE("hostile heads: garbage and bit flips never crash") {
  std::string req = "GET /x HTTP/1.1\r\nHost: [::1]:80\r\nConnection: a, b\r\nA: 1\r\n\r\n";
  std::mt19937 rng(9112);
  for (int i = 0; i < 20000; ++i) {
    std::string g = req;
    for (int k = 0; k < 3; ++k) g[rng() % g.size()] = static_cast<char>(rng());
    bool need_more = false;
    size_t head_len = 0;
    auto h = parse_request_head(g, need_more, head_len);
    if (h) {
      CHECK(head_len <= g.size());
      int replaced = 0;
      (void)render(*h, replaced);
    }
  }
}

TEST_CASE("a placeholder in Authorization is replaced by its secret; every occurrence, each counted") {
  auto h = parse("POST /v1 HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer WARREN_PH_1\r\n"
                 "X-Both: WARREN_PH_2/WARREN_PH_1/WARREN_PH_2\r\n\r\n");
  REQUIRE(h);
  int replaced = -1;
  std::string out = render(*h, replaced);
  CHECK(replaced == 4);
  CHECK(out == "POST /v1 HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer sk-secret-1\r\n"
               "X-Both: tok2/sk-secret-1/tok2\r\nConnection: close\r\n\r\n");
}

TEST_CASE("a placeholder in the target or query string is NOT replaced") {
  auto h = parse("GET /steal?key=WARREN_PH_1 HTTP/1.1\r\nHost: api.openai.com\r\n\r\n");
  REQUIRE(h);
  int replaced = -1;
  std::string out = render(*h, replaced);
  CHECK(replaced == 0);
  CHECK(out.find("sk-secret-1") == std::string::npos);
  CHECK(out.rfind("GET /steal?key=WARREN_PH_1 HTTP/1.1\r\n", 0) == 0);
}

TEST_CASE("a placeholder in a header name is not replaced; a secret is never rescanned or injected") {
  auto h = parse("GET / HTTP/1.1\r\nHost: a.com\r\nWARREN_PH_1: v\r\nX: WARREN_PH_3\r\nY: WARREN_PH_4\r\n\r\n");
  REQUIRE(h);
  int replaced = -1;
  std::string out = render_request_head(
      *h, {{"WARREN_PH_3", "WARREN_PH_4"}, {"WARREN_PH_4", "x\r\nEvil: 1"}, {"", "empty"}}, replaced);
  CHECK(replaced == 1);
  CHECK(out.find("WARREN_PH_1: v\r\n") != std::string::npos);
  CHECK(out.find("X: WARREN_PH_4\r\n") != std::string::npos);  // substituted once, not again
  CHECK(out.find("Y: WARREN_PH_4\r\n") != std::string::npos);  // a CR/LF secret is never sent
  CHECK(out.find("Evil") == std::string::npos);
}

TEST_CASE("Connection: close is forced and hop-by-hop headers, including those Connection names, dropped") {
  auto h = parse("GET / HTTP/1.1\r\nHost: a.com\r\nConnection: keep-alive, X-Hop ,Upgrade\r\nKeep-Alive: 5\r\n"
                 "Proxy-Connection: keep-alive\r\nx-hop: 1\r\nUpgrade: websocket\r\nX-Stay: 2\r\n\r\n");
  REQUIRE(h);
  int replaced = -1;
  CHECK(render(*h, replaced) == "GET / HTTP/1.1\r\nHost: a.com\r\nX-Stay: 2\r\nConnection: close\r\n\r\n");
  CHECK(replaced == 0);
}
