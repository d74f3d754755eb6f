// storage/records.hpp — the record kinds RocksDB holds and their typed encode/decode.
// Records are JSON objects with a "v" (record version) field; decode rejects what it cannot read
// instead of guessing. Nothing here touches RocksDB itself (see meta_store.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace warren::storage {

// A port exposed with settings (API.md "Exposure with auth"). The token itself is never
// stored: only its SHA-256, compared in constant time.
struct exposure_record {
  uint16_t port = 0;
  bool auth = false;
  std::string token_sha256;  // hex; empty when auth is false
  std::string created_at;    // RFC 3339
};

// A secret the node's egress proxy puts into the sandbox's outbound request headers (API.md
// Networking). The sandbox's env holds only `placeholder`; the secret is kept sealed
// (net/egress/secret_box.hpp) and is never part of any API answer.
struct credential_record {
  std::string name;                // the env var the placeholder is in
  std::vector<std::string> hosts;  // where it may go: "api.openai.com", "*.example.com"
  std::string placeholder;
  std::string sealed;
};

// A sandbox as the node remembers it; written before any state change is acknowledged.
struct sandbox_record {
  std::string id;
  std::string tenant;
  std::string image;
  std::string state;  // creating | running | hibernated | destroying | destroyed | lost
  std::string isolation = "jail";
  std::string node;
  int vcpus = 1;
  int mem_mib = 1024;
  int disk_mib = 10240;
  int timeout = 30;
  int sandbox_timeout = 300;
  std::string network_profile = "default";
  std::vector<std::string> allow, deny;
  std::vector<credential_record> credentials;
  std::map<std::string, std::string> env;
  bool auto_resume = true;
  std::string on_idle = "destroy";  // what sandbox_timeout does: destroy | hibernate
  std::string hibernated_at;        // RFC 3339 while state is "hibernated", else empty
  std::string end_at;               // RFC 3339 end of its lifetime (E2B's timeout), "" = none
  nlohmann::json mask_request_host;  // null or string
  nlohmann::json metadata = nlohmann::json::object();
  std::string created_at;  // RFC 3339
  double create_ms = 0;
  std::string parent_id;   // empty = null
  std::string agent_socket;
  std::string driver_state;
  std::vector<exposure_record> exposures;  // absent in records written before exposures existed
  // public: false — every port demands this sandbox-wide token (only its SHA-256 is kept).
  std::string traffic_token_sha256;
};

// A named snapshot (checkpoint) of a sandbox: what a restore needs to build a new sandbox
// like the source, and where the driver put the saved state. Outlives the source sandbox.
struct snapshot_record {
  std::string id;          // snap_ + 16 hex
  std::string tenant;
  std::string sandbox_id;  // the source
  std::string name;
  std::string created_at;
  uint64_t size_bytes = 0;  // bytes the saved state occupies on disk
  std::string node;
  // The source's shape: a restore builds the same.
  std::string image, isolation;
  int vcpus = 1, mem_mib = 1024, disk_mib = 10240, timeout = 30, sandbox_timeout = 300;
  std::string network_profile = "default";
  std::vector<std::string> allow, deny;  // the egress policy goes with the disk: a restore of a
  std::vector<credential_record> credentials;  // locked-down sandbox is locked down too
  std::map<std::string, std::string> env;
  std::string dir;          // host directory holding the saved state
  std::string driver_meta;  // opaque to all but the driver that saved it
};

// An API key's metadata. The key itself is never stored: it is verified by its HMAC.
struct key_record {
  std::string key_id;
  std::string tenant;
  bool admin = false;
  std::string created_at;
  bool revoked = false;
  std::string revoked_at;
};

struct node_record {
  std::string id;
  std::string address;
  std::string started_at;
};

template <class T>
std::string encode(const T& rec);

template <class T>
expected<T> decode(std::string_view bytes);

// The key a record is stored under in its column family.
inline const std::string& record_key(const sandbox_record& r) { return r.id; }
inline const std::string& record_key(const key_record& r) { return r.key_id; }
inline const std::string& record_key(const snapshot_record& r) { return r.id; }
inline const std::string& record_key(const node_record& r) { return r.id; }

}  // namespace warren::storage
