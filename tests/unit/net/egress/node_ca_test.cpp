// Tests net/egress/node_ca.cpp: the CA's files and certificate, and real TLS handshakes over a
// socketpair between make_client_ctx/prepare_client and node_ca::server_ctx.
#include <catch2/catch_test_macros.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <thread>
#include <vector>

#include "net/egress/node_ca.hpp"
#include "tests/unit/net/egress/temp_dir.hpp"

using namespace warren;
using namespace warren::net::egress;

namespace {

struct handshake_result {
  bool connected = false;
  long verify = -1;
  std::string alpn;
  int peer_chain = 0;
};

// One TLS handshake over a socketpair: the server in a thread, the client here, verifying `host`.
handshake_result handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx, const std::string& host,
                           const std::string& alpn_offer = "") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  timeval limit{5, 0};  // a handshake that stalls fails the test instead of hanging it
  for (int fd : sv) ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  std::thread server([&] {
    SSL* s = SSL_new(server_ctx);
    SSL_set_fd(s, sv[1]);
    (void)SSL_accept(s);
    SSL_free(s);
    ::close(sv[1]);
  });
  handshake_result r;
  SSL* c = SSL_new(client_ctx);
  REQUIRE(prepare_client(c, host));
  if (!alpn_offer.empty())
    SSL_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(alpn_offer.data()),
                        static_cast<unsigned>(alpn_offer.size()));
  SSL_set_fd(c, sv[0]);
  r.connected = SSL_connect(c) == 1;
  r.verify = SSL_get_verify_result(c);
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(c, &proto, &len);
  if (proto) r.alpn.assign(reinterpret_cast<const char*>(proto), len);
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(c)) r.peer_chain = sk_X509_num(chain);
  // The server ends first (it reads the client's alert or Finished, then may send tickets): closing
  // the client's end before that would hand the server a SIGPIPE.
  server.join();
  SSL_free(c);
  ::close(sv[0]);
  return r;
}

// A node CA in a fresh directory, and a client context trusting it.
struct trusted_ca {
  test::temp_dir tmp;
  std::shared_ptr<node_ca> ca;
  std::shared_ptr<SSL_CTX> client;
  trusted_ca() {
    auto made = node_ca::load_or_create(tmp.path);
    REQUIRE(made);
    ca = *made;
    auto c = make_client_ctx(tmp.path + "/ca.pem");
    REQUIRE(c);
    client = *c;
  }
  // A handshake between server_ctx(server_host) and the client verifying verify_host.
  handshake_result connect(const std::string& server_host, const std::string& verify_host,
                           const std::string& alpn_offer = "") {
    auto server = ca->server_ctx(server_host);
    REQUIRE(server);
    return handshake(server->get(), client.get(), verify_host, alpn_offer);
  }
};

}  // namespace

TEST_CASE("the node CA: files 0600 in a 0700 dir, a P-256 CA certificate as specified, reused next time") {
  test::temp_dir tmp;
  std::string dir = tmp.path + "/ca";
  auto ca = node_ca::load_or_create(dir);
  REQUIRE(ca);
  CHECK(test::mode_of(dir) == 0700);
  CHECK(test::mode_of(dir + "/ca.pem") == 0600);
  CHECK(test::mode_of(dir + "/ca.key") == 0600);

  const std::string& pem = (*ca)->cert_pem();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(cert);
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn).rfind("Warren egress CA ", 0) == 0);
  CHECK(X509_check_ca(cert) == 1);
  CHECK(X509_get_pathlen(cert) == 0);
  for (int nid : {NID_basic_constraints, NID_key_usage}) {
    int at = X509_get_ext_by_NID(cert, nid, -1);
    REQUIRE(at >= 0);
    CHECK(X509_EXTENSION_get_critical(X509_get_ext(cert, at)) == 1);
  }
  CHECK(X509_get_key_usage(cert) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EVP_PKEY* key = X509_get0_pubkey(cert);
  REQUIRE(key);
  char group[64] = {};
  size_t group_len = 0;
  CHECK(EVP_PKEY_get_group_name(key, group, sizeof group, &group_len) == 1);
  CHECK(std::string(group) == "prime256v1");
  int days = 0, secs = 0;
  REQUIRE(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)) == 1);
  CHECK(days >= 3650);
  CHECK(days <= 3653);
  X509_free(cert);

  auto again = node_ca::load_or_create(dir);
  REQUIRE(again);
  CHECK((*again)->cert_pem() == pem);
}

TEST_CASE("a group-readable or mismatched CA key is refused; a lone certificate is replaced") {
  test::temp_dir tmp;
  std::string a = tmp.path + "/a", b = tmp.path + "/b";
  REQUIRE(node_ca::load_or_create(a));
  REQUIRE(node_ca::load_or_create(b));
  REQUIRE(::chmod((a + "/ca.key").c_str(), 0640) == 0);
  auto readable = node_ca::load_or_create(a);
  REQUIRE_FALSE(readable);
  CHECK(readable.err().code == errc::forbidden);
  REQUIRE(::chmod((a + "/ca.key").c_str(), 0600) == 0);

  std::filesystem::copy_file(b + "/ca.key", a + "/ca.key", std::filesystem::copy_options::overwrite_existing);
  REQUIRE(::chmod((a + "/ca.key").c_str(), 0600) == 0);
  CHECK_FALSE(node_ca::load_or_create(a));

  std::string before = (*node_ca::load_or_create(b))->cert_pem();
  std::filesystem::remove(b + "/ca.key");
  auto remade = node_ca::load_or_create(b);
  REQUIRE(remade);
  CHECK((*remade)->cert_pem() != before);
}

TEST_CASE("a client trusting the node CA completes a verified handshake with server_ctx(host), ALPN http/1.1") {
  trusted_ca f;
  auto r = f.connect("api.example.com", "api.example.com");
  CHECK(r.connected);
  CHECK(r.verify == X509_V_OK);
  CHECK(r.alpn == "http/1.1");
  CHECK(r.peer_chain == 2);  // leaf and the CA

  // A client offering h2 first still gets http/1.1; one offering only h2 gets no ALPN at all.
  CHECK(f.connect("api.example.com", "api.example.com", std::string("\x02h2\x08http/1.1", 12)).alpn == "http/1.1");
  auto h2_only = f.connect("api.example.com", "api.example.com", std::string("\x02h2", 3));
  CHECK(h2_only.connected);
  CHECK(h2_only.alpn.empty());
}

TEST_CASE("a certificate for another host fails hostname verification") {
  trusted_ca f;
  auto r = f.connect("other.example", "api.example.com");
  CHECK_FALSE(r.connected);
  CHECK(r.verify == X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_CASE("a client that does not trust this node's CA refuses its certificates") {
  trusted_ca f, stranger;
  auto server = stranger.ca->server_ctx("api.example.com");
  REQUIRE(server);
  auto r = handshake(server->get(), f.client.get(), "api.example.com");
  CHECK_FALSE(r.connected);
  CHECK(r.verify != X509_V_OK);
}

TEST_CASE("an IP literal gets an IP SAN and verifies as an address") {
  trusted_ca f;
  for (const char* ip : {"192.0.2.5", "2001:db8::5"}) {
    auto r = f.connect(ip, ip);
    CHECK(r.connected);
    CHECK(r.verify == X509_V_OK);
  }
  CHECK_FALSE(f.connect("192.0.2.5", "192.0.2.6").connected);
}

TEST_CASE("server contexts are cached per host; names that are not host names are refused") {
  trusted_ca f;
  auto a = f.ca->server_ctx("api.example.com");
  auto b = f.ca->server_ctx("API.example.com");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->get() == b->get());
  CHECK(f.ca->server_ctx("x.example")->get() != a->get());
  CHECK(f.ca->server_ctx("a,DNS:evil.example").err().code == errc::bad_request);
  CHECK(f.ca->server_ctx("").err().code == errc::bad_request);
  CHECK(f.ca->server_ctx(std::string(300, 'a')).err().code == errc::bad_request);
  // A name longer than X.509's 64-character CN still gets a certificate (by its SAN).
  auto long_name = std::string(60, 'a') + ".example.com";
  CHECK(f.connect(long_name, long_name).verify == X509_V_OK);
}

TEST_CASE("make_client_ctx refuses an unreadable extra CA file; prepare_client refuses bad names") {
  CHECK_FALSE(make_client_ctx("/nonexistent/ca.pem"));
  auto client = make_client_ctx("");
  REQUIRE(client);
  SSL* ssl = SSL_new(client->get());
  CHECK_FALSE(prepare_client(ssl, "bad name"));
  CHECK(prepare_client(ssl, "api.example.com"));
  SSL_free(ssl);
}

TEST_CASE("server_ctx from several threads returns one context per host; the cache drops its oldest host past its bound") {
  trusted_ca f;
  std::vector<std::thread> threads;
  std::vector<std::vector<SSL_CTX*>> seen(4);
  for (size_t t = 0; t < seen.size(); ++t)
    threads.emplace_back([&, t] {
      for (int h = 0; h < 8; ++h) seen[t].push_back(f.ca->server_ctx("h" + std::to_string(h) + ".test")->get());
    });
  for (auto& t : threads) t.join();
  for (int h = 0; h < 8; ++h) {
    SSL_CTX* cached = f.ca->server_ctx("h" + std::to_string(h) + ".test")->get();
    size_t agreeing = 0;
    for (const auto& s : seen) agreeing += s[h] == cached;
    CHECK(agreeing == seen.size());  // racing first calls each make one, but all return the one cached
  }

  auto first = f.ca->server_ctx("first.test");
  REQUIRE(first);
  for (size_t i = 0; i < node_ca::server_ctx_cache_size; ++i) REQUIRE(f.ca->server_ctx("n" + std::to_string(i) + ".test"));
  auto again = f.ca->server_ctx("first.test");
  REQUIRE(again);
  CHECK(again->get() != first->get());  // evicted, made anew
  CHECK(f.connect("first.test", "first.test").verify == X509_V_OK);
}
