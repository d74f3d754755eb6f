// net/e2b/connect.hpp — the Connect protocol as E2B's SDK speaks it (JSON codec over HTTP/1.1):
// the envelope of streamed messages, Connect error codes and their HTTP statuses, base64 for
// protobuf `bytes`. Pure: no I/O, unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace warren::net::e2b {

// A streamed message: flags u8 | length u32 BE | payload. flags 0x02 marks the end-of-stream
// message ({} or {"error": …}); 0x01 (compressed) is refused: Warren never negotiates it.
inline constexpr uint8_t end_stream_flag = 0x02;
std::string envelope(std::string_view json, uint8_t flags = 0);

// Splits a request body of enveloped messages. An error for a truncated envelope or a
// compressed one.
expected<std::vector<std::string>> unenvelope(std::string_view body);

// The Connect code ("not_found", "invalid_argument", …) of a Warren error, and its HTTP status.
std::string connect_code(errc c);
int connect_http_status(std::string_view code);

// {"code": "...", "message": "..."} — a unary error's body, and the "error" of an end-stream.
std::string error_json(std::string_view code, std::string_view message);
// The end-stream message: {} or {"error": {...}}.
std::string end_stream(const error* e = nullptr);
std::string end_stream(std::string_view code, std::string_view message);

std::string base64_encode(std::string_view bytes);
// Standard or URL-safe alphabet, padding optional; nullopt if malformed.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace warren::net::e2b
