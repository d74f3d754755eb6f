// net/auth/key_registry.hpp — the node's in-memory view of key records (tenant, admin,
// revoked), loaded from RocksDB at start and updated by the node actor after each durable
// write. Auth on the request path reads it without a database hit or an actor round trip.
#pragma once

#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/records.hpp"

namespace warren::auth {

// Who is calling, as the handlers and actors see it.
struct caller {
  std::string key_id;
  std::string tenant;
  bool admin = false;
};

enum class auth_result { ok, missing, invalid, revoked };

class key_registry {
 public:
  key_registry(std::string secret, std::string region);

  void upsert(const storage::key_record& rec);
  std::optional<storage::key_record> find(std::string_view key_id) const;

  // Verifies a bearer key: MAC, region, then record (unknown or revoked ids fail).
  auth_result authenticate(std::string_view bearer_key, caller& out) const;

  const std::string& secret() const { return secret_; }
  const std::string& region() const { return region_; }

 private:
  std::string secret_, region_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, storage::key_record> keys_;
};

// The bearer credential of an Authorization header ("Bearer <x>"), empty if none.
std::string_view bearer_of(std::string_view authorization_header);

}  // namespace warren::auth
