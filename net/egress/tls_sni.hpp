// net/egress/tls_sni.hpp — the server_name a TLS ClientHello asks for (RFC 8446 §4.1.2, RFC 6066 §3),
// read by the egress proxy before it decides where a connection may go. Reads, never modifies.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace warren::net::egress {

// Bytes of a connection's start the parser looks at at most; a ClientHello needing more is refused.
constexpr size_t client_hello_max_bytes = 16 * 1024;

// bytes: what the client sent so far. The ClientHello may be split across several TLS records.
// Returns the host_name of the server_name extension, lower-case (one trailing dot dropped).
// need_more=true with nullopt: the ClientHello is not complete yet — read more and call again.
// need_more=false with nullopt: not TLS, not a ClientHello, malformed, over client_hello_max_bytes,
// no SNI, or an SNI that is not a plain host name (letters, digits, '-', '.', '_').
std::optional<std::string> parse_client_hello_sni(std::string_view bytes, bool& need_more);

}  // namespace warren::net::egress
