// net/e2b/connect.cpp — see connect.hpp.
#include "net/e2b/connect.hpp"

#include <nlohmann/json.hpp>

namespace warren::net::e2b {

std::string envelope(std::string_view json, uint8_t flags) {
  std::string out;
  out.reserve(5 + json.size());
  out.push_back(static_cast<char>(flags));
  auto n = static_cast<uint32_t>(json.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(json);
  return out;
}

expected<std::vector<std::string>> unenvelope(std::string_view body) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < body.size()) {
    if (body.size() - i < 5) return make_error(errc::bad_request, "truncated Connect envelope");
    auto flags = static_cast<uint8_t>(body[i]);
    uint32_t n = 0;
    for (int k = 1; k <= 4; ++k) n = (n << 8) | static_cast<uint8_t>(body[i + k]);
    if (flags & 0x01) return make_error(errc::bad_request, "compressed Connect messages are not supported");
    if (body.size() - i - 5 < n) return make_error(errc::bad_request, "truncated Connect envelope");
    out.emplace_back(body.substr(i + 5, n));
    i += 5 + n;
  }
  return out;
}

std::string connect_code(errc c) {
  switch (c) {
    case errc::bad_request: return "invalid_argument";
    case errc::unauthorized: return "unauthenticated";
    case errc::forbidden: return "permission_denied";
    case errc::not_found: return "not_found";
    case errc::conflict: return "failed_precondition";
    case errc::payload_too_large: return "resource_exhausted";
    case errc::too_many_requests: return "resource_exhausted";
    case errc::timeout: return "deadline_exceeded";
    case errc::unavailable: return "unavailable";
    case errc::bad_gateway: return "unavailable";
    default: return "internal";
  }
}

int connect_http_status(std::string_view code) {
  if (code == "canceled") return 499;
  if (code == "invalid_argument" || code == "out_of_range" || code == "failed_precondition") return 400;
  if (code == "deadline_exceeded") return 504;
  if (code == "not_found") return 404;
  if (code == "already_exists" || code == "aborted") return 409;
  if (code == "permission_denied") return 403;
  if (code == "resource_exhausted") return 429;
  if (code == "unimplemented") return 501;
  if (code == "unavailable") return 503;
  if (code == "unauthenticated") return 401;
  return 500;
}

std::string error_json(std::string_view code, std::string_view message) {
  return nlohmann::json{{"code", code}, {"message", message}}.dump(-1, ' ', false,
                                                                   nlohmann::json::error_handler_t::replace);
}

std::string end_stream(const error* e) {
  if (!e) return "{}";
  return end_stream(connect_code(e->code), e->message);
}

std::string end_stream(std::string_view code, std::string_view message) {
  return "{\"error\":" + error_json(code, message) + "}";
}

namespace {
constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}
}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(alphabet[(v >> s) & 63]);
  }
  if (size_t rest = in.size() - i) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (rest == 2) v |= uint8_t(in[i + 1]) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = value_of(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace warren::net::e2b
