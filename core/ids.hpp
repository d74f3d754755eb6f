// core/ids.hpp — identifiers and secrets from the CSPRNG (OpenSSL RAND_bytes), and clock stamps.
// Never use std::rand / mt19937 for anything a client sees.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace warren {

// `bytes` random bytes as 2*bytes lowercase hex chars. Aborts if the CSPRNG fails: an id from
// a broken generator is worse than no id.
std::string random_hex(size_t bytes);

// Sandbox ids: 16 lowercase hex (64 bits). Snapshot ids: "snap_" + 16 hex.
std::string new_sandbox_id();
bool is_sandbox_id(std::string_view s);
bool is_snapshot_id(std::string_view s);

// Current UTC wall clock as RFC 3339 ("2026-11-22T10:00:00.123Z").
std::string now_rfc3339();
// A time given as nanoseconds since the epoch, the same way.
std::string rfc3339_from_ns(int64_t ns_since_epoch);
// Nanoseconds since the epoch of a UTC RFC 3339 time ("…Z", optional fraction); -1 if malformed.
int64_t ns_from_rfc3339(std::string_view s);
// Nanoseconds since the epoch, now (wall clock).
int64_t now_ns_since_epoch();

// Constant-time equality for secrets (tokens, MACs).
bool secret_equal(std::string_view a, std::string_view b);

}  // namespace warren
