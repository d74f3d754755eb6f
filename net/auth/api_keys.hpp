// net/auth/api_keys.hpp — API keys `wrn_live_<region>_<keyid>_<mac>`: minted and verified
// statelessly with HMAC-SHA256 over "wrn_live_<region>_<keyid>" and the cluster secret, so any
// node checks a key without a database hit. Revocation and tenancy live in key records.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace warren::auth {

struct parsed_key {
  std::string region;
  std::string key_id;
};

// Hex HMAC-SHA256 of `msg` under `secret`, truncated to 32 chars.
std::string mac32(std::string_view secret, std::string_view msg);

// region and key_id must be [a-z0-9]+ (checked; empty optional otherwise).
std::optional<std::string> mint_key(std::string_view secret, std::string_view region,
                                    std::string_view key_id);

// The key's region and id if its format is right and its MAC matches; nothing otherwise.
// Comparison is constant-time. Does not consult revocation.
std::optional<parsed_key> verify_key(std::string_view secret, std::string_view key);

bool is_token_chars(std::string_view s);  // [a-z0-9]+
// A tenant is a DNS label (RFC 1123): lower-case letters, digits and inner '-', 1..63 chars.
bool is_tenant_name(std::string_view s);

}  // namespace warren::auth
