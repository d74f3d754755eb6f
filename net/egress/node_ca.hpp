// net/egress/node_ca.hpp — the per-node CA with which the egress proxy terminates TLS for hosts that
// carry credentials, and the client context that verifies the real upstream. The CA key never leaves
// dir/ca.key (0600); only its certificate is handed to sandboxes.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/error.hpp"

namespace warren::net::egress {

class node_ca {
 public:
  // dir/ca.pem + dir/ca.key (both 0600; dir created 0700): an EC P-256 CA, CN "Warren egress CA
  // <hostname>", basicConstraints critical CA:TRUE pathlen 0, keyUsage keyCertSign+cRLSign, 10-year
  // validity. Existing files are reused (a key that does not match the certificate is an error); if
  // only one of the two exists, both are made anew.
  static expected<std::shared_ptr<node_ca>> load_or_create(const std::string& dir);

  const std::string& cert_pem() const { return cert_pem_; }

  // A server SSL_CTX for host: leaf with SAN DNS:host (IP:host for an IP literal), EC P-256, valid
  // now-1h..+90 days, random 128-bit serial, signed by the CA, chain including the CA; TLS 1.2+; ALPN
  // selects "http/1.1" only (a client offering just h2 gets no ALPN and speaks HTTP/1.1). Cached per
  // host (thread-safe: racing first calls all get the one cached; at most server_ctx_cache_size
  // entries, oldest dropped; a leaf older than 30 days is remade). host must be a DNS name (letters,
  // digits, '-', '.', '_'; lower-cased here) or an IP literal.
  expected<std::shared_ptr<SSL_CTX>> server_ctx(const std::string& host);

  static constexpr size_t server_ctx_cache_size = 1024;

  node_ca(std::shared_ptr<X509> cert, std::shared_ptr<EVP_PKEY> key, std::string pem);

 private:
  struct cached {
    std::shared_ptr<SSL_CTX> ctx;
    std::chrono::system_clock::time_point made;
  };
  expected<std::shared_ptr<SSL_CTX>> make_server_ctx(const std::string& host) const;

  std::shared_ptr<X509> cert_;
  std::shared_ptr<EVP_PKEY> key_;
  std::string cert_pem_;
  std::mutex mu_;
  std::unordered_map<std::string, cached> cache_;
  std::deque<std::string> order_;  // insertion order, for eviction
};

// A client SSL_CTX verifying peers against the system trust store (/etc/ssl/certs) plus
// extra_ca_file if non-empty (an unreadable one is an error); TLS 1.2+, ALPN "http/1.1".
expected<std::shared_ptr<SSL_CTX>> make_client_ctx(const std::string& extra_ca_file);

// Per connection, before SSL_connect: SNI (not for an IP literal, RFC 6066 §3) and verification of
// the certificate's name (DNS name, or IP address) against host.
status prepare_client(SSL* ssl, const std::string& host);

}  // namespace warren::net::egress
