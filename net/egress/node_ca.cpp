// net/egress/node_ca.cpp — the node CA's files, leaf certificates per host, and the TLS contexts on
// both sides of the egress proxy. The CA key is only ever read from / written to dir/ca.key (0600).
#include "net/egress/node_ca.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "core/ascii.hpp"
#include "core/owned_fd.hpp"

namespace warren::net::egress {
namespace {

constexpr long kHour = 3600, kDay = 24 * kHour;
constexpr auto kLeafRenewAfter = std::chrono::hours(24 * 30);

std::string ssl_error(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return what + ": " + buf;
}

error fail(const std::string& what) { return make_error(errc::internal, ssl_error(what)); }

std::shared_ptr<X509> own(X509* x) { return {x, X509_free}; }
std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) { return {k, EVP_PKEY_free}; }
std::shared_ptr<SSL_CTX> own(SSL_CTX* c) { return {c, SSL_CTX_free}; }

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool dns_name_ok(const std::string& h) {
  return !h.empty() && h.size() <= 253 && std::all_of(h.begin(), h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
  });
}

bool add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  bool added = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return added;
}

struct cert_spec {
  std::string cn;                                  // left out when longer than X.509's 64 characters
  long not_before = 0, not_after = 0;              // seconds from now
  std::vector<std::pair<int, std::string>> exts;   // nid, X509V3 config value
};

// A certificate for key, signed by issuer_key; issuer null means self-signed.
expected<std::shared_ptr<X509>> make_cert(const cert_spec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  auto cert = own(X509_new());
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_new(), BN_free);
  if (!cert || !serial || X509_set_version(cert.get(), 2) != 1 ||
      BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) ||
      !X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after))
    return fail("certificate setup");
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!spec.cn.empty() && spec.cn.size() <= 64 &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(spec.cn.c_str()),
                                 -1, -1, 0) != 1)
    return fail("certificate subject");
  if (X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1)
    return fail("certificate issuer/key");
  for (const auto& [nid, value] : spec.exts)
    if (!add_ext(cert.get(), issuer ? issuer : cert.get(), nid, value)) return fail("certificate extension " + value);
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return fail("certificate signature");
  return cert;
}

expected<std::shared_ptr<EVP_PKEY>> make_p256_key() {
  auto key = own(EVP_EC_gen("P-256"));
  if (!key) return fail("EC P-256 key generation");
  return key;
}

template <class T, class Write>
expected<std::string> to_pem(T* obj, Write write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || write(bio.get(), obj) != 1) return fail("PEM encoding");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

// Written to a temporary file (0600) and renamed into place: a crash never leaves half a file.
status write_private(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  owned_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return make_error(errc::internal, "create " + tmp + ": " + std::strerror(errno));
  bool good = ::write(fd.get(), content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
              ::fsync(fd.get()) == 0;
  fd.reset();
  if (!good || ::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return make_error(errc::internal, "write " + path + ": " + why);
  }
  return ok();
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string local_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

expected<std::shared_ptr<node_ca>> create_ca(const std::string& cert_path, const std::string& key_path) {
  auto key = make_p256_key();
  if (!key) return std::move(key).err();
  cert_spec spec{"Warren egress CA " + local_hostname(), -kHour, 3650 * kDay,
                 {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                  {NID_key_usage, "critical,keyCertSign,cRLSign"},
                  {NID_subject_key_identifier, "hash"}}};
  if (spec.cn.size() > 64) spec.cn.resize(64);
  auto cert = make_cert(spec, key->get(), nullptr, key->get());
  if (!cert) return std::move(cert).err();
  auto key_pem = to_pem(key->get(), [](BIO* b, EVP_PKEY* k) {
    return PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  });
  auto cert_pem = to_pem(cert->get(), PEM_write_bio_X509);
  if (!key_pem) return std::move(key_pem).err();
  if (!cert_pem) return std::move(cert_pem).err();
  // The key first: a crash between the two leaves a key without a certificate, which is made anew.
  if (auto st = write_private(key_path, *key_pem); !st) return std::move(st).err();
  if (auto st = write_private(cert_path, *cert_pem); !st) return std::move(st).err();
  return std::make_shared<node_ca>(*cert, *key, *cert_pem);
}

expected<std::shared_ptr<node_ca>> load_ca(const std::string& cert_path, const std::string& key_path) {
  struct stat st {};
  if (::stat(key_path.c_str(), &st) != 0) return make_error(errc::internal, "stat " + key_path + ": " + std::strerror(errno));
  if ((st.st_mode & 077) != 0)
    return make_error(errc::forbidden, "CA key " + key_path + " is readable by group/others (want mode 0600)");
  auto cert_pem = read_file(cert_path);
  auto key_pem = read_file(key_path);
  if (!cert_pem || !key_pem) return make_error(errc::internal, "cannot read " + cert_path + " or " + key_path);
  std::unique_ptr<BIO, decltype(&BIO_free)> cb(BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size())), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> kb(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())), BIO_free);
  auto cert = own(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  auto key = own(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!cert || !key) return fail("parse " + cert_path + " / " + key_path);
  if (X509_check_private_key(cert.get(), key.get()) != 1) return fail(key_path + " does not match " + cert_path);
  return std::make_shared<node_ca>(cert, key, *cert_pem);
}

// ALPN: "http/1.1" if the client offers it, else no ALPN at all (so an h2-only client falls back).
int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                  void*) {
  constexpr std::string_view want = "http/1.1";
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == want) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

node_ca::node_ca(std::shared_ptr<X509> cert, std::shared_ptr<EVP_PKEY> key, std::string pem)
    : cert_(std::move(cert)), key_(std::move(key)), cert_pem_(std::move(pem)) {}

expected<std::shared_ptr<node_ca>> node_ca::load_or_create(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return make_error(errc::internal, "mkdir " + dir + ": " + std::strerror(errno));
  }
  std::string cert_path = dir + "/ca.pem", key_path = dir + "/ca.key";
  bool have_cert = std::filesystem::exists(cert_path, ec), have_key = std::filesystem::exists(key_path, ec);
  if (have_cert && have_key) return load_ca(cert_path, key_path);
  return create_ca(cert_path, key_path);
}

expected<std::shared_ptr<SSL_CTX>> node_ca::server_ctx(const std::string& host_in) {
  std::string host = ascii_lower(host_in);
  auto now = std::chrono::system_clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(host);
    if (it != cache_.end() && now - it->second.made < kLeafRenewAfter) return it->second.ctx;
  }
  auto ctx = make_server_ctx(host);  // outside the lock: key generation and signing take a while
  if (!ctx) return ctx;
  std::lock_guard lock(mu_);
  auto it = cache_.find(host);
  if (it != cache_.end() && now - it->second.made < kLeafRenewAfter) return it->second.ctx;  // a racing call won
  if (it == cache_.end()) order_.push_back(host);
  cache_[host] = cached{*ctx, now};
  while (cache_.size() > server_ctx_cache_size) {
    cache_.erase(order_.front());
    order_.pop_front();
  }
  return ctx;
}

expected<std::shared_ptr<SSL_CTX>> node_ca::make_server_ctx(const std::string& host) const {
  bool ip = is_ip_literal(host);
  if (!ip && !dns_name_ok(host)) return make_error(errc::bad_request, "'" + host + "' is not a host name");
  auto key = make_p256_key();
  if (!key) return std::move(key).err();
  cert_spec spec{host, -kHour, 90 * kDay,
                 {{NID_basic_constraints, "critical,CA:FALSE"},
                  {NID_key_usage, "critical,digitalSignature"},
                  {NID_ext_key_usage, "serverAuth"},
                  {NID_subject_alt_name, (ip ? "IP:" : "DNS:") + host},
                  {NID_subject_key_identifier, "hash"},
                  {NID_authority_key_identifier, "keyid:always"}}};
  auto leaf = make_cert(spec, key->get(), cert_.get(), key_.get());
  if (!leaf) return std::move(leaf).err();
  auto ctx = own(SSL_CTX_new(TLS_server_method()));
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate(ctx.get(), leaf->get()) != 1 || SSL_CTX_use_PrivateKey(ctx.get(), key->get()) != 1 ||
      SSL_CTX_add1_chain_cert(ctx.get(), cert_.get()) != 1 || SSL_CTX_check_private_key(ctx.get()) != 1)
    return fail("server TLS context for " + host);
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_http11, nullptr);
  return ctx;
}

expected<std::shared_ptr<SSL_CTX>> make_client_ctx(const std::string& extra_ca_file) {
  auto ctx = own(SSL_CTX_new(TLS_client_method()));
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) return fail("client TLS context");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  // The system store: Debian's bundle and the hashed directory. A host without them trusts only extra.
  std::error_code ec;
  const char* bundle = "/etc/ssl/certs/ca-certificates.crt";
  if (SSL_CTX_load_verify_locations(ctx.get(), std::filesystem::exists(bundle, ec) ? bundle : nullptr,
                                    "/etc/ssl/certs") != 1)
    ERR_clear_error();
  if (!extra_ca_file.empty() && SSL_CTX_load_verify_locations(ctx.get(), extra_ca_file.c_str(), nullptr) != 1)
    return make_error(errc::internal, ssl_error("CA file " + extra_ca_file));
  static const unsigned char alpn[] = "\x08http/1.1";
  if (SSL_CTX_set_alpn_protos(ctx.get(), alpn, sizeof alpn - 1) != 0) return fail("client ALPN");
  return ctx;
}

status prepare_client(SSL* ssl, const std::string& host) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (is_ip_literal(host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) return fail("verify IP " + host);
  } else {
    if (!dns_name_ok(host)) return make_error(errc::bad_request, "'" + host + "' is not a host name");
    if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1 || SSL_set1_host(ssl, host.c_str()) != 1)
      return fail("SNI/verify name " + host);
  }
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  return ok();
}

}  // namespace warren::net::egress
