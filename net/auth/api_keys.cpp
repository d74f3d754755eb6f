// net/auth/api_keys.cpp — HMAC-SHA256 key mint/verify (OpenSSL one-shot HMAC).
#include "net/auth/api_keys.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/ids.hpp"

namespace warren::auth {
namespace {
constexpr std::string_view prefix = "wrn_live_";
constexpr size_t mac_len = 32;
}  // namespace

bool is_token_chars(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

bool is_tenant_name(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

std::string mac32(std::string_view secret, std::string_view msg) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &len);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len && out.size() < mac_len; ++i) {
    out.push_back(digits[md[i] >> 4]);
    out.push_back(digits[md[i] & 15]);
  }
  return out;
}

std::optional<std::string> mint_key(std::string_view secret, std::string_view region,
                                    std::string_view key_id) {
  if (!is_token_chars(region) || !is_token_chars(key_id)) return std::nullopt;
  std::string body = std::string(prefix) + std::string(region) + "_" + std::string(key_id);
  return body + "_" + mac32(secret, body);
}

std::optional<parsed_key> verify_key(std::string_view secret, std::string_view key) {
  if (key.size() > 256 || key.substr(0, prefix.size()) != prefix) return std::nullopt;
  auto rest = key.substr(prefix.size());
  auto a = rest.find('_');
  if (a == std::string_view::npos) return std::nullopt;
  auto b = rest.find('_', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  auto region = rest.substr(0, a), key_id = rest.substr(a + 1, b - a - 1), mac = rest.substr(b + 1);
  if (!is_token_chars(region) || !is_token_chars(key_id) || mac.size() != mac_len) return std::nullopt;
  auto body = key.substr(0, prefix.size() + b);
  if (!secret_equal(mac32(secret, body), mac)) return std::nullopt;
  return parsed_key{std::string(region), std::string(key_id)};
}

}  // namespace warren::auth
