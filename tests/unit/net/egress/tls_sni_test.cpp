// Tests net/egress/tls_sni.cpp with a real ClientHello (OpenSSL's, captured from a memory BIO), the
// same split over records and delivered in pieces, and hostile inputs.
#include <catch2/catch_test_macros.hpp>

#include <openssl/ssl.h>

#include <random>
#include <string>

#include "net/egress/tls_sni.hpp"

using namespace warren::net::egress;

namespace {

// The first flight of a TLS client (a ClientHello in one record) asking for sni (none if empty).
std::string client_hello(const std::string& sni) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  REQUIRE(ctx);
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_connect_state(ssl);
  if (!sni.empty()) REQUIRE(SSL_set_tlsext_host_name(ssl, sni.c_str()) == 1);
  CHECK(SSL_do_handshake(ssl) <= 0);  // waits for the server: the ClientHello is in wbio
  char* data = nullptr;
  long len = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<size_t>(len));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

// The same handshake message re-framed as records of at most `chunk` bytes each.
std::string split_records(const std::string& one_record, size_t chunk) {
  std::string body = one_record.substr(5), out;
  for (size_t i = 0; i < body.size(); i += chunk) {
    std::string part = body.substr(i, chunk);
    out += one_record.substr(0, 3);
    out += static_cast<char>(part.size() >> 8);
    out += static_cast<char>(part.size() & 0xff);
    out += part;
  }
  return out;
}

}  // namespace

TEST_CASE("the SNI of a real ClientHello, lower-cased") {
  std::string hello = client_hello("API.OpenAI.com");
  REQUIRE(hello.size() > 100);
  bool need_more = true;
  auto sni = parse_client_hello_sni(hello, need_more);
  REQUIRE(sni);
  CHECK(*sni == "api.openai.com");
  CHECK_FALSE(need_more);
}

TEST_CASE("a ClientHello without SNI gives nullopt and needs nothing more") {
  bool need_more = true;
  CHECK_FALSE(parse_client_hello_sni(client_hello(""), need_more));
  CHECK_FALSE(need_more);
}

TEST_CASE("a ClientHello split over several records, and arriving byte by byte") {
  std::string hello = client_hello("api.example.com");
  for (size_t chunk : {1u, 3u, 50u, 200u}) {
    std::string split = split_records(hello, chunk);
    bool need_more = false;
    auto sni = parse_client_hello_sni(split, need_more);
    REQUIRE(sni);
    CHECK(*sni == "api.example.com");
  }
  std::string split = split_records(hello, 100);
  for (size_t n = 0; n < split.size(); ++n) {
    bool need_more = false;
    CHECK_FALSE(parse_client_hello_sni(split.substr(0, n), need_more));
    CHECK(need_more);
  }
}

TEST_CASE("not TLS, not a ClientHello, or oversized: nullopt and no more reading") {
  bool need_more = true;
  CHECK_FALSE(parse_client_hello_sni("GET / HTTP/1.1\r\n", need_more));
  CHECK_FALSE(need_more);
  need_more = true;
  CHECK_FALSE(parse_client_hello_sni("G", need_more));
  CHECK_FALSE(need_more);
  need_more = true;
  CHECK_FALSE(parse_client_hello_sni(std::string("\x16\x02", 2), need_more));  // record version 2.x
  CHECK_FALSE(need_more);

  std::string hello = client_hello("a.test");
  std::string server_hello = hello;
  server_hello[5] = 0x02;  // handshake type ServerHello
  need_more = true;
  CHECK_FALSE(parse_client_hello_sni(server_hello, need_more));
  CHECK_FALSE(need_more);

  std::string empty_record("\x16\x03\x01\x00\x00", 5);
  CHECK_FALSE(parse_client_hello_sni(empty_record + hello, need_more));
  CHECK_FALSE(need_more);

  // A handshake claiming 64 KiB: more than the parser will ever buffer.
  std::string huge("\x16\x03\x01\x00\x04\x01\x01\x00\x00", 9);
  CHECK_FALSE(parse_client_hello_sni(huge, need_more));
  CHECK_FALSE(need_more);
  // A 16000-byte ClientHello sent as one-byte records: the records' headers push it past the cap.
  std::string framed = split_records(std::string("\x16\x03\x01\x00\x00\x01\x00\x3e\x80", 9) + std::string(3000, 'x'), 1);
  CHECK_FALSE(parse_client_hello_sni(framed.substr(0, 6 * 100), need_more));
  CHECK(need_more);
  CHECK_FALSE(parse_client_hello_sni(framed, need_more));
  CHECK_FALSE(need_more);
}

TEST_CASE("hostile ClientHellos: every truncation, bit flips, and a name with odd bytes") {
  std::string hello = client_hello("sni.example.org");
  for (size_t n = 0; n < hello.size(); ++n) {
    bool need_more = false;
    CHECK_FALSE(parse_client_hello_sni(hello.substr(0, n), need_more));
    CHECK(need_more);
  }
  std::string flipped = hello;
  for (size_t i = 0; i < flipped.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      bool need_more = false;
      auto sni = parse_client_hello_sni(flipped, need_more);
      if (sni) CHECK(sni->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-._") == std::string::npos);
      flipped[i] = hello[i];
    }
  std::mt19937 rng(6066);
  for (int i = 0; i < 20000; ++i) {
    std::string g(rng() % 300, '\0');
    for (auto& c : g) c = static_cast<char>(rng());
    if (g.size() > 9) g.replace(0, 6, hello.substr(0, 6));
    bool need_more = false;
    (void)parse_client_hello_sni(g, need_more);
  }

  // "evil.com\0api.openai.com" must not pass as either name.
  std::string with_nul = client_hello("evil.com-api.openai.com");
  size_t at = with_nul.find("evil.com-");
  REQUIRE(at != std::string::npos);
  with_nul[at + 8] = '\0';
  bool need_more = true;
  CHECK_FALSE(parse_client_hello_sni(with_nul, need_more));
  CHECK_FALSE(need_more);
}
