// net/egress/secret_box.cpp — AES-256-GCM seal/open and the key file's life. Never logs the key or
// a plaintext; never accepts a key file others can read.
#include "net/egress/secret_box.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

#include "core/owned_fd.hpp"

namespace warren::net::egress {
namespace {

constexpr std::string_view kPrefix = "wsb1:";
constexpr size_t kNonce = 12, kTag = 16;

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

expected<std::array<unsigned char, 32>> read_key(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error(errc::internal, sys_error("stat", path));
  if (!S_ISREG(st.st_mode)) return make_error(errc::internal, "secret key " + path + " is not a regular file");
  if ((st.st_mode & 077) != 0)
    return make_error(errc::forbidden, "secret key " + path + " is readable by group/others (want mode 0600)");
  if (st.st_size != 32) return make_error(errc::internal, "secret key " + path + " is not 32 bytes");
  std::array<unsigned char, 32> key{};
  size_t got = 0;
  while (got < key.size()) {
    ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(errc::internal, sys_error("read", path));
    got += static_cast<size_t>(n);
  }
  return key;
}

// Writes a fresh key to a temporary file, then link(2)s it into place: link fails with EEXIST rather
// than replacing a key another process created meanwhile (the caller then reads that one).
status create_key(const std::string& path) {
  std::array<unsigned char, 32> key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1)
    return make_error(errc::internal, "RAND_bytes failed for the secret key");
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  owned_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return make_error(errc::internal, sys_error("create", tmp));
  bool written = ::write(fd.get(), key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
                 ::fsync(fd.get()) == 0;
  fd.reset();
  if (!written) {
    ::unlink(tmp.c_str());
    return make_error(errc::internal, sys_error("write", tmp));
  }
  int rc = ::link(tmp.c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && link_errno != EEXIST) {
    errno = link_errno;
    return make_error(errc::internal, sys_error("link", path));
  }
  return ok();
}

std::string base64(const std::string& raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t pad = text.back() == '=' ? (text[text.size() - 2] == '=' ? 2 : 1) : 0;
  out.resize(static_cast<size_t>(n) - pad);  // EVP_DecodeBlock counts the padding as zero bytes
  if (base64(out) != text) return std::nullopt;  // non-canonical (stray bits in the last character)
  return out;
}

using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

}  // namespace

expected<secret_box> secret_box::load_or_create(const std::string& key_path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    owned_fd fd(::open(key_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() >= 0) {
      auto key = read_key(fd.get(), key_path);
      if (!key) return std::move(key).err();
      return secret_box(*key);
    }
    if (errno != ENOENT) return make_error(errc::internal, sys_error("open", key_path));
    if (auto st = create_key(key_path); !st) return std::move(st).err();
  }
  return make_error(errc::internal, "secret key " + key_path + " vanished after creation");
}

std::string secret_box::seal(std::string_view plain) const {
  std::string raw(kNonce + plain.size() + kTag, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(raw.data());
  auto* ct = nonce + kNonce;
  cipher_ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0, fin = 0;
  // Failures here mean OpenSSL itself is broken (out of memory, no entropy): nothing to seal with.
  if (!ctx || RAND_bytes(nonce, kNonce) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), ct + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, ct + plain.size()) != 1)
    throw std::runtime_error("secret_box: AES-256-GCM encryption failed");
  return std::string(kPrefix) + base64(raw);
}

expected<std::string> secret_box::open(std::string_view sealed) const {
  if (sealed.substr(0, kPrefix.size()) != kPrefix) return make_error(errc::bad_request, "not a sealed secret");
  auto raw = unbase64(sealed.substr(kPrefix.size()));
  if (!raw || raw->size() < kNonce + kTag) return make_error(errc::bad_request, "sealed secret is malformed");
  auto* nonce = reinterpret_cast<unsigned char*>(raw->data());
  size_t ct_len = raw->size() - kNonce - kTag;
  std::string plain(ct_len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  cipher_ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0, fin = 0;
  bool good = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) == 1 &&
              EVP_DecryptUpdate(ctx.get(), out, &len, nonce + kNonce, static_cast<int>(ct_len)) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, nonce + kNonce + ct_len) == 1 &&
              EVP_DecryptFinal_ex(ctx.get(), out + len, &fin) == 1;
  if (!good) return make_error(errc::bad_request, "sealed secret fails authentication (tampered or another key)");
  return plain;
}

}  // namespace warren::net::egress
