// net/egress/http_head.hpp — the request head the egress proxy reads on its plain-HTTP and
// TLS-terminated paths, and the head it sends upstream with credential placeholders replaced.
// Strict (RFC 9112): anything ambiguous is refused, never guessed at. Never touches the body.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren::net::egress {

constexpr size_t request_head_max_bytes = 64 * 1024;

struct http_request_head {
  std::string method, target, version;
  std::vector<std::pair<std::string, std::string>> headers;  // as sent (name case kept), values trimmed
  // The Host header (or an absolute-form target's authority), lower-case, port stripped, one trailing
  // dot dropped; an IPv6 literal without its brackets ("[::1]:80" → "::1"). Empty only for an
  // HTTP/1.0 request without Host.
  std::string host;
};

// bytes must start with a request. nullopt with need_more=true while "\r\n\r\n" has not arrived;
// nullopt with need_more=false for a malformed head or one over request_head_max_bytes. head_len:
// bytes the head takes, terminator included. Refused: bare LF or lone CR anywhere in the head (bare
// LF is rejected, consistently, as soon as it is seen), obs-fold continuation lines, whitespace before
// a field's colon, control bytes in values, versions other than HTTP/1.0 and 1.1, HTTP/1.1 without
// Host, several Host headers, an absolute-form target whose authority differs from Host, userinfo in
// it, and Content-Length together with Transfer-Encoding (request smuggling, RFC 9112 §6.1).
std::optional<http_request_head> parse_request_head(std::string_view bytes, bool& need_more, size_t& head_len);

// The head to send upstream: every occurrence of each placeholder (first) in header VALUES is
// replaced by its secret (second) — never in the request line or body, and in one left-to-right pass
// (a secret is never scanned again). A secret holding CR, LF or NUL is never substituted (header
// injection). Connection: close is forced: Connection, Keep-Alive, Proxy-Connection and every header
// named in Connection are dropped. replaced: how many replacements were made.
std::string render_request_head(const http_request_head& h,
                                const std::vector<std::pair<std::string, std::string>>& substitutions,
                                int& replaced);

}  // namespace warren::net::egress
