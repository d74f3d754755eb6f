// net/auth/key_registry.cpp — key lookup and bearer parsing.
#include "net/auth/key_registry.hpp"

#include <mutex>

#include "net/auth/api_keys.hpp"

namespace warren::auth {

key_registry::key_registry(std::string secret, std::string region)
    : secret_(std::move(secret)), region_(std::move(region)) {}

void key_registry::upsert(const storage::key_record& rec) {
  std::unique_lock lk(mu_);
  keys_[rec.key_id] = rec;
}

std::optional<storage::key_record> key_registry::find(std::string_view key_id) const {
  std::shared_lock lk(mu_);
  auto it = keys_.find(std::string(key_id));
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

auth_result key_registry::authenticate(std::string_view bearer_key, caller& out) const {
  if (bearer_key.empty()) return auth_result::missing;
  auto parsed = verify_key(secret_, bearer_key);
  if (!parsed || parsed->region != region_) return auth_result::invalid;
  auto rec = find(parsed->key_id);
  if (!rec) return auth_result::invalid;
  if (rec->revoked) return auth_result::revoked;
  out = caller{rec->key_id, rec->tenant, rec->admin};
  return auth_result::ok;
}

std::string_view bearer_of(std::string_view h) {
  // RFC 9110 §11.1: the auth scheme is case-insensitive.
  if (h.size() < 7) return {};
  auto scheme = h.substr(0, 7);
  for (size_t i = 0; i < 6; ++i)
    if (std::tolower(static_cast<unsigned char>(scheme[i])) != "bearer"[i]) return {};
  if (scheme[6] != ' ') return {};
  auto v = h.substr(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace warren::auth
