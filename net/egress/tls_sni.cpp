// net/egress/tls_sni.cpp — reassembles a ClientHello from TLS handshake records and walks its
// extensions to server_name. Every length is checked against what is actually there.
#include "net/egress/tls_sni.hpp"

#include <algorithm>
#include <cstdint>

#include "core/ascii.hpp"

namespace warren::net::egress {
namespace {

constexpr uint8_t kHandshake = 0x16, kClientHello = 0x01;
constexpr uint16_t kServerNameExt = 0x0000;

// A bounds-checked cursor over one ClientHello body.
struct cursor {
  std::string_view s;
  bool ok = true;
  size_t take(size_t n) {
    if (!ok || s.size() < n) {
      ok = false;
      return 0;
    }
    size_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
    s.remove_prefix(n);
    return v;
  }
  std::string_view bytes(size_t n) {
    if (!ok || s.size() < n) {
      ok = false;
      return {};
    }
    auto v = s.substr(0, n);
    s.remove_prefix(n);
    return v;
  }
  // A vector with an n-byte length prefix.
  std::string_view vec(size_t n) { return bytes(take(n)); }
};

bool host_name_ok(std::string_view h) {
  return !h.empty() && h.size() <= 253 && std::all_of(h.begin(), h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
  });
}

// The SNI of a complete ClientHello body (after the 4-byte handshake header).
std::optional<std::string> sni_of(std::string_view body) {
  cursor c{body};
  c.take(2);      // legacy_version
  c.bytes(32);    // random
  c.vec(1);       // legacy_session_id
  c.vec(2);       // cipher_suites
  c.vec(1);       // legacy_compression_methods
  if (!c.ok || c.s.empty()) return std::nullopt;  // no extensions at all
  cursor exts{c.vec(2)};
  if (!c.ok) return std::nullopt;
  std::optional<std::string> found;
  while (exts.ok && !exts.s.empty()) {
    size_t type = exts.take(2);
    cursor data{exts.vec(2)};
    if (!exts.ok) return std::nullopt;
    if (type != kServerNameExt) continue;
    if (found) return std::nullopt;  // a duplicated extension is illegal (RFC 8446 §4.2)
    cursor list{data.vec(2)};
    if (!data.ok || !data.s.empty()) return std::nullopt;
    while (list.ok && !list.s.empty()) {
      size_t name_type = list.take(1);
      std::string_view name = list.vec(2);
      if (!list.ok) return std::nullopt;
      if (name_type != 0 || found) continue;  // only the first host_name (RFC 6066 §3)
      if (!name.empty() && name.back() == '.') name.remove_suffix(1);
      if (!host_name_ok(name)) return std::nullopt;
      found = ascii_lower(name);
    }
    if (!list.ok) return std::nullopt;
  }
  return found;
}

}  // namespace

std::optional<std::string> parse_client_hello_sni(std::string_view bytes, bool& need_more) {
  need_more = false;
  std::string handshake;
  size_t pos = 0;
  while (true) {
    if (pos < bytes.size() && static_cast<uint8_t>(bytes[pos]) != kHandshake) return std::nullopt;
    if (pos + 1 < bytes.size() && bytes[pos + 1] != 0x03) return std::nullopt;  // record version 3.x
    if (bytes.size() < pos + 5) {
      need_more = pos + 5 <= client_hello_max_bytes;
      return std::nullopt;
    }
    size_t len = (static_cast<size_t>(static_cast<uint8_t>(bytes[pos + 3])) << 8) | static_cast<uint8_t>(bytes[pos + 4]);
    if (len == 0 || len > 16384) return std::nullopt;  // RFC 8446 §5.1: no empty handshake fragments
    if (pos + 5 + len > client_hello_max_bytes) return std::nullopt;
    if (bytes.size() < pos + 5 + len) {
      need_more = true;
      return std::nullopt;
    }
    handshake.append(bytes.substr(pos + 5, len));
    pos += 5 + len;
    if (static_cast<uint8_t>(handshake[0]) != kClientHello) return std::nullopt;
    if (handshake.size() < 4) continue;
    size_t body_len = (static_cast<size_t>(static_cast<uint8_t>(handshake[1])) << 16) |
                      (static_cast<size_t>(static_cast<uint8_t>(handshake[2])) << 8) | static_cast<uint8_t>(handshake[3]);
    if (4 + body_len > client_hello_max_bytes) return std::nullopt;
    if (handshake.size() >= 4 + body_len) return sni_of(std::string_view(handshake).substr(4, body_len));
  }
}

}  // namespace warren::net::egress
